"""Tests for ldam_sklearn.losses against independent NumPy references."""

import numpy as np
import pytest
import torch

from ldam_sklearn.losses import (
    BalancedSoftmaxLoss,
    CrossEntropyLoss,
    FocalLoss,
    LDAMLoss,
    LogitAdjustedLoss,
    class_balanced_weights,
    ldam_margins,
)

COUNTS = np.array([500, 120, 40, 9, 3])
N_CLASSES = len(COUNTS)
N_SAMPLES = 32


# --------------------------------------------------------------------------
# NumPy references, written from the formulas, not from the implementation.
# --------------------------------------------------------------------------
def np_log_softmax(z):
    m = z.max(axis=1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))


def np_ce(z, y):
    return -np_log_softmax(z)[np.arange(len(y)), y]


def np_ldam_margins(counts, max_m):
    m = 1.0 / np.asarray(counts, dtype=np.float64) ** 0.25
    return m * max_m / m.max()


def np_ldam(z, y, counts, max_m=0.5, s=30.0):
    onehot = np.eye(z.shape[1])[y]
    margins = np_ldam_margins(counts, max_m)
    return np_ce(s * (z - margins[y][:, None] * onehot), y)


def np_focal(z, y, gamma):
    logp_all = np_log_softmax(z)
    rows = np.arange(len(y))
    logp = logp_all[rows, y]
    # 1 - p_t as the sum of the other classes' probabilities: exact even when
    # p_t rounds to 1.
    others = np.exp(logp_all)
    others[rows, y] = 0.0
    return -(others.sum(axis=1) ** gamma) * logp


def np_logit_adjusted(z, y, counts, tau):
    prior = np.asarray(counts, dtype=np.float64) / np.sum(counts)
    return np_ce(z + tau * np.log(prior), y)


def np_balanced_softmax(z, y, counts):
    return np_ce(z + np.log(np.asarray(counts, dtype=np.float64)), y)


def np_class_balanced_weights(counts, beta):
    w = (1.0 - beta) / (1.0 - beta ** np.asarray(counts, dtype=np.float64))
    return w * len(counts) / w.sum()


def np_reduce(per_example, y, reduction, class_weight=None, sample_weight=None):
    w = np.ones(len(y)) if class_weight is None else np.asarray(class_weight)[y]
    if sample_weight is not None:
        w = w * sample_weight
    if reduction == "none":
        return per_example * w
    if reduction == "sum":
        return np.sum(per_example * w)
    return np.sum(per_example * w) / np.sum(w)


# (factory for the module, NumPy per-example reference)
LOSS_CASES = {
    "ce": (
        lambda **kw: CrossEntropyLoss(COUNTS, **kw),
        lambda z, y: np_ce(z, y),
    ),
    "ldam": (
        lambda **kw: LDAMLoss(COUNTS, max_m=0.4, s=20.0, **kw),
        lambda z, y: np_ldam(z, y, COUNTS, max_m=0.4, s=20.0),
    ),
    "focal": (
        lambda **kw: FocalLoss(COUNTS, gamma=2.0, **kw),
        lambda z, y: np_focal(z, y, 2.0),
    ),
    "logit_adjusted": (
        lambda **kw: LogitAdjustedLoss(COUNTS, tau=1.5, **kw),
        lambda z, y: np_logit_adjusted(z, y, COUNTS, 1.5),
    ),
    "balanced_softmax": (
        lambda **kw: BalancedSoftmaxLoss(COUNTS, **kw),
        lambda z, y: np_balanced_softmax(z, y, COUNTS),
    ),
}

ALL_LOSS_CLASSES = [
    CrossEntropyLoss,
    LDAMLoss,
    FocalLoss,
    LogitAdjustedLoss,
    BalancedSoftmaxLoss,
]


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    z = rng.normal(scale=3.0, size=(N_SAMPLES, N_CLASSES))
    y = rng.integers(0, N_CLASSES, size=N_SAMPLES)
    y[:N_CLASSES] = np.arange(N_CLASSES)  # every class present
    return z, y


def to_torch(z, y):
    return torch.tensor(z, dtype=torch.float32), torch.tensor(y, dtype=torch.long)


@pytest.mark.parametrize("use_sample_weight", [False, True], ids=["no_sw", "sw"])
@pytest.mark.parametrize("use_class_weight", [False, True], ids=["no_cw", "cw"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("name", list(LOSS_CASES))
def test_matches_numpy_reference(batch, name, reduction, use_class_weight, use_sample_weight):
    z, y = batch
    rng = np.random.default_rng(1)
    class_weight = rng.uniform(0.2, 3.0, N_CLASSES) if use_class_weight else None
    sample_weight = rng.uniform(0.0, 2.0, N_SAMPLES) if use_sample_weight else None
    make, reference = LOSS_CASES[name]

    loss_fn = make(weight=class_weight, reduction=reduction)
    zt, yt = to_torch(z, y)
    sw = None if sample_weight is None else torch.tensor(sample_weight)
    got = loss_fn(zt, yt, sample_weight=sw)

    # Reference uses the float32-rounded logits so only the loss math differs.
    z32 = zt.double().numpy()
    expected = np_reduce(reference(z32, y), y, reduction, class_weight, sample_weight)
    assert got.dtype == torch.float32
    assert got.shape == np.shape(expected)
    np.testing.assert_allclose(got.detach().double().numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", ALL_LOSS_CLASSES)
def test_mean_equals_torch_weighted_cross_entropy_convention(cls, batch):
    """With a class weight, 'mean' divides by sum of w[y], like torch's CE."""
    z, y = batch
    zt, yt = to_torch(z, y)
    w = torch.linspace(0.5, 2.0, N_CLASSES)
    per_example = cls(COUNTS, reduction="none")(zt, yt)
    expected = (per_example * w[yt]).sum() / w[yt].sum()
    got = cls(COUNTS, weight=w, reduction="mean")(zt, yt)
    torch.testing.assert_close(got, expected)


def test_weighted_mean_of_ce_equals_torch_functional(batch):
    z, y = batch
    zt, yt = to_torch(z, y)
    w = torch.linspace(0.5, 2.0, N_CLASSES)
    got = CrossEntropyLoss(COUNTS, weight=w)(zt, yt)
    torch.testing.assert_close(got, torch.nn.functional.cross_entropy(zt, yt, weight=w))


# --------------------------------------------------------------------------
# class_balanced_weights and ldam_margins
# --------------------------------------------------------------------------
@pytest.mark.parametrize("max_m", [0.0, 0.3, 0.5, 1.0])
def test_ldam_margins_proportional_to_inverse_fourth_root(max_m):
    margins = ldam_margins(COUNTS, max_m=max_m)
    assert margins.dtype == torch.float32
    assert margins.shape == (N_CLASSES,)
    np.testing.assert_allclose(margins.max().item(), max_m, rtol=1e-6)
    np.testing.assert_allclose(margins.numpy(), np_ldam_margins(COUNTS, max_m), rtol=1e-6)
    if max_m > 0:
        assert margins.argmax().item() == int(np.argmin(COUNTS))
        ratio = margins.double().numpy() * COUNTS**0.25
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-6)


@pytest.mark.parametrize("beta", [0.9, 0.99, 0.999, 0.9999])
def test_class_balanced_weights_match_formula(beta):
    w = class_balanced_weights(COUNTS, beta=beta)
    assert w.dtype == torch.float32
    np.testing.assert_allclose(w.sum().item(), N_CLASSES, rtol=1e-6)
    np.testing.assert_allclose(w.numpy(), np_class_balanced_weights(COUNTS, beta), rtol=1e-5)
    # Rarer classes get larger weights.
    assert np.all(np.diff(w.numpy()) > 0)


def test_class_balanced_weights_beta_zero_gives_ones():
    w = class_balanced_weights(COUNTS, beta=0.0)
    torch.testing.assert_close(w, torch.ones(N_CLASSES))


@pytest.mark.parametrize(
    "counts", [COUNTS, COUNTS.tolist(), torch.tensor(COUNTS), torch.tensor(COUNTS).float()]
)
def test_counts_accept_array_likes(counts):
    torch.testing.assert_close(class_balanced_weights(counts), class_balanced_weights(COUNTS))
    torch.testing.assert_close(ldam_margins(counts), ldam_margins(COUNTS))


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------
ALL_COUNT_CONSUMERS = [class_balanced_weights, ldam_margins, *ALL_LOSS_CLASSES]


@pytest.mark.parametrize("func", ALL_COUNT_CONSUMERS)
def test_zero_count_raises_naming_the_class(func):
    with pytest.raises(ValueError, match=r"class 2 has count 0.*label encoding"):
        func([10, 5, 0, 7])


@pytest.mark.parametrize("func", ALL_COUNT_CONSUMERS)
@pytest.mark.parametrize(
    "counts, match",
    [
        ([[10, 5], [3, 2]], "1-D"),
        (7, "1-D"),
        ([], "non-empty"),
        ([10, -3], "class 1 has count -3"),
        ([10, float("nan")], "class 1 has count nan"),
        ([float("inf"), 3], "class 0 has count inf"),
    ],
)
def test_invalid_counts_raise(func, counts, match):
    with pytest.raises(ValueError, match=match):
        func(counts)


@pytest.mark.parametrize("beta", [-0.1, 1.0, 1.5, float("nan")])
def test_invalid_beta_raises(beta):
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\)"):
        class_balanced_weights(COUNTS, beta=beta)


@pytest.mark.parametrize("max_m", [-0.1, float("nan"), float("inf")])
def test_invalid_max_m_raises(max_m):
    with pytest.raises(ValueError, match="max_m"):
        ldam_margins(COUNTS, max_m=max_m)
    with pytest.raises(ValueError, match="max_m"):
        LDAMLoss(COUNTS, max_m=max_m)


@pytest.mark.parametrize(
    "factory, match",
    [
        (lambda: LDAMLoss(COUNTS, s=0.0), "s must be"),
        (lambda: LDAMLoss(COUNTS, s=-30.0), "s must be"),
        (lambda: FocalLoss(COUNTS, gamma=-0.5), "gamma must be"),
        (lambda: LogitAdjustedLoss(COUNTS, tau=-1.0), "tau must be"),
        (lambda: CrossEntropyLoss(COUNTS, weight=[1.0, 2.0]), r"weight must have shape \(5,\)"),
        (lambda: CrossEntropyLoss(COUNTS, weight=[1, 1, 1, 1, -1]), "finite and >= 0"),
        (lambda: CrossEntropyLoss(COUNTS, weight=[1, 1, np.nan, 1, 1]), "finite and >= 0"),
    ],
)
def test_invalid_hyperparameters_raise(factory, match):
    with pytest.raises(ValueError, match=match):
        factory()


@pytest.mark.parametrize("cls", ALL_LOSS_CLASSES)
@pytest.mark.parametrize("reduction", ["avg", "Mean", None, "elementwise_mean"])
def test_invalid_reduction_raises_listing_choices(cls, reduction):
    with pytest.raises(ValueError, match="'mean', 'sum', 'none'"):
        cls(COUNTS, reduction=reduction)


@pytest.mark.parametrize("cls", ALL_LOSS_CLASSES)
def test_forward_shape_validation(cls):
    loss_fn = cls(COUNTS)
    with pytest.raises(ValueError, match=r"shape \(n_samples, 5\)"):
        loss_fn(torch.zeros(4, N_CLASSES - 1), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="target must have shape"):
        loss_fn(torch.zeros(4, N_CLASSES), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="integer class indices"):
        loss_fn(torch.zeros(4, N_CLASSES), torch.zeros(4))
    with pytest.raises(ValueError, match="sample_weight must have shape"):
        loss_fn(
            torch.zeros(4, N_CLASSES),
            torch.zeros(4, dtype=torch.long),
            sample_weight=torch.ones(3),
        )


@pytest.mark.parametrize("cls", ALL_LOSS_CLASSES)
def test_int32_targets_match_int64(cls, batch):
    z, y = batch
    zt, yt = to_torch(z, y)
    loss_fn = cls(COUNTS)
    torch.testing.assert_close(loss_fn(zt, yt.int()), loss_fn(zt, yt))


# --------------------------------------------------------------------------
# Special cases and identities
# --------------------------------------------------------------------------
def test_focal_gamma_zero_equals_cross_entropy(batch):
    zt, yt = to_torch(*batch)
    w = torch.linspace(0.5, 2.0, N_CLASSES)
    torch.testing.assert_close(
        FocalLoss(COUNTS, gamma=0.0, weight=w, reduction="none")(zt, yt),
        CrossEntropyLoss(COUNTS, weight=w, reduction="none")(zt, yt),
    )


def test_focal_down_weights_easy_examples():
    logits = torch.tensor([[4.0, 0.0], [0.0, 4.0]])
    target = torch.tensor([0, 0])
    focal = FocalLoss([10, 10], gamma=2.0, reduction="none")(logits, target)
    ce = CrossEntropyLoss([10, 10], reduction="none")(logits, target)
    assert focal[0] < 1e-3 * ce[0]  # easy example almost ignored
    assert focal[1] > 0.9 * ce[1]  # hard example keeps most of its loss


@pytest.mark.parametrize("gamma", [0.0, 0.5, 1.0, 2.0, 5.0])
@pytest.mark.parametrize("scale", [1.0, 1e2, 1e4])
def test_focal_finite_for_extreme_logits(gamma, scale):
    # Rows cover: confident and right, confident and wrong, ties, mixed.
    base = torch.tensor([[1.0, -1.0, 0.0], [-1.0, 1.0, 0.0], [0.0, 0.0, 0.0], [1.0, 1.0, -1.0]])
    logits = (base * scale).repeat(3, 1).requires_grad_(True)
    target = torch.tensor([0, 0, 1, 2] * 3)
    per_example = FocalLoss([5, 5, 5], gamma=gamma, reduction="none")(logits, target)
    assert torch.isfinite(per_example).all()
    assert (per_example >= 0).all()
    per_example.mean().backward()
    assert torch.isfinite(logits.grad).all()
    # Confident-and-wrong rows must still push the true logit up.
    assert (logits.grad[1::4, 0] < 0).all()


def test_focal_matches_reference_at_extreme_confidence():
    # p_t close to 1, and p_t so small that softmax(z).log() would give -inf.
    logits = torch.tensor(
        [[12.0, 0.0, 0.0], [20.0, 0.0, 0.0], [-40.0, 0.0, 0.0], [-800.0, 0.0, 0.0]],
        dtype=torch.float64,
    )
    target = torch.zeros(4, dtype=torch.long)
    got = FocalLoss([3, 3, 3], gamma=0.5, reduction="none").double()(logits, target)
    expected = np_focal(logits.numpy(), target.numpy(), 0.5)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)


def test_logit_adjusted_tau_zero_equals_cross_entropy(batch):
    zt, yt = to_torch(*batch)
    torch.testing.assert_close(
        LogitAdjustedLoss(COUNTS, tau=0.0, reduction="none")(zt, yt),
        CrossEntropyLoss(COUNTS, reduction="none")(zt, yt),
    )


def test_logit_adjusted_tau_changes_loss(batch):
    zt, yt = to_torch(*batch)
    a = LogitAdjustedLoss(COUNTS, tau=1.0)(zt, yt)
    b = LogitAdjustedLoss(COUNTS, tau=2.0)(zt, yt)
    assert not torch.isclose(a, b)


def test_balanced_softmax_equals_logit_adjusted_tau_one(batch):
    zt, yt = to_torch(*batch)
    bs = BalancedSoftmaxLoss(COUNTS, reduction="none")
    assert isinstance(bs, LogitAdjustedLoss)
    assert bs.tau == 1.0
    torch.testing.assert_close(
        bs(zt, yt), LogitAdjustedLoss(COUNTS, tau=1.0, reduction="none")(zt, yt)
    )


def test_posthoc_adjustment(batch):
    z, _ = batch
    zt = torch.tensor(z, dtype=torch.float32)
    la = LogitAdjustedLoss(COUNTS, tau=0.7)
    prior = COUNTS / COUNTS.sum()
    np.testing.assert_allclose(
        la.adjust_logits_posthoc(zt).double().numpy(),
        zt.double().numpy() - 0.7 * np.log(prior),
        rtol=1e-6,
        atol=1e-6,
    )
    # Equal raw scores are resolved in favour of the rarest class.
    flat = la.adjust_logits_posthoc(torch.zeros(1, N_CLASSES))
    assert flat.argmax().item() == int(np.argmin(COUNTS))


def test_ldam_margin_only_on_true_class():
    loss_fn = LDAMLoss([100, 10, 1], max_m=0.5, s=1.0, reduction="none")
    logits = torch.zeros(3, 3, requires_grad=True)
    target = torch.tensor([0, 1, 2])
    out = loss_fn(logits, target)
    # The true logit is lowered, so the loss exceeds log(3) by class margin.
    assert (out > np.log(3)).all()
    assert out[2] > out[1] > out[0]
    # Input is not modified in place.
    assert torch.count_nonzero(logits) == 0


def test_ldam_max_m_zero_equals_scaled_cross_entropy(batch):
    zt, yt = to_torch(*batch)
    torch.testing.assert_close(
        LDAMLoss(COUNTS, max_m=0.0, s=7.0, reduction="none")(zt, yt),
        CrossEntropyLoss(COUNTS, reduction="none")(7.0 * zt, yt),
    )


def test_gradients_flow_to_logits(batch):
    zt, yt = to_torch(*batch)
    for cls in ALL_LOSS_CLASSES:
        logits = zt.clone().requires_grad_(True)
        cls(COUNTS)(logits, yt).backward()
        assert torch.isfinite(logits.grad).all()
        assert logits.grad.abs().sum() > 0


# --------------------------------------------------------------------------
# Buffers: in-place re-weighting and device/dtype moves
# --------------------------------------------------------------------------
@pytest.mark.parametrize("cls", ALL_LOSS_CLASSES)
def test_weight_buffer_defaults_to_ones(cls):
    loss_fn = cls(COUNTS)
    assert "weight" in dict(loss_fn.named_buffers())
    assert "weight" in loss_fn.state_dict()
    torch.testing.assert_close(loss_fn.weight, torch.ones(N_CLASSES))


@pytest.mark.parametrize("cls", ALL_LOSS_CLASSES)
def test_in_place_weight_update_changes_loss(cls, batch):
    z, y = batch
    zt, yt = to_torch(z, y)
    loss_fn = cls(COUNTS)
    buffer_before = loss_fn.weight
    before = loss_fn(zt, yt)

    new_w = class_balanced_weights(COUNTS, beta=0.999)
    loss_fn.weight.copy_(new_w)
    after = loss_fn(zt, yt)

    assert loss_fn.weight is buffer_before
    assert not torch.isclose(before, after)
    expected = (loss_fn.__class__(COUNTS, weight=new_w))(zt, yt)
    torch.testing.assert_close(after, expected)


@pytest.mark.parametrize("cls", ALL_LOSS_CLASSES)
@pytest.mark.parametrize("use_sample_weight", [False, True], ids=["no_sw", "sw"])
def test_batch_with_zero_total_weight_adds_nothing(cls, use_sample_weight, batch):
    # Only classes 0 and 1 in the batch, both with class weight 0: the mean
    # must be 0 with a zero gradient, not 0/0 = NaN, with or without
    # sample weights (the two take different code paths).
    z, y = batch
    zt, yt = to_torch(z, y % 2)
    zt.requires_grad_(True)
    kwargs = {"sample_weight": torch.ones(len(yt))} if use_sample_weight else {}
    loss_fn = cls(COUNTS)
    assert loss_fn(zt, yt, **kwargs).item() > 0
    # Written in place after a first use, as the DRW switch writes weights.
    loss_fn.weight.copy_(torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0]))
    loss = loss_fn(zt, yt, **kwargs)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.equal(zt.grad, torch.zeros_like(zt))
    # And a replaced buffer is noticed too.
    loss_fn.weight = torch.ones(N_CLASSES)
    assert loss_fn(zt.detach(), yt, **kwargs).item() > 0
    loss_fn.weight = torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0])
    assert loss_fn(zt.detach(), yt, **kwargs).item() == 0.0


def test_weight_is_copied_from_caller():
    user_w = torch.ones(N_CLASSES)
    loss_fn = CrossEntropyLoss(COUNTS, weight=user_w)
    loss_fn.weight.copy_(torch.full((N_CLASSES,), 3.0))
    torch.testing.assert_close(user_w, torch.ones(N_CLASSES))


@pytest.mark.parametrize(
    "cls, derived",
    [
        (CrossEntropyLoss, []),
        (LDAMLoss, ["margins"]),
        (FocalLoss, []),
        (LogitAdjustedLoss, ["log_prior"]),
        (BalancedSoftmaxLoss, ["log_prior"]),
    ],
)
def test_to_moves_buffers(cls, derived, batch):
    z, y = batch
    loss_fn = cls(COUNTS).to(torch.float64)
    names = dict(loss_fn.named_buffers())
    assert set(names) == {"weight", "class_counts", *derived}
    assert all(b.dtype == torch.float64 for b in names.values())

    zt = torch.tensor(z, dtype=torch.float64)
    out = loss_fn(zt, torch.tensor(y))
    assert out.dtype == torch.float64
    reference = {
        CrossEntropyLoss: LOSS_CASES["ce"][1],
        LDAMLoss: lambda z, y: np_ldam(z, y, COUNTS),
        FocalLoss: lambda z, y: np_focal(z, y, 1.0),
        LogitAdjustedLoss: lambda z, y: np_logit_adjusted(z, y, COUNTS, 1.0),
        BalancedSoftmaxLoss: LOSS_CASES["balanced_softmax"][1],
    }[cls]
    # Buffers were float32 before the cast, hence rtol 1e-6 rather than 1e-12.
    np.testing.assert_allclose(out.item(), reference(z, y).mean(), rtol=1e-6)

    moved = cls(COUNTS).to("meta")
    assert all(b.device.type == "meta" for b in moved.buffers())


@pytest.mark.parametrize("cls", ALL_LOSS_CLASSES)
def test_runs_on_any_device(cls, batch):
    # The "meta" device has no storage: a hard-coded CUDA type or a CPU
    # tensor made inside forward would fail here, as it would on a GPU.
    zt, yt = to_torch(*batch)
    loss_fn = cls(COUNTS, weight=torch.linspace(0.5, 2.0, N_CLASSES)).to("meta")
    out = loss_fn(zt.to("meta"), yt.to("meta"), sample_weight=torch.ones(len(yt), device="meta"))
    assert out.device.type == "meta"
    assert out.shape == ()


@pytest.mark.parametrize(
    "loss_fn, expected",
    [
        (CrossEntropyLoss([3, 1]), "CrossEntropyLoss(n_classes=2, reduction='mean')"),
        (LDAMLoss([3, 1], s=10), "LDAMLoss(n_classes=2, max_m=0.5, s=10.0, reduction='mean')"),
        (FocalLoss([3, 1], gamma=2), "FocalLoss(n_classes=2, gamma=2.0, reduction='mean')"),
        (
            BalancedSoftmaxLoss([3, 1], reduction="sum"),
            "BalancedSoftmaxLoss(n_classes=2, tau=1.0, reduction='sum')",
        ),
    ],
)
def test_repr_shows_hyperparameters(loss_fn, expected):
    assert repr(loss_fn) == expected
