"""Network parts: the MLP's standardisation, the sparse first layer, the cosine head."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from imblearn.datasets import make_imbalance
from sklearn.datasets import load_iris
from torch import nn

from ldam_sklearn import L2RWClassifier, LDAMDRWClassifier
from ldam_sklearn.modules import (
    MLP,
    CosineLinear,
    CosineLinearEnsemble,
    SparseLinear,
    sparse_input_scale,
)


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


def test_sparse_fit_is_scaled_to_the_size_of_standardised_rows_not_centred():
    X = sp.random(60, 20, density=0.2, format="csr", random_state=0) * 0.01
    y = np.arange(60) % 2
    clf = LDAMDRWClassifier(max_epochs=1).fit(X, y)
    net = clf.module_
    assert net._standardizes and not net.input_mean.any()
    rows = X.multiply(X).sum(axis=1) / net.input_scale[0].item() ** 2
    np.testing.assert_allclose(rows.mean(), X.shape[1], rtol=1e-5)
    assert torch.equal(net.input_scale, net.input_scale[:1].expand(20))


@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_sparse_scaling_keeps_the_batch_sparse(layout):
    stats = sparse_input_scale(sp.csr_matrix([[0.0, 4.0, 0.0], [2.0, 0.0, 0.0]]))
    net = MLP(3, 2, hidden_layer_sizes=(4,), sparse_input=True, **stats)
    X = torch.tensor([[0.0, 4.0, 0.0], [2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    sparse = X.to_sparse() if layout == "coo" else X.to_sparse_csr()
    expected = net.head(net.body[1](net.body[0](X / stats["input_scale"])))
    torch.testing.assert_close(net(sparse), expected)
    seen = []
    net.body[0].register_forward_pre_hook(lambda module, args: seen.append(args[0].layout))
    net(sparse)
    assert seen == [sparse.layout]


def test_sparse_input_scale_of_an_all_zero_matrix_is_one():
    stats = sparse_input_scale(sp.csr_matrix((3, 4)))
    assert torch.equal(stats["input_scale"], torch.ones(4))


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


def _batch_with_empty_rows():
    """6 x 7 batch; rows 1, 4 and 5 (the last two too) have no non-zero."""
    X = torch.zeros(6, 7)
    X[0, [1, 4]] = torch.tensor([0.5, -2.0])
    X[2, [0, 4, 6]] = torch.tensor([1.0, 3.0, -0.25])
    X[3, 2] = 1.5
    return X


def _linear_copy(layer: SparseLinear) -> nn.Linear:
    ref = nn.Linear(layer.in_features, layer.out_features)
    with torch.no_grad():
        ref.weight.copy_(layer.weight.T)
        ref.bias.copy_(layer.bias)
    return ref


def _with_values(X: torch.Tensor, layout: str, values: torch.Tensor) -> torch.Tensor:
    """``X``'s sparsity pattern in ``layout``, holding ``values`` (which may need grad)."""
    if layout == "coo":
        coo = X.to_sparse()
        return torch.sparse_coo_tensor(
            coo.indices(), values, X.shape, is_coalesced=True, check_invariants=True
        )
    csr = X.to_sparse_csr()
    return torch.sparse_csr_tensor(
        csr.crow_indices(), csr.col_indices(), values, X.shape, check_invariants=True
    )


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
@pytest.mark.parametrize("layout", ["coo", "csr"])
def test_sparse_linear_on_a_sparse_batch_matches_nn_linear(layout):
    torch.manual_seed(0)
    layer = SparseLinear(7, 3)
    ref = _linear_copy(layer)
    X = _batch_with_empty_rows()
    upstream = torch.randn(6, 3)  # a loss whose gradients differ per output

    values = X[X != 0].clone().requires_grad_(True)  # row-major, as both layouts order them
    out = layer(_with_values(X, layout, values))
    (out * upstream).sum().backward()
    ref_values = values.detach().clone().requires_grad_(True)
    ref_out = ref(_with_values(X, "coo", ref_values).to_dense())
    (ref_out * upstream).sum().backward()

    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(out[[1, 4, 5]], layer.bias.detach().expand(3, 3))
    torch.testing.assert_close(values.grad, ref_values.grad)
    torch.testing.assert_close(layer.bias.grad, ref.bias.grad)
    grad = layer.weight.grad
    assert grad.layout == torch.sparse_coo
    # Only the rows of columns present in the batch are in the gradient.
    assert set(grad.coalesce().indices()[0].tolist()) == {0, 1, 2, 4, 6}
    torch.testing.assert_close(grad.to_dense(), ref.weight.grad.T)


def test_sparse_linear_on_a_dense_batch_matches_nn_linear():
    torch.manual_seed(0)
    layer = SparseLinear(7, 3)
    ref = _linear_copy(layer)
    X = (_batch_with_empty_rows() + torch.randn(6, 7)).requires_grad_(True)
    X_ref = X.detach().clone().requires_grad_(True)
    upstream = torch.randn(6, 3)
    out, ref_out = layer(X), ref(X_ref)
    (out * upstream).sum().backward()
    (ref_out * upstream).sum().backward()
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(X.grad, X_ref.grad)
    torch.testing.assert_close(layer.weight.grad, ref.weight.grad.T)
    torch.testing.assert_close(layer.bias.grad, ref.bias.grad)
    # extra leading dimensions, as nn.Linear takes them
    torch.testing.assert_close(layer(X.detach()[None]), ref(X.detach())[None])


def test_sparse_linear_handles_all_empty_and_uncoalesced_batches():
    torch.manual_seed(0)
    layer = SparseLinear(5, 2)
    no_entries = torch.empty(2, 0, dtype=torch.long), torch.empty(0)
    empty = torch.sparse_coo_tensor(*no_entries, (3, 5), check_invariants=True)
    torch.testing.assert_close(layer(empty), layer.bias.detach().expand(3, 2))
    # duplicate entries are summed, rows given out of order are sorted
    X = torch.sparse_coo_tensor(
        torch.tensor([[2, 0, 2], [1, 3, 1]]),
        torch.tensor([1.0, 2.0, 3.0]),
        (3, 5),
        check_invariants=True,
    )
    torch.testing.assert_close(layer(X), layer(X.to_dense()))


def test_sparse_linear_is_initialised_like_nn_linear():
    torch.manual_seed(0)
    layer = SparseLinear(3000, 8)
    bound = 1 / np.sqrt(3000)
    assert layer.weight.shape == (3000, 8) and layer.bias.shape == (8,)
    assert layer.weight.abs().max() <= bound and layer.bias.abs().max() <= bound
    # uniform on [-b, b]: standard deviation b / sqrt(3)
    np.testing.assert_allclose(layer.weight.std().item(), bound / np.sqrt(3), rtol=0.02)
    assert isinstance(layer.embedding, nn.EmbeddingBag) and layer.embedding.sparse


def test_mlp_sparse_input_replaces_the_first_hidden_layer_only():
    torch.manual_seed(0)
    net = MLP(7, 2, hidden_layer_sizes=(4, 3), sparse_input=True)
    assert isinstance(net.body[0], SparseLinear)
    assert [type(m) for m in net.body[1:]] == [nn.ReLU, nn.Linear, nn.ReLU]
    X = _batch_with_empty_rows()
    torch.testing.assert_close(net(X.to_sparse()), net(X))
    assert not any(
        isinstance(m, SparseLinear) for m in MLP(7, 2, hidden_layer_sizes=(4,)).modules()
    )
    # no hidden layer: nothing to replace
    assert not any(
        isinstance(m, SparseLinear)
        for m in MLP(7, 2, hidden_layer_sizes=(), sparse_input=True).modules()
    )


def test_mlp_sparse_input_keeps_the_standardisation():
    mean, scale = torch.tensor([1.0, -2.0, 0.0]), torch.tensor([2.0, 0.5, 1.0])
    net = MLP(3, 2, hidden_layer_sizes=(4,), input_mean=mean, input_scale=scale, sparse_input=True)
    X = torch.tensor([[1.0, 0.0, 3.0], [0.0, -2.0, 0.0]])
    expected = net.head(net.body[1](net.body[0]((X - mean) / scale)))
    torch.testing.assert_close(net(X), expected)
    torch.testing.assert_close(net(X.to_sparse()), expected)


def test_cosine_linear_takes_sparse_rows_as_their_dense_copies():
    torch.manual_seed(0)
    layer = CosineLinear(6, 3)
    X = torch.randn(5, 6) * (torch.rand(5, 6) < 0.4)
    X[1] = 0.0
    dense = layer(X)
    dense.sum().backward()
    grad = layer.weight.grad.clone()
    layer.weight.grad = None
    sparse = layer(X.to_sparse())
    sparse.sum().backward()
    torch.testing.assert_close(sparse, dense)
    torch.testing.assert_close(layer.weight.grad, grad)
    assert not sparse[1].any()


def test_ldam_network_without_hidden_layers_fits_sparse_input():
    rng = np.random.RandomState(0)
    y = np.repeat([0, 1, 2], [60, 25, 10])
    X = sp.random(len(y), 40, density=0.05, random_state=rng, format="lil")
    X[np.arange(len(y)), y] = 1.0  # one cue column per class
    clf = LDAMDRWClassifier(module__hidden_layer_sizes=(), max_epochs=30, random_state=0)
    clf.fit(X.tocsr(), y)
    assert isinstance(clf.module_.head, CosineLinear) and len(clf.module_.body) == 0
    assert (clf.predict(X.tocsr()) == y).mean() > 0.9


@pytest.mark.parametrize("hidden", [(), (8,), (8, 6)])
@pytest.mark.parametrize("cosine_head", [False, True])
def test_packed_members_are_independent_networks(hidden, cosine_head):
    torch.manual_seed(0)
    net = MLP(5, 3, hidden_layer_sizes=hidden, cosine_head=cosine_head, n_members=4)
    X = torch.randn(7, 5)
    out = net(X)
    assert out.shape == (7, 4, 3)
    # A loss on member 1's outputs moves no other member's weights.
    out[:, 1].square().sum().backward()
    for name, param in net.named_parameters():
        grad = param.grad
        if name == "head.0.weight" and cosine_head:
            # No hidden layer: one CosineLinear of (in, 4 * classes).
            grad = grad.reshape(grad.shape[0], 4, -1).transpose(0, 1)
        # Otherwise the member axis comes first: the first layer stacks the
        # members along its outputs, the ensemble layers along their first axis.
        norms = grad.reshape(4, -1).norm(dim=1)
        assert norms[1] > 0 and (norms[[0, 2, 3]] == 0).all(), name


def test_cosine_linear_ensemble_is_k_cosine_layers():
    layer = CosineLinearEnsemble(4, 3, k=2)
    x = torch.randn(5, 2, 4)
    out = layer(x)
    for member in range(2):
        single = CosineLinear(4, 3)
        with torch.no_grad():
            single.weight.copy_(layer.weight[member])
        torch.testing.assert_close(out[:, member], single(x[:, member]))
