"""Network parts: the default MLP's input standardisation and the cosine head."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from imblearn.datasets import make_imbalance
from sklearn.datasets import load_iris

from ldam_sklearn import L2RWClassifier, LDAMDRWClassifier
from ldam_sklearn.modules import MLP, CosineLinear


def test_mlp_standardises_dense_and_sparse_batches_alike():
    torch.manual_seed(0)
    mean, scale = torch.tensor([1.0, -2.0, 0.0]), torch.tensor([2.0, 0.5, 1.0])
    net = MLP(3, 2, hidden_layer_sizes=(4,), input_mean=mean, input_scale=scale)
    plain = MLP(3, 2, hidden_layer_sizes=(4,), standardize=False)
    plain.load_state_dict(net.state_dict())
    X = torch.tensor([[1.0, 0.0, 3.0], [0.0, -2.0, 0.0]])
    expected = plain((X - mean) / scale)
    torch.testing.assert_close(net(X), expected)
    torch.testing.assert_close(net(X.to_sparse()), expected)


def test_mlp_without_statistics_leaves_the_input_alone():
    net = MLP(3, 2, hidden_layer_sizes=())
    X = torch.randn(4, 3)
    torch.testing.assert_close(net(X), net.head(X))
    assert set(net.state_dict()) >= {"input_mean", "input_scale"}


def test_loaded_statistics_switch_standardisation_on():
    trained = MLP(3, 2, hidden_layer_sizes=(), input_mean=[1.0, 2.0, 3.0], input_scale=[2.0] * 3)
    fresh = MLP(3, 2, hidden_layer_sizes=())
    fresh.load_state_dict(trained.state_dict())
    X = torch.randn(4, 3)
    torch.testing.assert_close(fresh(X), trained(X))
    torch.testing.assert_close(fresh(X.to_sparse()), trained(X))


@pytest.mark.parametrize("Estimator", [LDAMDRWClassifier, L2RWClassifier])
def test_dense_fit_does_not_depend_on_the_features_scale(Estimator):
    rng = np.random.RandomState(0)
    X = rng.randn(150, 4)
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
    params = {"max_epochs": 5, "random_state": 0, "module__hidden_layer_sizes": (8,)}
    proba = Estimator(**params).fit(X, y).predict_proba(X)
    shifted = X * [1e3, 1e-3, 50.0, 1.0] + [1e4, -5.0, 0.0, 7.0]
    # Equal up to float32 rounding of the standardised inputs, which five
    # epochs of SGD carry into the weights.
    np.testing.assert_allclose(
        Estimator(**params).fit(shifted, y).predict_proba(shifted), proba, atol=0.02
    )


def test_constant_feature_keeps_a_unit_scale():
    X = np.c_[np.random.RandomState(0).randn(60, 2), np.full(60, 5.0)]
    y = np.arange(60) % 2
    clf = LDAMDRWClassifier(max_epochs=1).fit(X, y)
    np.testing.assert_allclose(clf.module_.input_scale[2].item(), 1.0)
    np.testing.assert_allclose(clf.module_.input_mean[2].item(), 5.0)


def test_sparse_fit_gets_no_statistics():
    X = sp.random(60, 20, density=0.2, format="csr", random_state=0)
    y = np.arange(60) % 2
    clf = LDAMDRWClassifier(max_epochs=1).fit(X, y)
    assert not clf.module_._standardizes


@pytest.mark.parametrize("Estimator", [LDAMDRWClassifier, L2RWClassifier])
def test_defaults_learn_every_class_of_raw_imbalanced_iris(Estimator):
    # Unscaled iris (features up to 7.9) made imbalanced as imbalanced-learn's
    # estimator check does; before the input was standardised, SGD at the
    # default lr diverged on 1 in 4 (LDAM-DRW) to 7 in 10 (L2RW) draws and
    # the network predicted fewer than three classes.
    iris = load_iris(as_frame=True)
    y = pd.Series(iris.target_names[iris.target], dtype="category")
    strategy = {"setosa": 30, "versicolor": 20, "virginica": 50}
    for seed in range(5):
        X, y_imb = make_imbalance(iris.data, y, sampling_strategy=strategy, random_state=seed)
        predicted = Estimator(random_state=seed).fit(X, y_imb).predict(X)
        assert set(predicted) == set(strategy), seed


@pytest.mark.parametrize("scale", [1e30, 1e-30, 1.0])
def test_cosine_linear_is_exact_at_any_scale(scale):
    torch.manual_seed(0)
    layer = CosineLinear(4, 3)
    x = torch.randn(5, 4, dtype=torch.float64).float()
    expected = torch.nn.functional.normalize(x.double(), dim=1) @ torch.nn.functional.normalize(
        layer.weight.double(), dim=0
    )
    torch.testing.assert_close(layer(x * scale).double(), expected, atol=1e-6, rtol=1e-5)
    with torch.no_grad():
        layer.weight.mul_(1e25)
    torch.testing.assert_close(layer(x * scale).double(), expected, atol=1e-6, rtol=1e-5)


def test_cosine_linear_gradient_is_unchanged_by_the_rescaling():
    torch.manual_seed(0)
    layer = CosineLinear(4, 3)
    x = torch.randn(5, 4, requires_grad=True)
    layer(x).square().sum().backward()
    x_ref = x.detach().clone().requires_grad_(True)
    w_ref = layer.weight.detach().clone().requires_grad_(True)
    out = torch.nn.functional.normalize(x_ref, dim=1) @ torch.nn.functional.normalize(w_ref, dim=0)
    out.square().sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)
    torch.testing.assert_close(layer.weight.grad, w_ref.grad)


def test_cosine_linear_gradient_is_finite_for_all_zero_rows():
    layer = CosineLinear(4, 3)
    x = torch.zeros(2, 4, requires_grad=True)
    layer(x).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(layer.weight.grad).all()
