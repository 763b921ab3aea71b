"""Tests for ldam_sklearn.meta_reweighting (Ren et al. 2018, Algorithm 1)."""

import copy
import functools
import subprocess
import sys
import warnings

import _meta_nets as meta_nets
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ldam_sklearn.meta_reweighting import (
    META_WEIGHT_METHODS,
    _ignore_torch_jit_deprecation,
    l2rw_example_weights,
    meta_weighted_loss,
    select_method,
)
from ldam_sklearn.modules import MLP

N_FEATURES, N_CLASSES, N_TRAIN, N_META = 5, 4, 24, 10
CLOSED_FORMS = ("jvp", "layerwise")
ALL_METHODS = ("lookahead", "jvp", "layerwise")


def make_mlp(seed, n_classes=N_CLASSES):
    return meta_nets.make_mlp(seed, N_FEATURES, n_classes)


def make_bn_net(seed):
    return meta_nets.make_bn_net(seed, N_FEATURES, N_CLASSES)


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 3, kernel_size=3)
        self.head = nn.Linear(3 * (N_FEATURES - 2), N_CLASSES)

    def forward(self, X):
        return self.head(torch.relu(self.conv(X.unsqueeze(1))).flatten(1))


class SequenceNet(nn.Module):
    """A Linear applied per position of a (N, T, d) input, and a Linear used twice."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(1, 6)
        self.shared = nn.Linear(6, 6)
        self.head = nn.Linear(6, N_CLASSES)

    def forward(self, X):
        h = torch.tanh(self.embed(X.unsqueeze(-1)))
        h = self.shared(torch.relu(self.shared(h)))
        return self.head(h.mean(dim=1))


def make_data(seed, n_train=N_TRAIN, n_meta=N_META, n_classes=N_CLASSES):
    gen = torch.Generator().manual_seed(1000 + seed)
    X = torch.randn(n_train, N_FEATURES, generator=gen, dtype=torch.float64)
    y = torch.randint(0, n_classes, (n_train,), generator=gen)
    X_meta = torch.randn(n_meta, N_FEATURES, generator=gen, dtype=torch.float64)
    y_meta = torch.randint(0, n_classes, (n_meta,), generator=gen)
    return X, y, X_meta, y_meta


def brute_force_scores(net, X, y, X_meta, y_meta, loss_fn):
    """⟨∇θ L_meta, ∇θ ℓ_i⟩ from one plain autograd call per training example."""
    params = [p for p in net.parameters() if p.requires_grad]
    meta_grad = torch.autograd.grad(loss_fn(net(X_meta), y_meta).mean(), params)
    scores = []
    for i in range(len(y)):
        grad_i = torch.autograd.grad(loss_fn(net(X[i : i + 1]), y[i : i + 1]).sum(), params)
        scores.append(sum((g * gi).sum() for g, gi in zip(meta_grad, grad_i, strict=True)))
    return torch.stack(scores)


def state_snapshot(net):
    return {name: t.detach().clone() for name, t in [*net.named_parameters(), *net.named_buffers()]}


def assert_state_equal(net, snapshot):
    current = state_snapshot(net)
    assert current.keys() == snapshot.keys()
    for name, value in snapshot.items():
        assert torch.equal(current[name], value), name


ce = functools.partial(F.cross_entropy, reduction="none")


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("method", CLOSED_FORMS)
@pytest.mark.parametrize("normalize", [True, False])
def test_closed_forms_match_lookahead(seed, method, normalize):
    net = make_mlp(seed)
    X, y, X_meta, y_meta = make_data(seed)
    reference = l2rw_example_weights(
        net, X, y, X_meta, y_meta, method="lookahead", normalize=normalize
    )
    weights = l2rw_example_weights(net, X, y, X_meta, y_meta, method=method, normalize=normalize)
    assert weights.shape == (N_TRAIN,)
    assert (reference > 0).sum() >= 2, "degenerate data: too few positive weights to compare"
    torch.testing.assert_close(weights, reference, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_matches_brute_force_per_example_gradients(method):
    net = make_mlp(7, n_classes=3)
    X, y, X_meta, y_meta = make_data(7, n_train=10, n_meta=6, n_classes=3)
    scores = brute_force_scores(net, X, y, X_meta, y_meta, ce)
    rectified = scores.clamp(min=0)
    assert 0 < (rectified > 0).sum() < len(y), "test needs both kept and dropped examples"

    raw = l2rw_example_weights(net, X, y, X_meta, y_meta, method=method, normalize=False)
    torch.testing.assert_close(raw, rectified, atol=1e-10, rtol=1e-8)
    weights = l2rw_example_weights(net, X, y, X_meta, y_meta, method=method)
    torch.testing.assert_close(weights, rectified / rectified.sum(), atol=1e-10, rtol=1e-8)
    assert weights.sum().item() == pytest.approx(1.0)


@pytest.mark.parametrize("method", CLOSED_FORMS)
def test_custom_per_example_loss(method):
    """A loss module with an extra optional argument, like the LDAM losses."""

    class MarginLoss(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer(
                "margins", torch.tensor([0.5, 0.2, 0.1, 0.05], dtype=torch.float64)
            )

        def forward(self, input, target, sample_weight=None):
            shifted = input - F.one_hot(target, N_CLASSES) * self.margins[target, None]
            return F.cross_entropy(10.0 * shifted, target, reduction="none")

    net = make_mlp(3)
    X, y, X_meta, y_meta = make_data(3)
    loss = MarginLoss()
    reference = l2rw_example_weights(net, X, y, X_meta, y_meta, loss, method="lookahead")
    weights = l2rw_example_weights(net, X, y, X_meta, y_meta, loss, method=method)
    torch.testing.assert_close(weights, reference, atol=1e-10, rtol=1e-8)


def test_layerwise_handles_extra_dimensions_and_reused_layers():
    torch.manual_seed(0)
    net = SequenceNet().double()
    X, y, X_meta, y_meta = make_data(5)
    assert select_method(net) == "layerwise"
    scores = brute_force_scores(net, X, y, X_meta, y_meta, ce).clamp(min=0)
    for method in ALL_METHODS:
        raw = l2rw_example_weights(net, X, y, X_meta, y_meta, method=method, normalize=False)
        torch.testing.assert_close(raw, scores, atol=1e-10, rtol=1e-8, msg=method)


def test_frozen_parameters_are_not_weighted_by():
    net = make_mlp(2)
    net[0].weight.requires_grad_(False)
    net[2].bias.requires_grad_(False)
    X, y, X_meta, y_meta = make_data(2)
    scores = brute_force_scores(net, X, y, X_meta, y_meta, ce).clamp(min=0)
    for method in ALL_METHODS:
        raw = l2rw_example_weights(net, X, y, X_meta, y_meta, method=method, normalize=False)
        torch.testing.assert_close(raw, scores, atol=1e-10, rtol=1e-8, msg=method)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("train", [True, False])
def test_batchnorm_jvp_matches_lookahead_and_keeps_running_stats(seed, train):
    net = make_bn_net(seed).train(train)
    X, y, X_meta, y_meta = make_data(seed)
    snapshot = state_snapshot(net)
    reference = l2rw_example_weights(net, X, y, X_meta, y_meta, method="lookahead")
    assert_state_equal(net, snapshot)
    weights = l2rw_example_weights(net, X, y, X_meta, y_meta, method="auto")
    assert_state_equal(net, snapshot)
    assert net.training is train
    assert (reference > 0).sum() >= 2
    torch.testing.assert_close(weights, reference, atol=1e-10, rtol=1e-8)


def test_batchnorm_eval_mode_matches_brute_force():
    # In eval mode BatchNorm is per-example, so the independent check applies.
    net = make_bn_net(4).eval()
    X, y, X_meta, y_meta = make_data(4)
    scores = brute_force_scores(net, X, y, X_meta, y_meta, ce).clamp(min=0)
    raw = l2rw_example_weights(net, X, y, X_meta, y_meta, normalize=False)
    torch.testing.assert_close(raw, scores, atol=1e-10, rtol=1e-8)


def test_conv_jvp_matches_lookahead():
    torch.manual_seed(0)
    net = ConvNet().double()
    X, y, X_meta, y_meta = make_data(6)
    assert select_method(net) == "jvp"
    reference = l2rw_example_weights(net, X, y, X_meta, y_meta, method="lookahead")
    weights = l2rw_example_weights(net, X, y, X_meta, y_meta)
    torch.testing.assert_close(weights, reference, atol=1e-10, rtol=1e-8)


def opposed_binary_problem():
    """Every per-example gradient points against the meta gradient.

    For a linear model z = W x + b and cross-entropy on two classes, the
    gradient of ℓ wrt z is (-p1, p1) for label 0 and (p0, -p0) for label 1, so
    ⟨∇ℓ_i, ∇ℓ_j⟩ = -2 p1_i p0_j (x_i·x_j + 1) < 0 whenever the inputs are
    non-negative: training on label 0 and meta-validating on label 1 gives
    strictly negative dot products, whatever W and b are.
    """
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(N_FEATURES, 2)).double()
    X = torch.rand(N_TRAIN, N_FEATURES, dtype=torch.float64)
    X_meta = torch.rand(N_META, N_FEATURES, dtype=torch.float64)
    y = torch.zeros(N_TRAIN, dtype=torch.long)
    y_meta = torch.ones(N_META, dtype=torch.long)
    return net, X, y, X_meta, y_meta


@pytest.mark.parametrize("method", ALL_METHODS)
def test_all_negative_scores_give_zero_weights_and_zero_update(method):
    net, X, y, X_meta, y_meta = opposed_binary_problem()
    assert (brute_force_scores(net, X, y, X_meta, y_meta, ce) < 0).all()

    for normalize in (True, False):
        weights = l2rw_example_weights(
            net, X, y, X_meta, y_meta, method=method, normalize=normalize
        )
        assert torch.equal(weights, torch.zeros(N_TRAIN, dtype=torch.float64))

    loss, weights, _ = meta_weighted_loss(net, X, y, X_meta, y_meta, method=method)
    assert torch.equal(weights, torch.zeros(N_TRAIN, dtype=torch.float64))
    assert loss.item() == 0.0
    loss.backward()
    for p in net.parameters():
        assert p.grad is not None
        assert torch.equal(p.grad, torch.zeros_like(p))


@pytest.mark.parametrize("method", ALL_METHODS)
def test_one_agreeing_example_keeps_its_share_under_sign_weighting(method):
    """Issue #16: the lone agreeing example must not take the whole batch's weight."""
    net, X, y, X_meta, y_meta = opposed_binary_problem()
    y = y.clone()
    y[3] = 1  # same label as the meta batch: its gradient agrees, the others oppose
    assert ((brute_force_scores(net, X, y, X_meta, y_meta, ce) > 0) == (y == 1)).all()
    expected = torch.zeros(N_TRAIN, dtype=torch.float64)

    _, weights, _ = meta_weighted_loss(net, X, y, X_meta, y_meta, method=method, weighting="sign")
    expected[3] = 1 / N_TRAIN
    torch.testing.assert_close(weights, expected, rtol=0, atol=1e-15)

    prior = torch.linspace(0.5, 2.0, N_TRAIN, dtype=torch.float64)
    _, weights, _ = meta_weighted_loss(
        net, X, y, X_meta, y_meta, method=method, weighting="sign", sample_weight=prior
    )
    expected[3] = prior[3] / prior.sum()
    torch.testing.assert_close(weights, expected, rtol=1e-12, atol=0)

    # "exact" stays Algorithm 1: normalised by the agreeing total.
    _, weights, _ = meta_weighted_loss(net, X, y, X_meta, y_meta, method=method, weighting="exact")
    expected[3] = 1.0
    torch.testing.assert_close(weights, expected, rtol=0, atol=1e-12)


def test_sign_weighting_of_a_weightless_batch_is_zero():
    net, X, y, X_meta, y_meta = opposed_binary_problem()
    loss, weights, _ = meta_weighted_loss(
        net, X, 1 - y, X_meta, y_meta, weighting="sign", sample_weight=torch.zeros(N_TRAIN)
    )
    assert torch.equal(weights, torch.zeros(N_TRAIN, dtype=torch.float64))
    assert loss.item() == 0.0


def make_frozen_mlp(seed):
    net = make_mlp(seed)
    net[0].weight.requires_grad_(False)
    net[2].bias.requires_grad_(False)
    return net


def make_sequence_net(seed):
    torch.manual_seed(seed)
    return SequenceNet().double()


def make_hooked_mlp(seed):
    net = make_mlp(seed)
    net[2].register_forward_hook(lambda layer, inputs, output: 2.0 * output)
    return net


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta:UserWarning")
@pytest.mark.parametrize(
    "make_net, sparse",
    [
        (make_mlp, False),
        (make_mlp, True),
        (make_frozen_mlp, False),
        (make_sequence_net, False),
        (make_hooked_mlp, False),
    ],
)
@pytest.mark.parametrize("method", ALL_METHODS)
def test_meta_weighted_loss_gradient(make_net, sparse, method):
    net = make_net(1)
    X, y, X_meta, y_meta = make_data(1)
    X_step = X.to_sparse_csr() if sparse else X
    loss, weights, _ = meta_weighted_loss(net, X_step, y, X_meta, y_meta, method=method)
    assert all(p.grad is None for p in net.parameters())
    reference = l2rw_example_weights(net, X, y, X_meta, y_meta, method="lookahead")
    torch.testing.assert_close(weights, reference, atol=1e-10, rtol=1e-8)

    trainable = [p for p in net.parameters() if p.requires_grad]
    expected = (weights * ce(net(X), y)).sum()
    expected_grads = torch.autograd.grad(expected, trainable)
    torch.testing.assert_close(loss, expected, atol=1e-12, rtol=1e-10)
    loss.backward()
    for p, g in zip(trainable, expected_grads, strict=True):
        torch.testing.assert_close(p.grad, g, atol=1e-12, rtol=1e-10)
    assert all(p.grad is None for p in net.parameters() if not p.requires_grad)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("normalize", [True, False])
def test_sparse_linear_takes_the_layerwise_route_exactly(seed, normalize):
    net, twin = meta_nets.make_sparse_net(seed, N_FEATURES, N_CLASSES)
    assert select_method(net) == "layerwise"
    X, y, X_meta, y_meta = make_data(seed)
    X, X_meta = meta_nets.sparse_rows(X, seed), meta_nets.sparse_rows(X_meta, seed + 10)
    weights = l2rw_example_weights(net, X, y, X_meta, y_meta, normalize=normalize)
    reference = l2rw_example_weights(
        twin, X.to_dense(), y, X_meta.to_dense(), y_meta, method="lookahead", normalize=normalize
    )
    torch.testing.assert_close(weights, reference, atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("method", ["jvp", "lookahead"])
def test_sparse_linear_refused_by_the_other_routes(method):
    net, _ = meta_nets.make_sparse_net(0, N_FEATURES, N_CLASSES)
    X, y, X_meta, y_meta = make_data(0)
    with pytest.raises(ValueError, match=f"The '{method}' route cannot differentiate through"):
        l2rw_example_weights(net, X, y, X_meta, y_meta, method=method)
    net.insert(1, nn.BatchNorm1d(12).double())  # "auto" must take the jvp route
    with pytest.raises(ValueError, match=r"route \(method='auto' chose it for this module\)"):
        l2rw_example_weights(net, X, y, X_meta, y_meta)


def test_sparse_linear_weighted_loss_writes_sparse_rows_of_the_exact_gradient():
    net, twin = meta_nets.make_sparse_net(0, N_FEATURES, N_CLASSES)
    X, y, X_meta, y_meta = make_data(0)
    X = meta_nets.sparse_rows(X, 0).to_dense()
    X[:, 2] = 0  # a feature absent from the batch: no row of the gradient
    X = X.to_sparse().coalesce()
    loss, weights, _ = meta_weighted_loss(net, X, y, X_meta, y_meta)
    loss.backward()
    twin_loss = (weights * ce(twin(X.to_dense()), y)).sum()
    twin_loss.backward()
    table = net[0].weight.grad
    assert table.layout == torch.sparse_coo
    assert set(table.coalesce().indices()[0].tolist()) == set(X.indices()[1].tolist())
    torch.testing.assert_close(table.to_dense(), twin[0].weight.grad.T, atol=1e-12, rtol=1e-10)
    for p, q in zip(net[2:].parameters(), twin[2:].parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-12, rtol=1e-10)


def test_meta_weighted_loss_updates_batchnorm_like_a_plain_step():
    net = make_bn_net(0).train()
    plain = copy.deepcopy(net)
    X, y, X_meta, y_meta = make_data(0)
    meta_weighted_loss(net, X, y, X_meta, y_meta)
    plain(X)
    for name, buf in plain.named_buffers():
        torch.testing.assert_close(dict(net.named_buffers())[name], buf, rtol=0, atol=0)


@pytest.mark.parametrize("method", ALL_METHODS)
@pytest.mark.parametrize("train", [True, False])
def test_module_left_untouched(method, train):
    net = make_mlp(0)
    net.insert(1, nn.Dropout(p=0.0))
    net.train(train)
    X, y, X_meta, y_meta = make_data(0)
    snapshot = state_snapshot(net)
    net[0].weight.grad = torch.ones_like(net[0].weight)
    l2rw_example_weights(net, X, y, X_meta, y_meta, method=method)
    assert_state_equal(net, snapshot)
    assert torch.equal(net[0].weight.grad, torch.ones_like(net[0].weight))
    assert all(p.grad is None for name, p in net.named_parameters() if name != "0.weight")
    assert all(m.training is train for m in net.modules())


def test_works_under_no_grad():
    net = make_mlp(0)
    X, y, X_meta, y_meta = make_data(0)
    expected = l2rw_example_weights(net, X, y, X_meta, y_meta)
    with torch.no_grad():
        weights = l2rw_example_weights(net, X, y, X_meta, y_meta)
    torch.testing.assert_close(weights, expected)
    assert not weights.requires_grad


def test_float32_module():
    net = make_mlp(0).float()
    X, y, X_meta, y_meta = (t.float() if t.is_floating_point() else t for t in make_data(0))
    reference = l2rw_example_weights(net, X, y, X_meta, y_meta, method="lookahead")
    for method in CLOSED_FORMS:
        weights = l2rw_example_weights(net, X, y, X_meta, y_meta, method=method)
        assert weights.dtype == torch.float32
        torch.testing.assert_close(weights, reference, atol=1e-5, rtol=1e-4)


def test_auto_method_selection():
    mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.0), nn.Linear(8, 2))
    assert select_method(mlp) == "layerwise"
    assert select_method(mlp, "jvp") == "jvp"
    assert select_method(mlp, "lookahead") == "lookahead"
    assert (
        select_method(nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2))) == "jvp"
    )
    # No parameters or buffers, but batch statistics still couple the examples.
    bn_stateless = nn.BatchNorm1d(8, affine=False, track_running_stats=False)
    assert select_method(nn.Sequential(nn.Linear(4, 8), bn_stateless, nn.Linear(8, 2))) == "jvp"
    assert select_method(ConvNet()) == "jvp"
    # A frozen non-linear layer does not enter the dot products.
    frozen = nn.Sequential(nn.Conv1d(1, 2, 3).requires_grad_(False), nn.Flatten(), nn.Linear(4, 2))
    assert select_method(frozen) == "layerwise"

    class CustomLinear(nn.Linear):
        def forward(self, input):
            return super().forward(input) ** 2

    assert select_method(nn.Sequential(CustomLinear(4, 2))) == "jvp"
    assert set(META_WEIGHT_METHODS) == {"auto", *ALL_METHODS}


def test_layerwise_refused_for_unsuitable_module():
    with pytest.raises(ValueError, match="layerwise"):
        select_method(ConvNet(), "layerwise")
    net = make_bn_net(0)
    X, y, X_meta, y_meta = make_data(0)
    with pytest.raises(ValueError, match="jvp"):
        l2rw_example_weights(net, X, y, X_meta, y_meta, method="layerwise")


def test_invalid_inputs():
    net = make_mlp(0)
    X, y, X_meta, y_meta = make_data(0)
    with pytest.raises(ValueError, match="lookahead"):
        l2rw_example_weights(net, X, y, X_meta, y_meta, method="exact")
    with pytest.raises(ValueError, match="non-empty"):
        l2rw_example_weights(net, X, y, X_meta[:0], y_meta[:0])
    with pytest.raises(ValueError, match="non-empty"):
        meta_weighted_loss(net, X[:0], y[:0], X_meta, y_meta)
    with pytest.raises(ValueError, match="same length"):
        l2rw_example_weights(net, X, y[:-1], X_meta, y_meta)
    with pytest.raises(ValueError, match="reduction='none'"):
        l2rw_example_weights(net, X, y, X_meta, y_meta, F.cross_entropy)
    with pytest.raises(ValueError, match="trainable"):
        l2rw_example_weights(net.requires_grad_(False), X, y, X_meta, y_meta)


class SquareWithoutJvp(torch.autograd.Function):
    """x², with a backward but no forward-mode derivative."""

    @staticmethod
    def forward(x):
        return x * x

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 2 * x * grad


class NoForwardADNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 2, kernel_size=3)
        self.head = nn.Linear(2 * (N_FEATURES - 2), N_CLASSES)

    def forward(self, X):
        return self.head(SquareWithoutJvp.apply(self.conv(X.unsqueeze(1))).flatten(1))


def test_auto_falls_back_to_lookahead_without_forward_ad():
    torch.manual_seed(0)
    net = NoForwardADNet().double()
    X, y, X_meta, y_meta = make_data(0)
    with pytest.raises(NotImplementedError):
        l2rw_example_weights(net, X, y, X_meta, y_meta, method="jvp")
    reference = l2rw_example_weights(net, X, y, X_meta, y_meta, method="lookahead")
    with pytest.warns(RuntimeWarning, match="lookahead"):
        weights = l2rw_example_weights(net, X, y, X_meta, y_meta)
    torch.testing.assert_close(weights, reference, rtol=0, atol=0)


@pytest.mark.parametrize("method", ALL_METHODS)
def test_meta_weighted_loss_respects_loss_scaling(method):
    # Scaled backward passes (e.g. a GradScaler) must scale every gradient.
    net = make_mlp(2)
    X, y, X_meta, y_meta = make_data(2)
    loss, weights, _ = meta_weighted_loss(net, X, y, X_meta, y_meta, method=method)
    (3.0 * loss).backward()
    expected = torch.autograd.grad(3.0 * (weights * ce(net(X), y)).sum(), list(net.parameters()))
    for p, g in zip(net.parameters(), expected, strict=True):
        torch.testing.assert_close(p.grad, g, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("method", CLOSED_FORMS)
def test_standardising_mlp_takes_the_layerwise_route_exactly(method):
    # The default MLP's input statistics are buffers, read but never written.
    torch.manual_seed(3)
    net = MLP(
        N_FEATURES,
        N_CLASSES,
        (8,),
        input_mean=torch.randn(N_FEATURES),
        input_scale=torch.rand(N_FEATURES) + 0.5,
    ).double()
    assert select_method(net) == "layerwise"
    X, y, X_meta, y_meta = make_data(3)
    reference = l2rw_example_weights(net, X, y, X_meta, y_meta, method="lookahead")
    weights = l2rw_example_weights(net, X, y, X_meta, y_meta, method=method)
    torch.testing.assert_close(weights, reference, atol=1e-10, rtol=1e-8)


_FRESH_JVP_FIT = """
import torch
from torch import nn
from ldam_sklearn.meta_reweighting import l2rw_example_weights
torch.manual_seed(0)
net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
X, y = torch.randn(8, 3), torch.arange(8) % 2
l2rw_example_weights(net, X, y, X[:4], y[:4], method="jvp")
"""


def test_first_jvp_call_in_a_process_warns_nothing():
    # torch scripts its jvp decompositions with the deprecated torch.jit.script
    # on the first forward-mode call of a process (a DeprecationWarning in
    # torch 2.13, a FutureWarning in 2.14); only a fresh interpreter sees it.
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", _FRESH_JVP_FIT], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


@pytest.mark.parametrize("category", [DeprecationWarning, FutureWarning, UserWarning])
def test_torch_jit_filter_ignores_torch_own_warning_in_any_category(category):
    message = "`torch.jit.script` is deprecated. Please switch to `torch.compile`."
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _ignore_torch_jit_deprecation()
        warnings.warn_explicit(message, category, "_script.py", 1, module="torch.jit._script")
        # The same text from outside torch, and torch's other warnings, still show.
        warnings.warn_explicit(message, category, "user.py", 1, module="user_code")
        warnings.warn_explicit("another torch warning", category, "a.py", 1, module="torch.jit")
    assert [str(w.message) for w in caught] == [message, "another torch warning"]
