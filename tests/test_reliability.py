"""Reliability (issue 7): bad input, numerical trouble, interruption, resumption, seeds.

Cases that ``test_base.py``, ``test_ldam_drw.py``, ``test_l2rw.py`` and
``test_losses.py`` already cover for one estimator are repeated here only for
the other one. ``docs/guarantees.md`` lists the errors tested here.
"""

import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.datasets import make_classification
from skorch.callbacks import Callback, Checkpoint, LoadInitState

from ldam_sklearn import L2RWClassifier, LDAMDRWClassifier
from ldam_sklearn.losses import LDAMLoss

ESTIMATORS = [LDAMDRWClassifier, L2RWClassifier]
FAST = {"max_epochs": 3, "random_state": 0, "module__hidden_layer_sizes": (8,)}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny networks: one intra-op thread is much faster on a shared machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_data(n_samples=120, n_features=5, random_state=0):
    X, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=3,
        n_redundant=0,
        n_classes=3,
        weights=[0.7, 0.2, 0.1],
        random_state=random_state,
    )
    return X, y


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.fixture(scope="module", params=ESTIMATORS, ids=lambda e: e.__name__)
def fitted(request, data):
    X, y = data
    return request.param(**FAST).fit(X, y)


def _cosine(Estimator):
    return {"loss": "ldam"} if Estimator is LDAMDRWClassifier else {"base_loss": "ldam"}


def _one_run(Estimator):
    # These tests count the epochs and batches of one training run, or expect
    # the paper's plain SGD to diverge: LDAMDRWClassifier's default recipe
    # fits a hold-out first and clips the gradients.
    return {"recipe": "paper"} if Estimator is LDAMDRWClassifier else {}


def _linear(Estimator):
    return {"loss": "ce"} if Estimator is LDAMDRWClassifier else {"base_loss": "ce"}


def _assert_probabilities(clf, X):
    proba = clf.predict_proba(X)
    assert proba.shape == (X.shape[0], len(clf.classes_))
    assert np.isfinite(proba).all()
    assert (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-10)
    assert set(clf.predict(X)) <= set(clf.classes_)
    return proba


# -- 1. bad input ---------------------------------------------------------------

# test_base.py checks these for LDAMDRWClassifier; L2RW's fit takes another
# route (meta set, its own fit signature), so check them there too.
BAD_X_COVERED = [
    pytest.param(lambda X: np.where(X > 1, np.nan, X), "Input X contains NaN", id="nan"),
    pytest.param(lambda X: np.where(X > 1, np.inf, X), "Input X contains infinity", id="inf"),
    pytest.param(lambda X: X[:0], r"Found array with 0 sample\(s\)", id="empty"),
    pytest.param(lambda X: X[:, 0], "Expected 2D array, got 1D array", id="1-D"),
    pytest.param(
        lambda X: np.full(X.shape, "a", dtype=object),
        "could not convert string to float",
        id="object-strings",
    ),
]
# Not covered anywhere else: checked for both estimators.
BAD_X_NEW = [
    pytest.param(lambda X: np.where(X > 1, -np.inf, X), "Input X contains infinity", id="-inf"),
    pytest.param(
        lambda X: X * 1e300,
        r"infinity or a value too large for dtype\('float32'\)",
        id="beyond-float32",
        marks=pytest.mark.filterwarnings("ignore::RuntimeWarning"),
    ),
    pytest.param(lambda X: X[:, :, None], "Found array with dim 3", id="3-D"),
    pytest.param(lambda X: X + 1j, "Complex data not supported", id="complex"),
    pytest.param(
        lambda X: sp.csr_matrix(np.where(X > 1, np.nan, 0.0)),
        "Input X contains NaN",
        id="sparse-nan",
    ),
    pytest.param(
        lambda X: np.c_[X.astype(object), np.full(len(X), "x", dtype=object)],
        "could not convert string to float: 'x'",
        id="object-mixed",
    ),
]


@pytest.mark.parametrize("make_X, message", BAD_X_COVERED)
def test_l2rw_fit_rejects_bad_X(data, make_X, message):
    X, y = data
    X_bad = make_X(X)
    with pytest.raises(ValueError, match=message):
        L2RWClassifier(**FAST).fit(X_bad, y[: X_bad.shape[0]])


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize("make_X, message", BAD_X_NEW)
def test_fit_rejects_bad_X(data, Estimator, make_X, message):
    X, y = data
    with pytest.raises(ValueError, match=message):
        Estimator(**FAST).fit(make_X(X), y)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_X_y_length_mismatch(data, Estimator):
    X, y = data
    with pytest.raises(ValueError, match=r"inconsistent numbers of samples: \[120, 119\]"):
        Estimator(**FAST).fit(X, y[:-1])


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_object_array_of_numbers_is_accepted(data, Estimator):
    X, y = data
    as_float = Estimator(**FAST).fit(X, y).predict_proba(X)
    as_object = Estimator(**FAST).fit(X.astype(object), y).predict_proba(X.astype(object))
    np.testing.assert_array_equal(as_object, as_float)


@pytest.mark.parametrize(
    "make_X, message",
    [
        pytest.param(lambda X: np.where(X > 1, np.inf, X), "contains infinity", id="inf"),
        pytest.param(lambda X: np.where(X > 1, -np.inf, X), "contains infinity", id="-inf"),
        pytest.param(lambda X: np.where(X > 1, np.nan, X), "Input X contains NaN", id="nan"),
        pytest.param(
            lambda X: X * 1e300,
            r"too large for dtype\('float32'\)",
            id="beyond-float32",
            marks=pytest.mark.filterwarnings("ignore::RuntimeWarning"),
        ),
        pytest.param(lambda X: X[0], "Expected 2D array, got 1D array", id="1-D"),
        pytest.param(lambda X: X[:0], r"Found array with 0 sample\(s\)", id="empty"),
        pytest.param(
            lambda X: X[:, :4], "X has 4 features, but .* is expecting 5 features", id="n-features"
        ),
        pytest.param(
            lambda X: sp.csr_matrix(X[:, :4]),
            "X has 4 features, but .* is expecting 5 features",
            id="sparse-n-features",
        ),
        pytest.param(
            lambda X: np.full(X.shape, "a", dtype=object),
            "could not convert string to float",
            id="object-strings",
        ),
    ],
)
def test_predict_rejects_bad_X(data, fitted, make_X, message):
    X, _ = data
    for method in (fitted.predict, fitted.predict_proba):
        with pytest.raises(ValueError, match=message):
            method(make_X(X))


@pytest.mark.parametrize(
    "make_y, message",
    [
        pytest.param(lambda y: np.zeros_like(y), "only one class is present", id="one-class"),
        pytest.param(
            lambda y: np.linspace(0, 1, len(y)), "Unknown label type: continuous", id="continuous"
        ),
        pytest.param(
            lambda y: np.eye(3, dtype=int)[y], "Multilabel and multioutput", id="multilabel"
        ),
        pytest.param(lambda y: np.c_[y, y], "Multilabel and multioutput", id="multioutput"),
        pytest.param(lambda y: np.where(y == 2, np.nan, y), "Input y contains NaN", id="nan"),
        pytest.param(
            lambda y: np.array([1, "a", 2.5] * 40, dtype=object),
            "Unknown label type: unknown",
            id="mixed-object",
        ),
        pytest.param(lambda y: None, "requires y to be passed", id="none"),
    ],
)
def test_l2rw_fit_rejects_bad_y(data, make_y, message):
    X, y = data
    with pytest.raises(ValueError, match=message):
        L2RWClassifier(**FAST).fit(X, make_y(y))


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_one_class_left_after_zero_sample_weights(data, Estimator):
    X, y = data
    with pytest.raises(ValueError, match="counting only samples with a positive sample_weight"):
        Estimator(**FAST).fit(X, y, sample_weight=(y == 0).astype(float))


@pytest.mark.parametrize("Estimator", ESTIMATORS)
@pytest.mark.parametrize(
    "weights, message",
    [
        (lambda n: -np.ones(n), "Negative values in data passed to `sample_weight`"),
        (lambda n: np.full(n, np.nan), "Input sample_weight contains NaN"),
    ],
)
def test_bad_sample_weight(data, Estimator, weights, message):
    X, y = data
    with pytest.raises(ValueError, match=message):
        Estimator(**FAST).fit(X, y, sample_weight=weights(len(y)))


def test_meta_mask_accepts_list_and_series(data):
    X, y = data
    mask = np.zeros(len(y), dtype=bool)
    for label in range(3):
        mask[np.flatnonzero(y == label)[:2]] = True
    expected = L2RWClassifier(**FAST).fit(X, y, meta_mask=mask)
    for given in (mask.tolist(), pd.Series(mask)):
        clf = L2RWClassifier(**FAST).fit(X, y, meta_mask=given)
        np.testing.assert_array_equal(clf.meta_indices_, np.flatnonzero(mask))
        np.testing.assert_array_equal(clf.predict_proba(X), expected.predict_proba(X))


def test_meta_mask_is_checked_by_partial_fit_too(data):
    X, y = data
    with pytest.raises(ValueError, match=r"meta_mask covers no row of classes \[1, 2\]"):
        L2RWClassifier(**FAST).partial_fit(X, y, meta_mask=y == 0)
    with pytest.raises(ValueError, match="meta_mask has 119 entries but X has 120 rows"):
        L2RWClassifier(**FAST).partial_fit(X, y, meta_mask=np.ones(119, dtype=bool))


@pytest.mark.parametrize("make_mask", [lambda m: np.c_[m, m], lambda m: True])
def test_meta_mask_of_wrong_shape_names_meta_mask(data, make_mask):
    X, y = data
    with pytest.raises(ValueError, match="meta_mask"):
        L2RWClassifier(**FAST).fit(X, y, meta_mask=make_mask(y == 0))


def test_class_too_small_for_meta_size_warns_what_was_done():
    X = np.random.RandomState(0).randn(40, 3)
    y = np.array([0] * 30 + [1] * 7 + [2] * 3)
    with pytest.warns(UserWarning, match=r"\[1, 2\]"):
        clf = L2RWClassifier(meta_size=8, **FAST).fit(X, y)
    assert np.bincount(y[clf.meta_indices_]).tolist() == [7, 1, 1]


def test_l2rw_class_missing_from_partial_fit_data(data):
    X, y = data
    keep = y < 2
    with pytest.raises(ValueError, match=r"classes \[2\] have no training samples"):
        L2RWClassifier(base_loss="ldam", **FAST).partial_fit(X[keep], y[keep], classes=[0, 1, 2])


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_user_given_loss_with_a_zero_class_count(data, Estimator):
    X, y = data
    clf = Estimator(criterion=LDAMLoss, criterion__class_counts=[80, 20, 0], **FAST)
    with pytest.raises(ValueError, match="class 2 has count 0"):
        clf.fit(X, y)


@pytest.mark.parametrize(
    "params, message",
    [
        (
            {"weighting": "soft"},
            r"weighting='soft' is not valid; choose one of \['exact', 'sign'\]",
        ),
        ({"device": "tpu"}, r"device='tpu' is not valid; choose one of \('auto', 'cpu'"),
        ({"lr_schedule": "cosine"}, "lr_schedule='cosine' is not valid; use 'warmup_step'"),
        ({"meta_size": True}, "meta_size must be an integer >= 1, got True"),
        ({"meta_size": 2.5}, "meta_size must be an integer >= 1, got 2.5"),
        ({"s": -1.0}, "s must be a real number > 0, got -1.0"),
        ({"s": 0.0}, "s must be a real number > 0"),
        ({"base_loss": "ldam", "s": float("inf")}, "s must be a finite number > 0"),
        ({"max_m": float("nan")}, "max_m must be a real number >= 0, got nan"),
        ({"max_epochs": 2.0}, "max_epochs must be an integer >= 0"),
    ],
)
def test_l2rw_bad_parameters_rejected_at_fit(data, params, message):
    X, y = data
    clf = L2RWClassifier(**params)  # stores only
    with pytest.raises(ValueError, match=message):
        clf.fit(X, y)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"beta": -0.1}, r"beta must be a real number in \[0, 1\), got -0.1"),
        ({"beta": float("nan")}, r"beta must be a real number in \[0, 1\)"),
        ({"s": -30.0}, "s must be a real number > 0"),
        ({"s": float("inf")}, "s must be a finite number > 0"),
        ({"max_m": float("nan")}, "max_m must be a real number >= 0"),
        ({"loss": None}, r"loss=None is not valid; choose one of \['balanced_softmax', 'ce'"),
        ({"schedule": "DRW"}, r"schedule='DRW' is not valid; choose one of \['drs', 'drw'"),
    ],
)
def test_ldam_drw_bad_parameters_rejected_at_fit(data, params, message):
    X, y = data
    with pytest.raises(ValueError, match=message):
        LDAMDRWClassifier(**params).fit(X, y)


@pytest.mark.parametrize("device", ["cpu:x", "cuda:abc"])
def test_malformed_device_string_is_a_value_error(data, device):
    X, y = data
    with pytest.raises(ValueError, match="device="):
        LDAMDRWClassifier(device=device, **FAST).fit(X, y)


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="MPS is available here")
def test_unavailable_mps_is_rejected_like_cuda(data):
    X, y = data
    with pytest.raises(ValueError, match="not available"):
        LDAMDRWClassifier(device="mps", **FAST).fit(X, y)


@pytest.mark.parametrize("name", ["max_m", "s", "beta"])
def test_non_numeric_hyperparameter_is_a_value_error(data, name):
    X, y = data
    with pytest.raises(ValueError, match=name):
        LDAMDRWClassifier(**{name: "0.5"}, **FAST).fit(X, y)


# -- 2. numerical trouble ---------------------------------------------------------


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_diverging_lr_with_linear_head_stops_naming_epoch_and_batch(data, Estimator):
    X, y = data
    # Enough epochs for the loss to overflow float32 (it grows ~1e18x an
    # epoch): six (LDAM-DRW's packed members train 40 % of max_epochs).
    epochs = 15 if Estimator is LDAMDRWClassifier else 6
    params = {**FAST, "max_epochs": epochs, "lr": 1e10, "lr_schedule": None}
    clf = Estimator(**params, **_linear(Estimator))
    with pytest.raises(
        FloatingPointError,
        match=r"training loss became (nan|inf) at batch \d+ in epoch \d+\. "
        r"Lower the learning rate \(lr=1e\+10 now\)",
    ):
        clf.fit(X, y)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_diverging_lr_with_cosine_head_stops(data, Estimator):
    # Which check fires first (a NaN loss or non-finite weights) depends on
    # rounding; either way fit must stop with the guard's error.
    X, y = data
    clf = Estimator(
        **{**FAST, "max_epochs": 6, "lr": 1e8, "lr_schedule": None, "batch_size": 32},
        **_cosine(Estimator),
    )
    with pytest.raises(
        FloatingPointError,
        match=r"Training diverged: .* in epoch \d+\. Lower the learning rate \(lr=1e\+08 now\)",
    ):
        clf.fit(X, y)


class BlowUpAfterStep(Callback):
    """Make ``head.weight`` infinite right after optimizer step number ``step``.

    The cosine head normalises its weights, so the loss of the steps before
    stays finite: only the parameter check can notice.
    """

    def __init__(self, step):
        self.step = step

    def on_train_begin(self, net, **kwargs):
        self.steps_, self.losses_ = 0, []

        def hook(optimizer, args, kwargs):
            self.steps_ += 1
            if self.steps_ == self.step:
                with torch.no_grad():
                    net.module_.head.weight.fill_(float("inf"))

        self.handle_ = net.optimizer_.register_step_post_hook(hook)

    def on_batch_end(self, net, training=False, **kwargs):
        self.losses_.append(net.history[-1, "batches", -1, "train_loss"])

    def on_train_end(self, net, **kwargs):
        self.handle_.remove()


def _blow_up_in_last_batch_of_epoch_2(Estimator):
    # 120 rows in batches of 28: 4 batches (the last 8 rows join the fourth);
    # the meta-set estimators hold out 10 + 6 + 3 rows (at most a quarter of
    # each class), and L2RW trains on the other 101: also 4 (the last of 17).
    batches = 4
    blow_up = BlowUpAfterStep(step=2 * batches)
    clf = Estimator(
        **{**FAST, "max_epochs": 5, "batch_size": 28},
        callbacks=[("blow_up", blow_up)],
        **_cosine(Estimator),
        **_one_run(Estimator),
    )
    return clf, blow_up


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_non_finite_weights_with_bounded_loss_are_caught(data, Estimator):
    X, y = data
    clf, blow_up = _blow_up_in_last_batch_of_epoch_2(Estimator)
    with pytest.raises(
        FloatingPointError,
        match=r"parameters \['head.weight'\] were non-finite after batch \d+ in epoch 2\. "
        r"Lower the learning rate \(lr=[\d.e+-]+ now\) or standardise the features",
    ):
        clf.fit(X, y)
    assert np.isfinite(blow_up.losses_).all(), "the loss stayed finite throughout"


def test_non_finite_weights_error_names_the_batch(data):
    X, y = data
    clf, _ = _blow_up_in_last_batch_of_epoch_2(LDAMDRWClassifier)
    with pytest.raises(FloatingPointError, match=r"batch 4 in epoch 2"):
        clf.fit(X, y)


@pytest.fixture(
    scope="module",
    params=[(E, h) for E in ESTIMATORS for h in (_linear, _cosine)],
    ids=lambda p: f"{p[0].__name__}-{p[1].__name__[1:]}",
)
def fitted_head(request, data):
    Estimator, head = request.param
    X, y = data
    return Estimator(**FAST, **head(Estimator)).fit(X, y)


@pytest.mark.parametrize("value", [1e30, -1e30, 3e38, 1e-30, 0.0, 1e-45])
def test_predict_proba_finite_for_extreme_input(data, fitted_head, value):
    X, _ = data
    Z = np.sign(X[:20]) * value
    Z[:5] = value
    Z[5:10, :2] = 0.0
    _assert_probabilities(fitted_head, Z)
    _assert_probabilities(fitted_head, sp.csr_matrix(Z))


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_cosine_head_with_tiny_or_zero_norms(data, Estimator):
    X, y = data
    # Without a post-hoc adjustment, all-zero features give uniform probabilities.
    clf = Estimator(**FAST, **_cosine(Estimator), **_one_run(Estimator)).fit(X, y)
    with torch.no_grad():
        clf.module_.head.weight.mul_(1e-30)
    _assert_probabilities(clf, X)
    with torch.no_grad():
        clf.module_.body[0].weight.zero_()
        clf.module_.body[0].bias.fill_(-1.0)  # ReLU gives all-zero features
    proba = _assert_probabilities(clf, X)
    np.testing.assert_allclose(proba, 1 / 3)


@pytest.mark.parametrize("scale", [1e30, 1e-30])
def test_cosine_head_is_scale_invariant_at_extremes(data, scale):
    X, y = data
    # Without input standardisation the head sees features proportional to X.
    clf = LDAMDRWClassifier(**FAST, module__standardize=False).fit(X, y)
    with torch.no_grad():
        clf.module_.body[0].bias.zero_()  # then the head sees features ∝ scale
    np.testing.assert_allclose(clf.predict_proba(X * scale), clf.predict_proba(X), atol=1e-5)


# -- 3. interruption and resumption ----------------------------------------------


class InterruptAt(Callback):
    """Raise KeyboardInterrupt once, after ``batch`` batches of epoch ``epoch`` (1-based)."""

    def __init__(self, epoch, batch=None):
        self.epoch = epoch
        self.batch = batch
        self.fired = False

    def on_batch_end(self, net, training=False, **kwargs):
        if self.batch is not None and self._due(net, len(net.history[-1, "batches"]) == self.batch):
            raise KeyboardInterrupt

    def on_epoch_end(self, net, **kwargs):
        if self.batch is None and self._due(net, True):
            raise KeyboardInterrupt

    def _due(self, net, at_batch):
        if not self.fired and len(net.history) == self.epoch and at_batch:
            self.fired = True
            return True
        return False


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_keyboard_interrupt_mid_epoch_leaves_usable_model(data, Estimator):
    X, y = data
    torch.manual_seed(7)
    expected_global = torch.rand(3)
    torch.manual_seed(7)
    clf = Estimator(
        **{**FAST, "max_epochs": 4, "batch_size": 32},
        callbacks=[("interrupt", InterruptAt(epoch=3, batch=2))],
        **_one_run(Estimator),
    ).fit(X, y)  # returns instead of raising (skorch's behaviour)
    np.testing.assert_array_equal(torch.rand(3), expected_global)
    # history: two complete epochs, the third cut after its second batch
    assert len(clf.history) == 3
    assert len(clf.history[-1, "batches"]) == 2
    assert "train_loss" not in clf.history[-1]
    assert len(clf.history[:, "train_loss"]) == 2
    assert np.isfinite(clf.history[:, "train_loss"]).all()
    _assert_probabilities(clf, X)
    # ...and it can train on from there
    clf.partial_fit(X, y)
    assert len(clf.history) == 3 + 4
    assert len(clf.history[:, "train_loss"]) == 6
    _assert_probabilities(clf, X)


N_EPOCHS, STOP_AT = 5, 3


def _resumable(Estimator, dirname, shuffle, extra, **callbacks):
    params = {**FAST, "max_epochs": N_EPOCHS, "batch_size": 32, **_one_run(Estimator), **extra}
    if not shuffle:
        params["iterator_train__shuffle"] = False
    checkpoint = Checkpoint(dirname=str(dirname), monitor=None)  # every epoch
    callbacks = [("checkpoint", checkpoint), *callbacks.items()]
    return Estimator(**params, callbacks=callbacks), checkpoint


def _check_resumed_equals_uninterrupted(Estimator, X, y, tmp_path, shuffle):
    extra = {"drw_start": 4} if Estimator is LDAMDRWClassifier else {"meta_size": 5}
    full, _ = _resumable(Estimator, tmp_path / "full", shuffle, extra)
    full.fit(X, y)

    # A run interrupted in epoch STOP_AT + 1, whose last checkpoint is of epoch STOP_AT.
    cut, checkpoint = _resumable(
        Estimator, tmp_path / "cut", shuffle, extra, interrupt=InterruptAt(STOP_AT + 1, batch=1)
    )
    cut.fit(X, y)
    assert len(cut.history) == STOP_AT + 1

    # (a) a fresh estimator, as in a new process: LoadInitState restores
    # parameters, optimizer, criterion and history at the start of fit.
    fresh, _ = _resumable(
        Estimator, tmp_path / "fresh", shuffle, extra, load=LoadInitState(checkpoint)
    )
    fresh.fit(X, y, epochs=N_EPOCHS - STOP_AT)

    # (b) the interrupted object itself: load the checkpoint, warm-start the rest.
    cut.load_params(checkpoint=checkpoint)
    assert len(cut.history) == STOP_AT
    cut.set_params(warm_start=True)
    cut.fit(X, y, epochs=N_EPOCHS - len(cut.history))

    expected = full.predict_proba(X)
    for resumed in (fresh, cut):
        assert len(resumed.history) == N_EPOCHS
        assert resumed.history[:, "lr"] == full.history[:, "lr"]
        if Estimator is LDAMDRWClassifier:
            # DRW switch state: phases per epoch and the live criterion weights
            assert resumed.history[:, "balancing"] == ["none"] * 4 + ["reweight"]
            torch.testing.assert_close(resumed.criterion_.weight, full.criterion_.weight)
        else:
            np.testing.assert_array_equal(resumed.meta_indices_, full.meta_indices_)
        assert resumed.history[:, "train_loss"] == full.history[:, "train_loss"]
        np.testing.assert_array_equal(resumed.predict_proba(X), expected)


@pytest.mark.slow
@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_checkpoint_resume_equals_uninterrupted_without_shuffling(data, Estimator, tmp_path):
    X, y = data
    _check_resumed_equals_uninterrupted(Estimator, X, y, tmp_path, shuffle=False)


@pytest.mark.slow
@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_checkpoint_resume_equals_uninterrupted_with_shuffling(data, Estimator, tmp_path):
    X, y = data
    _check_resumed_equals_uninterrupted(Estimator, X, y, tmp_path, shuffle=True)


# -- 4. reproducibility -----------------------------------------------------------


def _initial_state(Estimator, X, y, random_state):
    clf = Estimator(**{**FAST, "max_epochs": 0, "random_state": random_state}).fit(X, y)
    # Parameters only: the input statistics buffers come from the data.
    return {k: v.detach().clone() for k, v in clf.module_.named_parameters()}


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_seed_decides_the_initialisation(data, Estimator):
    X, y = data
    a = _initial_state(Estimator, X, y, 0)
    b = _initial_state(Estimator, X, y, 0)
    c = _initial_state(Estimator, X, y, 1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not any(torch.equal(a[k], c[k]) for k in a if a[k].numel() > 1)
    d = _initial_state(Estimator, X, y, None)
    e = _initial_state(Estimator, X, y, None)
    assert not torch.equal(d["body.0.weight"], e["body.0.weight"])


def test_l2rw_same_seed_same_result_across_runs_and_clone(data):
    X, y = data
    clf = L2RWClassifier(**FAST)
    a = clone(clf).fit(X, y)
    b = clone(clf).fit(X, y)
    c = clf.fit(X, y)
    for other in (b, c):
        np.testing.assert_array_equal(other.meta_indices_, a.meta_indices_)
        np.testing.assert_array_equal(other.predict_proba(X), a.predict_proba(X))
    d = L2RWClassifier(**{**FAST, "random_state": 1}).fit(X, y)
    assert not np.array_equal(d.meta_indices_, a.meta_indices_)
    assert not np.allclose(d.predict_proba(X), a.predict_proba(X))


@pytest.mark.parametrize(
    "Estimator, params, sparse",
    [
        # the random paths beyond initialisation: dropout, class-balanced
        # draws, sparse batches, the L2RW meta gradient
        (LDAMDRWClassifier, {"module__dropout": 0.3, "schedule": "resample"}, False),
        (LDAMDRWClassifier, {"schedule": "drs", "drw_start": 1}, True),
        (L2RWClassifier, {"module__dropout": 0.3}, True),
    ],
)
def test_random_paths_are_seeded(data, Estimator, params, sparse):
    X, y = data
    X = sp.csr_matrix(np.where(np.abs(X) > 0.5, X, 0)) if sparse else X
    a = Estimator(**FAST, **params).fit(X, y).predict_proba(X)
    b = Estimator(**FAST, **params).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_random_state_instance_is_cloned_with_its_state(data, Estimator):
    X, y = data
    params = {**FAST, "random_state": np.random.RandomState(3)}
    clf = Estimator(**params)
    a = clone(clf).fit(X, y).predict_proba(X)
    b = clone(clf).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    c = Estimator(**{**FAST, "random_state": np.random.RandomState(3)}).fit(X, y)
    np.testing.assert_array_equal(c.predict_proba(X), a)


_SUBPROCESS_FIT = """
import sys, numpy as np, torch
torch.set_num_threads(1)
from tests.test_reliability import ESTIMATORS, FAST, make_data
X, y = make_data()
np.save(sys.argv[1], np.stack([E(**FAST).fit(X, y).predict_proba(X) for E in ESTIMATORS]))
"""


@pytest.mark.slow
def test_same_seed_same_predictions_in_another_process(tmp_path):
    X, y = make_data()
    here = np.stack([E(**FAST).fit(X, y).predict_proba(X) for E in ESTIMATORS])
    out = tmp_path / "proba.npy"
    subprocess.run(
        [sys.executable, "-c", _SUBPROCESS_FIT, str(out)],
        check=True,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        env={**os.environ, "PYTHONHASHSEED": "123", "OMP_NUM_THREADS": "1"},
        timeout=300,
    )
    np.testing.assert_array_equal(np.load(out), here)


_SUBPROCESS_READ_ONLY = """
import warnings, numpy as np, pandas as pd
from ldam_sklearn import LDAMDRWClassifier
X = np.random.RandomState(0).randn(60, 3).astype(np.float32)
# Learnable and seeded: a net that predicts one class for every row is rightly
# warned about, and a warning here must mean read-only input caused it.
y = (X[:, 0] > 0).astype(int)
X.flags.writeable = False  # a joblib memmap, a pandas copy-on-write view
warnings.simplefilter("error")
for data in (X, pd.DataFrame(X.copy())):
    LDAMDRWClassifier(max_epochs=5, module__hidden_layer_sizes=(8,), random_state=0).fit(data, y)
"""


@pytest.mark.slow
def test_read_only_input_fits_without_warnings():
    # torch emits this warning once per process, so check in a fresh one.
    result = subprocess.run(
        [sys.executable, "-c", _SUBPROCESS_READ_ONLY],
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]


def test_warnings_do_not_leak_from_a_clean_fit(data):
    # A plain fit on clean data is silent: any warning would be noise users learn to ignore.
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for Estimator in ESTIMATORS:
            Estimator(**FAST).fit(X, y).predict_proba(X)
