"""Meta-Weight-Net: the exact meta-gradient and the estimator."""

import copy
import functools
import pickle

import _meta_nets as meta_nets
import numpy as np
import pytest
import scipy.sparse
import torch
import torch.nn.functional as F
from test_l2rw import heavy_tailed_extreme_imbalance
from torch.func import functional_call

from ldam_sklearn import MetaWeightNetClassifier
from ldam_sklearn.meta_weight_net import WeightingNet, meta_weight_net_gradient

N_FEATURES, N_CLASSES, N_TRAIN, N_META, LR = 5, 3, 24, 9, 0.3
ROUTES = ("layerwise", "jvp", "lookahead")
FAST = {"max_epochs": 5, "random_state": 0, "module__hidden_layer_sizes": (16,)}

ce = functools.partial(F.cross_entropy, reduction="none")


def make_mlp(seed):
    return meta_nets.make_mlp(seed, N_FEATURES, N_CLASSES)


def make_bn_net(seed):
    return meta_nets.make_bn_net(seed, N_FEATURES, N_CLASSES)


def make_weight_net(seed, dtype=torch.float64, n_classes=None):
    torch.manual_seed(100 + seed)
    return WeightingNet(hidden=10, n_classes=n_classes).to(dtype)


def make_data(seed, dtype=torch.float64):
    gen = torch.Generator().manual_seed(1000 + seed)
    X = torch.randn(N_TRAIN, N_FEATURES, generator=gen, dtype=dtype)
    y = torch.randint(0, N_CLASSES, (N_TRAIN,), generator=gen)
    X_meta = torch.randn(N_META, N_FEATURES, generator=gen, dtype=dtype)
    y_meta = torch.arange(N_META) % N_CLASSES
    return X, y, X_meta, y_meta


def double_backward_gradient(net, weight_net, X, y, X_meta, y_meta, lr, prior=None):
    """The official implementation's recipe: a differentiable look-ahead, then backward."""
    params = dict(net.named_parameters())
    buffers = {name: b.clone() for name, b in net.named_buffers()}
    losses = ce(functional_call(net, (params, buffers), (X,)), y)
    prior = torch.full_like(losses, 1 / len(y)) if prior is None else prior / prior.sum()
    weights = prior * weight_net(losses.detach(), y)
    weights = weights / torch.clamp(weights.sum(), min=0.5)
    weighted = (weights * losses).sum()
    grads = torch.autograd.grad(weighted, list(params.values()), create_graph=True)
    fast = {name: p - lr * g for (name, p), g in zip(params.items(), grads, strict=True)}
    meta = ce(functional_call(net, (fast, buffers), (X_meta,)), y_meta).mean()
    return torch.autograd.grad(meta, list(weight_net.parameters()))


def meta_loss_after_lookahead(net, weight_net, X, y, X_meta, y_meta, lr):
    """L_meta(θ̂(Θ)) with per-example gradients from one plain autograd call each."""
    params = [p for p in net.parameters()]
    with torch.no_grad():
        weights = weight_net(ce(net(X), y), y)
        weights = weights / max(weights.sum().item(), len(y) / 2)
    step = [torch.zeros_like(p) for p in params]
    for i in range(len(y)):
        grad_i = torch.autograd.grad(ce(net(X[i : i + 1]), y[i : i + 1]).sum(), params)
        step = [s + weights[i] * g for s, g in zip(step, grad_i, strict=True)]
    fast = {name: p - lr * s for (name, p), s in zip(net.named_parameters(), step, strict=True)}
    with torch.no_grad():
        return ce(functional_call(net, fast, (X_meta,)), y_meta).mean().item()


@pytest.mark.parametrize("n_classes", [None, N_CLASSES], ids=["loss", "class_aware"])
@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("method", ROUTES)
def test_meta_gradient_matches_double_backward(seed, method, n_classes):
    net, weight_net = make_mlp(seed), make_weight_net(seed, n_classes=n_classes)
    X, y, X_meta, y_meta = make_data(seed)
    expected = double_backward_gradient(net, weight_net, X, y, X_meta, y_meta, LR)
    grads = meta_weight_net_gradient(net, weight_net, X, y, X_meta, y_meta, lr=LR, method=method)
    assert len(grads) == len(expected) == 4
    assert max(g.abs().max() for g in expected) > 1e-6, "degenerate: no gradient to compare"
    for g, e in zip(grads, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("method", ROUTES)
def test_meta_gradient_in_float32_within_1e5(method):
    net, weight_net = make_mlp(0).float(), make_weight_net(0, torch.float32)
    X, y, X_meta, y_meta = make_data(0, torch.float32)
    expected = double_backward_gradient(net, weight_net, X, y, X_meta, y_meta, LR)
    grads = meta_weight_net_gradient(net, weight_net, X, y, X_meta, y_meta, lr=LR, method=method)
    for g, e in zip(grads, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-5, atol=1e-5)


def test_meta_gradient_matches_finite_differences():
    # An independent check of the formula itself: perturb Θ and re-evaluate
    # the meta loss after a look-ahead built from per-example gradients.
    net, weight_net = make_mlp(4), make_weight_net(4, n_classes=N_CLASSES)
    X, y, X_meta, y_meta = make_data(4)
    grads = meta_weight_net_gradient(net, weight_net, X, y, X_meta, y_meta, lr=LR)
    out_weight = weight_net.layers[2].weight
    eps = 1e-6
    for index in [(0, 0), (0, 3), (0, 7)]:
        with torch.no_grad():
            out_weight[index] += eps
        up = meta_loss_after_lookahead(net, weight_net, X, y, X_meta, y_meta, LR)
        with torch.no_grad():
            out_weight[index] -= 2 * eps
        down = meta_loss_after_lookahead(net, weight_net, X, y, X_meta, y_meta, LR)
        with torch.no_grad():
            out_weight[index] += eps
        assert grads[2][index].item() == pytest.approx((up - down) / (2 * eps), rel=1e-5)


@pytest.mark.parametrize("train", [True, False])
def test_batchnorm_net_jvp_matches_double_backward_and_keeps_state(train):
    net, weight_net = make_bn_net(1).train(train), make_weight_net(1)
    X, y, X_meta, y_meta = make_data(1)
    before = copy.deepcopy(net.state_dict())
    expected = double_backward_gradient(net, weight_net, X, y, X_meta, y_meta, LR)
    grads = meta_weight_net_gradient(net, weight_net, X, y, X_meta, y_meta, lr=LR)
    for g, e in zip(grads, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-8, atol=1e-12)
    for name, value in net.state_dict().items():
        assert torch.equal(value, before[name]), name
    assert net.training is train


@pytest.mark.parametrize("method", ROUTES)
def test_sample_weights_are_normalised_priors(method):
    net, weight_net = make_mlp(2), make_weight_net(2)
    X, y, X_meta, y_meta = make_data(2)
    prior = torch.rand(N_TRAIN, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    prior[:5] = 0
    expected = double_backward_gradient(net, weight_net, X, y, X_meta, y_meta, LR, prior)
    grads = meta_weight_net_gradient(
        net, weight_net, X, y, X_meta, y_meta, lr=LR, method=method, sample_weight=3 * prior
    )
    for g, e in zip(grads, expected, strict=True):
        torch.testing.assert_close(g, e, rtol=1e-8, atol=1e-12)


def test_sparse_linear_takes_the_layerwise_route_exactly_and_is_restored():
    net, twin = meta_nets.make_sparse_net(0, N_FEATURES, N_CLASSES)
    weight_net = make_weight_net(0, n_classes=N_CLASSES)
    X, y, X_meta, y_meta = make_data(0)
    X, X_meta = meta_nets.sparse_rows(X, 0), meta_nets.sparse_rows(X_meta, 1)
    before = copy.deepcopy(net.state_dict())
    grads = meta_weight_net_gradient(net, weight_net, X, y, X_meta, y_meta, lr=LR)
    for name, value in net.state_dict().items():
        assert torch.equal(value, before[name]), name
    expected = double_backward_gradient(
        twin, weight_net, X.to_dense(), y, X_meta.to_dense(), y_meta, LR
    )
    for g, e in zip(grads, expected, strict=True):
        torch.testing.assert_close(g, e, atol=1e-10, rtol=1e-8)


def test_networks_left_untouched():
    net, weight_net = make_mlp(0), make_weight_net(0)
    X, y, X_meta, y_meta = make_data(0)
    snapshot = copy.deepcopy((net.state_dict(), weight_net.state_dict()))
    for method in ROUTES:
        meta_weight_net_gradient(net, weight_net, X, y, X_meta, y_meta, lr=LR, method=method)
    for module, state in zip((net, weight_net), snapshot, strict=True):
        for name, value in module.state_dict().items():
            assert torch.equal(value, state[name])
        assert all(p.grad is None for p in module.parameters())


def test_invalid_inputs():
    net, weight_net = make_mlp(0), make_weight_net(0)
    X, y, X_meta, y_meta = make_data(0)
    with pytest.raises(ValueError, match="non-empty"):
        meta_weight_net_gradient(net, weight_net, X, y, X_meta[:0], y_meta[:0], lr=LR)
    with pytest.raises(ValueError, match="layerwise"):
        meta_weight_net_gradient(
            make_bn_net(0), weight_net, X, y, X_meta, y_meta, lr=LR, method="layerwise"
        )


def test_weighting_net_maps_losses_into_unit_interval():
    weight_net = make_weight_net(0)
    losses = torch.linspace(0, 50, 101, dtype=torch.float64)
    weights = weight_net(losses)
    assert weights.shape == losses.shape
    assert ((weights > 0) & (weights < 1)).all()


# -- the estimator ---------------------------------------------------------------


def test_fit_records_history_and_keeps_the_weighting_net_apart(imbalanced_data):
    X, y = imbalanced_data
    clf = MetaWeightNetClassifier(**FAST).fit(X, y)
    assert isinstance(clf.weight_net_, WeightingNet)
    assert clf.weight_net_.layers[0].out_features == 100
    classifier_params = {id(p) for group in clf.optimizer_.param_groups for p in group["params"]}
    assert classifier_params == {id(p) for p in clf.module_.parameters()}
    adam = clf.weight_optimizer_
    assert isinstance(adam, torch.optim.Adam)
    assert (adam.defaults["lr"], adam.defaults["weight_decay"]) == (1e-3, 1e-4)
    # One meta step per batch: skorch would step every registered optimizer
    # with the training closure, running the meta step once per optimizer.
    batches = sum(len(row["batches"]) for row in clf.history)
    first = next(iter(clf.weight_net_.parameters()))
    assert int(adam.state[first]["step"]) == batches
    meta_losses = clf.history[:, "meta_loss"]
    assert len(meta_losses) == 5 and np.isfinite(meta_losses).all()
    per_class = clf.history[-1, "meta_weight_per_class"]
    assert all(0 < w <= 2 for w in per_class)
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0)


@pytest.mark.parametrize("real_step_weights", ["lookahead", "updated"])
def test_training_step_applies_one_adam_step_of_the_exact_meta_gradient(
    imbalanced_data, real_step_weights
):
    X, y = imbalanced_data
    clf = MetaWeightNetClassifier(
        real_step_weights=real_step_weights, **{**FAST, "max_epochs": 1}
    ).fit(X, y)
    Xb = torch.as_tensor(X[:64], dtype=torch.float32)
    yb = torch.as_tensor(y[:64])
    X_meta, y_meta = clf._meta_batch
    lr = clf.optimizer_.param_groups[0]["lr"]
    grads = meta_weight_net_gradient(
        clf.module_, clf.weight_net_, Xb, yb, X_meta, y_meta, clf.criterion_, lr=lr
    )
    before = copy.deepcopy(clf.weight_net_)
    expected_net = copy.deepcopy(clf.weight_net_)
    expected_adam = torch.optim.Adam(expected_net.parameters(), lr=1e-3, weight_decay=1e-4)
    # A deep copy: load_state_dict would share the moment tensors.
    expected_adam.load_state_dict(copy.deepcopy(clf.weight_optimizer_.state_dict()))
    for param, grad in zip(expected_net.parameters(), grads, strict=True):
        param.grad = grad
    expected_adam.step()

    clf.optimizer_.zero_grad()
    step = clf.train_step_single((Xb, yb))
    for param, expected in zip(
        clf.weight_net_.parameters(), expected_net.parameters(), strict=True
    ):
        torch.testing.assert_close(param, expected, rtol=1e-6, atol=1e-7)
    weighting = before if real_step_weights == "lookahead" else clf.weight_net_
    with torch.no_grad():
        losses = clf.criterion_(clf.module_(Xb), yb)
        v = weighting(losses, yb)
        torch.testing.assert_close(step["weights"], v / max(v.sum(), 32))


@pytest.mark.parametrize("method", ROUTES)
@pytest.mark.parametrize("real_step_weights", ["lookahead", "updated"])
def test_real_step_trains_on_the_weighted_loss_it_reports(
    imbalanced_data, method, real_step_weights
):
    # "lookahead" takes the look-ahead's gradient as the real step's: it must
    # be the gradient of Σ w_i ℓ_i for the weights it reports, on every route.
    X, y = imbalanced_data
    clf = MetaWeightNetClassifier(
        weight_method=method, real_step_weights=real_step_weights, **{**FAST, "max_epochs": 1}
    ).fit(X, y)
    Xb = torch.as_tensor(X[:64], dtype=torch.float32)
    yb = torch.as_tensor(y[:64])
    clf.optimizer_.zero_grad()
    step = clf.train_step_single((Xb, yb))
    params = list(clf.module_.parameters())
    weighted = (step["weights"] * clf.criterion_(clf.module_(Xb), yb)).sum()
    for param, expected in zip(params, torch.autograd.grad(weighted, params), strict=True):
        torch.testing.assert_close(param.grad, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", range(3))
def test_defaults_do_not_diverge_when_few_examples_agree(seed):
    X, y = heavy_tailed_extreme_imbalance(seed)
    clf = MetaWeightNetClassifier(max_epochs=20, random_state=0).fit(X, y)
    assert np.isfinite(clf.history[:, "train_loss"]).all()


def test_jvp_route_trains_like_the_layerwise_route(imbalanced_data):
    X, y = imbalanced_data
    fits = [
        MetaWeightNetClassifier(weight_method=method, **{**FAST, "max_epochs": 2}).fit(X, y)
        for method in ("layerwise", "jvp")
    ]
    np.testing.assert_allclose(fits[0].predict_proba(X), fits[1].predict_proba(X), atol=1e-4)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fits_sparse_input_and_bf16(imbalanced_data, sparse, precision):
    X, y = imbalanced_data
    if sparse:
        X = scipy.sparse.csr_matrix(np.where(np.abs(X) > 1, X, 0))
    clf = MetaWeightNetClassifier(precision=precision, **{**FAST, "max_epochs": 2}).fit(X, y)
    assert np.isfinite(clf.history[:, "meta_loss"]).all()
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"weight_net_hidden": 0}, "weight_net_hidden must be an integer >= 1"),
        ({"meta_lr": 0.0}, "meta_lr must be a real number > 0"),
        ({"meta_weight_decay": -1.0}, "meta_weight_decay must be a real number >= 0"),
        ({"real_step_weights": "paper"}, r"real_step_weights='paper' is not valid; choose one"),
    ],
)
def test_bad_parameters_rejected_at_fit(imbalanced_data, params, message):
    X, y = imbalanced_data
    with pytest.raises(ValueError, match=message):
        MetaWeightNetClassifier(**params).fit(X, y)


def test_default_optimizer_gets_weight_decay_a_users_choice_wins(imbalanced_data):
    X, y = imbalanced_data

    def decay(**params):
        clf = MetaWeightNetClassifier(**{**FAST, "max_epochs": 1, **params}).fit(X, y)
        assert clf.weight_optimizer_.param_groups[0]["weight_decay"] == 1e-4
        return clf.optimizer_.param_groups[0]["weight_decay"]

    assert decay() == 2e-3
    assert decay(optimizer__weight_decay=1e-4) == 1e-4
    assert decay(optimizer=torch.optim.SGD) == 0


def test_pickle_round_trip(imbalanced_data):
    X, y = imbalanced_data
    clf = MetaWeightNetClassifier(**FAST).fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    assert "_meta_batch" not in restored.__dict__
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    for a, b in zip(restored.weight_net_.parameters(), clf.weight_net_.parameters(), strict=True):
        assert torch.equal(a, b)


def test_class_aware_weighting_net_takes_the_labels():
    net = make_weight_net(0, n_classes=N_CLASSES)
    losses = torch.full((N_CLASSES,), 0.5, dtype=torch.float64)
    weights = net(losses, torch.arange(N_CLASSES))
    assert weights.shape == (N_CLASSES,) and len(set(weights.tolist())) == N_CLASSES
    with pytest.raises(ValueError, match="labels"):
        net(losses)
    plain = make_weight_net(0)
    torch.testing.assert_close(plain(losses), plain(losses, torch.arange(N_CLASSES)))


def test_class_aware_estimator_weights_each_class_by_its_own_function(imbalanced_data):
    X, y = imbalanced_data
    clf = MetaWeightNetClassifier(class_aware=True, **FAST).fit(X, y)
    assert clf.weight_net_.n_classes == 3
    assert clf.weight_net_.layers[0].in_features == 4
    losses = torch.full((3,), 1.0)
    weights = clf.weight_net_(losses, torch.arange(3))
    assert len(set(weights.tolist())) == 3
    assert np.isfinite(clf.history[:, "meta_loss"]).all()
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
