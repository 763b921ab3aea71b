"""L2RWClassifier: the meta set, the learned weights and their history."""

import numpy as np
import pytest
import torch

from ldam_sklearn import L2RWClassifier
from ldam_sklearn.meta_reweighting import l2rw_example_weights
from ldam_sklearn.modules import CosineLinear

FAST = {"max_epochs": 5, "random_state": 0, "module__hidden_layer_sizes": (16,)}


def test_meta_set_is_held_out_stratified(imbalanced_data):
    X, y = imbalanced_data
    clf = L2RWClassifier(meta_size=4, **FAST).fit(X, y)
    assert np.bincount(y[clf.meta_indices_]).tolist() == [4, 4, 4]
    # meta rows are not trained on: the epoch sees every other row once
    assert sum(clf.history[-1, "batches", :, "train_batch_size"]) == len(X) - 12
    again = L2RWClassifier(meta_size=4, **FAST).fit(X, y)
    np.testing.assert_array_equal(again.meta_indices_, clf.meta_indices_)


def test_train_on_meta_uses_every_row(imbalanced_data):
    X, y = imbalanced_data
    clf = L2RWClassifier(meta_size=4, train_on_meta=True, **FAST).fit(X, y)
    assert sum(clf.history[-1, "batches", :, "train_batch_size"]) == len(X)


def test_hold_out_takes_at_most_a_quarter_of_a_class():
    rng = np.random.RandomState(0)
    X = rng.randn(80, 3)
    y = np.array([0] * 50 + [1] * 16 + [2] * 11 + [3] * 3)
    with pytest.warns(UserWarning, match=r"classes \[3\] have no more than meta_size=10"):
        clf = L2RWClassifier(**FAST).fit(X, y)
    # min(meta_size, count // 4), at least 1: a class of 16 keeps 12 rows for
    # training where the former rule (keep one) left it 6.
    assert np.bincount(y[clf.meta_indices_]).tolist() == [10, 4, 2, 1]
    assert sum(clf.history[-1, "batches", :, "train_batch_size"]) == 80 - 17


def test_single_sample_class_serves_both_with_warning():
    X = np.random.RandomState(0).randn(21, 3)
    y = np.array([0] * 20 + [1])
    with pytest.warns(UserWarning, match=r"classes \[1\] have a single sample"):
        clf = L2RWClassifier(meta_size=3, **FAST).fit(X, y)
    assert 20 in clf.meta_indices_
    assert sum(clf.history[-1, "batches", :, "train_batch_size"]) == 21 - 3


def test_meta_mask_selects_the_meta_rows(imbalanced_data):
    X, y = imbalanced_data
    mask = np.zeros(len(y), dtype=bool)
    for label in range(3):
        mask[np.flatnonzero(y == label)[:6]] = True
    clf = L2RWClassifier(**FAST).fit(X, y, meta_mask=mask)
    np.testing.assert_array_equal(clf.meta_indices_, np.flatnonzero(mask))


@pytest.mark.parametrize(
    "make_mask, message",
    [
        (lambda y: np.ones(len(y) - 1, dtype=bool), "meta_mask has 599 entries but X has 600"),
        (lambda y: (y == 0).astype(int), "meta_mask must be a boolean array"),
        (lambda y: np.zeros(len(y), dtype=bool), "meta_mask marks no rows"),
        (lambda y: y == 0, r"meta_mask covers no row of classes \['b', 'c'\]"),
    ],
)
def test_bad_meta_mask_gives_clear_error(imbalanced_data, make_mask, message):
    X, y = imbalanced_data
    labels = np.array(["a", "b", "c"])[y]
    with pytest.raises(ValueError, match=message):
        L2RWClassifier(**FAST).fit(X, labels, meta_mask=make_mask(y))


def test_nan_in_meta_rows_rejected(imbalanced_data):
    X, y = imbalanced_data
    X = X.copy()
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        L2RWClassifier(**FAST).fit(X, y, meta_mask=np.arange(len(y)) < 60)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"meta_size": 0}, "meta_size must be an integer >= 1"),
        ({"base_loss": "focal"}, r"base_loss='focal' is not valid; choose one of \['ce', 'ldam'\]"),
        ({"weight_method": "fast"}, "weight_method='fast' is not valid"),
        ({"base_loss": "ldam", "max_m": -1.0}, "max_m must be a real number >= 0"),
    ],
)
def test_bad_parameters_rejected_at_fit(imbalanced_data, params, message):
    X, y = imbalanced_data
    with pytest.raises(ValueError, match=message):
        L2RWClassifier(**params).fit(X, y)


def test_history_records_weights(imbalanced_data):
    X, y = imbalanced_data
    clf = L2RWClassifier(**FAST).fit(X, y)
    per_class = clf.history[-1, "meta_weight_per_class"]
    assert len(per_class) == 3 and all(w >= 0 for w in per_class)
    assert 0 <= clf.history[-1, "zero_weight_fraction"] < 1
    assert clf.history[-1, "zero_weight_steps"] >= 0
    # the rare class is up-weighted relative to the majority
    assert per_class[2] > per_class[0]


def test_training_step_uses_the_exact_weights(imbalanced_data):
    """The step's weights are those of the public function on the same batch."""
    X, y = imbalanced_data
    clf = L2RWClassifier(weighting="exact", **{**FAST, "max_epochs": 1}).fit(X, y)
    Xb = torch.as_tensor(X[:64], dtype=torch.float32)
    yb = torch.as_tensor(y[:64])
    X_meta, y_meta = clf._meta_batch
    expected = l2rw_example_weights(
        clf.module_, Xb, yb, X_meta, y_meta, clf.criterion_, method="lookahead"
    )
    step = clf.train_step_single((Xb, yb))
    np.testing.assert_allclose(step["weights"].numpy(), expected.numpy(), atol=1e-5)


def test_ldam_base_loss_combines_both_methods(imbalanced_data):
    X, y = imbalanced_data
    clf = L2RWClassifier(base_loss="ldam", max_m=0.3, **FAST).fit(X, y)
    assert isinstance(clf.module_.head, CosineLinear)
    assert float(clf.criterion_.margins.max()) == pytest.approx(0.3)
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0)


def test_sample_weight_zero_removes_examples_from_training(imbalanced_data):
    X, y = imbalanced_data
    weights = np.where(y == 2, 0.0, 1.0)
    clf = L2RWClassifier(**FAST).fit(X, y, sample_weight=weights)
    assert clf.history[-1, "meta_weight_per_class"][2] == 0.0


def test_label_noise_examples_get_less_weight():
    """Flipped labels disagree with the clean meta set, so they are down-weighted."""
    rng = np.random.RandomState(0)
    X = np.r_[rng.randn(300, 2) + 3, rng.randn(300, 2) - 3]
    y = np.r_[np.zeros(300, int), np.ones(300, int)]
    noisy = rng.rand(600) < 0.3
    y_noisy = np.where(noisy, 1 - y, y)
    clf = L2RWClassifier(
        weighting="exact", max_epochs=3, lr=0.01, lr_schedule=None, random_state=0
    ).fit(X, y_noisy, meta_mask=np.r_[np.arange(300) < 10, np.arange(300) < 10] & ~noisy)
    Xt = torch.as_tensor(X, dtype=torch.float32)
    yt = torch.as_tensor(y_noisy)
    X_meta, y_meta = clf._meta_batch
    w = l2rw_example_weights(clf.module_, Xt, yt, X_meta, y_meta, clf.criterion_).numpy()
    assert w[noisy].mean() < 0.1 * w[~noisy].mean()
    assert (clf.predict(X) == y).mean() > 0.95


def test_default_optimizer_keeps_its_weight_decay(imbalanced_data):
    # Unlike Meta-Weight-Net, L2RW scored lower on MNIST-1D with 5e-3.
    X, y = imbalanced_data
    clf = L2RWClassifier(max_epochs=1, random_state=0).fit(X, y)
    assert clf.optimizer_.param_groups[0]["weight_decay"] == 2e-4


def test_pickle_drops_cached_meta_batch(imbalanced_data):
    import pickle

    X, y = imbalanced_data
    clf = L2RWClassifier(**FAST).fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    assert "_meta_batch" not in restored.__dict__
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(restored.meta_indices_, clf.meta_indices_)


def test_sign_weighting_keeps_the_plain_training_share(imbalanced_data):
    X, y = imbalanced_data
    clf = L2RWClassifier(weighting="sign", **{**FAST, "max_epochs": 1}).fit(X, y)
    Xb = torch.as_tensor(X[:64], dtype=torch.float32)
    yb = torch.as_tensor(y[:64])
    step = clf.train_step_single((Xb, yb))
    positive = step["weights"][step["weights"] > 0]
    assert 0 < len(positive) < 64
    np.testing.assert_allclose(positive.numpy(), 1 / 64, rtol=1e-6)


def heavy_tailed_extreme_imbalance(seed, n_samples=1200, n_minority=12, n_features=20):
    """1:99 classes, Student-t features (real sets' outliers), standardised.

    Few examples of a batch agree with the balanced meta set's gradient, and
    those few have large gradients.
    """
    rng = np.random.RandomState(seed)
    X = rng.standard_t(2, size=(n_samples, n_features))
    y = (np.arange(n_samples) < n_minority).astype(int)
    X[y == 1] += 0.5
    return (X - X.mean(axis=0)) / X.std(axis=0), y


@pytest.mark.parametrize("seed", range(3))
def test_defaults_do_not_diverge_when_few_examples_agree(seed):
    """Issue #16: normalised by the agreeing examples, these fits diverged by epoch 15.

    One agreeing example took the whole batch's weight (128 times its share
    at lr=0.1); with each weight bounded by its plain-training share, the fit
    stays finite and no step's weights sum to more than 1.
    """
    X, y = heavy_tailed_extreme_imbalance(seed)
    weights = []

    class Recorder(L2RWClassifier):
        def train_step_single(self, batch, **fit_params):
            step = super().train_step_single(batch, **fit_params)
            weights.append(step["weights"])
            return step

    clf = Recorder(max_epochs=20, random_state=0).fit(X, y)
    assert np.isfinite(clf.history[:, "train_loss"]).all()
    few = [w for w in weights if 0 < int((w > 0).sum()) <= 3]
    assert few, "the data must produce steps where only a few examples agree"
    assert max(float(w.max() * len(w)) for w in weights) == pytest.approx(1.0)
    assert all(float(w.sum()) <= 1 + 1e-6 for w in weights)
