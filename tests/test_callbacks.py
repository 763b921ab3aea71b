"""Training schedules: the learning-rate recipe and class balancing switches."""

import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import balanced_accuracy_score
from skorch.callbacks import Callback
from skorch.history import History

from ldam_sklearn import L2RWClassifier, LDAMDRWClassifier, MetaWeightNetClassifier
from ldam_sklearn.callbacks import (
    BalancedAccuracy,
    SparseGradientNormClipping,
    WarmupStepLR,
    balanced_accuracy,
    switch_epoch,
)
from ldam_sklearn.data import batch_starts
from ldam_sklearn.losses import class_balanced_weights
from ldam_sklearn.meta_reweighting import l2rw_example_weights

#: One network (not the packed members of the default on dense input): these
#: tests count its epochs and read its batches' targets.
FAST = {"max_epochs": 10, "random_state": 0, "module__hidden_layer_sizes": (16,), "n_members": 1}
FAST_META = {"random_state": 0, "module__hidden_layer_sizes": (16,)}


def test_switch_epoch_fraction_or_number():
    assert switch_epoch(0.8, 10) == 8
    assert switch_epoch(3, 10) == 3
    assert switch_epoch(0.0, 10) == 0


def test_balanced_accuracy_from_confusion_matches_sklearn():
    rng = np.random.RandomState(0)
    y_true, y_pred = rng.randint(0, 4, 200), rng.randint(0, 5, 200)
    y_true[y_true == 2] = 3  # a class that is predicted but never true
    confusion = torch.bincount(torch.as_tensor(y_true * 5 + y_pred), minlength=25)
    with pytest.warns(UserWarning, match="not in y_true"):
        expected = balanced_accuracy_score(y_true, y_pred)
    assert balanced_accuracy(confusion.view(5, 5)) == pytest.approx(expected)


def test_bacc_is_the_balanced_accuracy_of_the_epoch_predictions(imbalanced_data):
    X, y = imbalanced_data
    seen = {True: [], False: []}

    class Record(Callback):
        def on_epoch_begin(self, net, **kwargs):
            seen[True].clear()
            seen[False].clear()

        def on_batch_end(self, net, batch=None, training=False, y_pred=None, **kwargs):
            seen[training].append((batch[1].numpy(), y_pred.argmax(1).numpy()))

    clf = LDAMDRWClassifier(
        callbacks=[Record()],
        early_stopping=True,
        validation_fraction=0.3,
        batch_size=16,
        **{**FAST, "max_epochs": 2},
    ).fit(X, y)
    for training, key in ((True, "train_bacc"), (False, "valid_bacc")):
        y_true, y_pred = map(np.concatenate, zip(*seen[training], strict=True))
        assert clf.history[-1, key] == pytest.approx(balanced_accuracy_score(y_true, y_pred))


def _bacc_epoch(n_classes: int, n_rows: int):
    """A BalancedAccuracy whose epoch over ``n_rows`` training rows has begun, and its net."""
    history = History()
    history.new_epoch()
    net = SimpleNamespace(classes_=np.arange(n_classes), history=history)
    callback = BalancedAccuracy()
    callback.on_epoch_begin(net, dataset_train=range(n_rows))
    return net, callback


def test_bacc_counts_every_row_when_batches_outnumber_the_dataset():
    net, callback = _bacc_epoch(n_classes=3, n_rows=4)
    rng = np.random.RandomState(0)
    y_true, y_pred = rng.randint(0, 3, 11), rng.randint(0, 3, 11)
    for batch in np.array_split(np.arange(11), 4):
        logits = torch.nn.functional.one_hot(torch.as_tensor(y_pred[batch]), 3).float()
        callback.on_batch_end(
            net, batch=(None, torch.as_tensor(y_true[batch])), training=True, y_pred=logits
        )
    callback.on_epoch_end(net)
    assert net.history[-1, "train_bacc"] == pytest.approx(balanced_accuracy_score(y_true, y_pred))
    assert "valid_bacc" not in net.history[-1]


def test_bacc_writes_an_epoch_into_one_buffer():
    # Small tensors kept per batch fragmented glibc's heap under the training
    # step's temporaries: tens of thousands of page faults per epoch.
    net, callback = _bacc_epoch(n_classes=2, n_rows=12)
    buffers = set()
    for _ in range(3):
        callback.on_batch_end(
            net,
            batch=(None, torch.zeros(4, dtype=torch.long)),
            training=True,
            y_pred=torch.ones(4, 2),
        )
        buffers.add(callback._rows[True].data_ptr())
    assert len(buffers) == 1
    callback.on_epoch_end(net)
    assert net.history[-1, "train_bacc"] == 1.0


def test_warmup_step_follows_the_paper_at_200_epochs():
    sched = WarmupStepLR()
    factors = [sched.factor(epoch, 200) for epoch in range(200)]
    np.testing.assert_allclose(factors[:5], [0.2, 0.4, 0.6, 0.8, 1.0])
    assert factors[5:160] == [1.0] * 155
    assert factors[160:180] == [0.01] * 20
    assert factors[180:] == [1e-4] * 20


def test_lr_recorded_and_applied(imbalanced_data):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(lr=0.1, **FAST).fit(X, y)
    lrs = clf.history[:, "lr"]
    expected = [0.1 * WarmupStepLR().factor(e, 10) for e in range(10)]
    np.testing.assert_allclose(lrs, expected)
    assert clf.optimizer_.param_groups[0]["lr"] == pytest.approx(expected[-1])


@pytest.mark.parametrize(
    "schedule, phases",
    [
        ("drw", ["none"] * 8 + ["reweight"] * 2),
        ("reweight", ["reweight"] * 10),
        ("none", None),
        ("resample", ["resample"] * 10),
        ("drs", ["none"] * 8 + ["resample"] * 2),
    ],
)
def test_schedule_phases_in_history(imbalanced_data, schedule, phases):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(schedule=schedule, **FAST).fit(X, y)
    if phases is None:
        assert "balancing" not in clf.history[-1]
    else:
        assert clf.history[:, "balancing"] == phases
    assert len(clf.history[:, "train_bacc"]) == 10


def test_drw_weights_are_the_class_balanced_weights(imbalanced_data):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(beta=0.999, **FAST).fit(X, y)
    expected = class_balanced_weights(np.bincount(y), beta=0.999)
    np.testing.assert_allclose(clf.criterion_.weight.cpu(), expected, rtol=1e-6)
    np.testing.assert_allclose(clf.history[-1, "class_weights"], expected, rtol=1e-6)
    assert clf.history[0, "class_weights"] == [1.0, 1.0, 1.0]
    assert sum(clf.history[-1, "class_weights"]) == pytest.approx(3.0)


def test_drw_switch_keeps_criterion_and_optimizer_state(imbalanced_data):
    X, y = imbalanced_data
    seen = []

    class Spy(Callback):
        # runs after the class_balancing callback, i.e. right after a switch
        def on_epoch_begin(self, net, **kwargs):
            state = net.optimizer_.state.values()
            momentum = sum(float(s["momentum_buffer"].abs().sum()) for s in state)
            seen.append((id(net.optimizer_), id(net.criterion_), momentum))

    # One fit: the default recipe also fits on a hold-out first.
    clf = LDAMDRWClassifier(drw_start=5, recipe="paper", callbacks=[("spy", Spy())], **FAST).fit(
        X, y
    )
    assert clf.history[:, "balancing"] == ["none"] * 5 + ["reweight"] * 5
    assert len({opt for opt, _, _ in seen}) == 1, "optimizer was rebuilt"
    assert len({crit for _, crit, _ in seen}) == 1, "criterion was rebuilt"
    assert seen[5][2] > 0, "momentum buffers were reset at the switch"


def test_resampling_really_draws_balanced_batches(imbalanced_data):
    X, y = imbalanced_data
    drawn = []

    class Record(Callback):
        def on_batch_begin(self, net, batch=None, training=False, **kwargs):
            if training:
                drawn.append(batch[1].cpu().numpy())

    LDAMDRWClassifier(schedule="resample", callbacks=[("record", Record())], **FAST).fit(X, y)
    counts = np.bincount(np.concatenate(drawn), minlength=3) / len(np.concatenate(drawn))
    # natural frequencies are 80/15/5 %; balanced sampling gives ~1/3 each
    np.testing.assert_allclose(counts, 1 / 3, atol=0.06)


def test_reweighting_needs_a_weighted_criterion(imbalanced_data):
    X, y = imbalanced_data
    with pytest.raises(ValueError, match="per-class `weight` buffer"):
        LDAMDRWClassifier(criterion=torch.nn.MultiMarginLoss, schedule="reweight", **FAST).fit(X, y)


def test_every_event_reaches_the_callbacks_that_define_it(imbalanced_data):
    # The net skips callbacks that inherit skorch's no-op for an event; the
    # ones that define it must still see every call, with skorch's arguments.
    X, y = imbalanced_data
    events = []

    class Record(Callback):
        def on_train_begin(self, net, **kwargs):
            events.append("train_begin")

        def on_epoch_begin(self, net, **kwargs):
            events.append("epoch_begin")

        def on_batch_begin(self, net, batch=None, training=None, **kwargs):
            events.append(("batch_begin", training))

        def on_grad_computed(self, net, named_parameters, **kwargs):
            events.append(("grad", len(list(named_parameters))))

        def on_batch_end(self, net, batch=None, training=None, loss=None, **kwargs):
            events.append(("batch_end", training, loss is not None))

        def on_epoch_end(self, net, **kwargs):
            events.append("epoch_end")

    # The paper's recipe: one fit (the default also fits on a hold-out first)
    # and no gradient clipping between backward and step.
    clf = LDAMDRWClassifier(
        callbacks=[Record()], recipe="paper", **{**FAST, "max_epochs": 2, "batch_size": 64}
    )
    clf.fit(X, y)
    n_batches = len(batch_starts(len(X), 64))
    n_params = len(list(clf.module_.parameters()))
    epoch = (
        ["epoch_begin"]
        + [("batch_begin", True), ("grad", n_params), ("batch_end", True, True)] * n_batches
        + ["epoch_end"]
    )
    assert events == ["train_begin"] + epoch * 2


def test_verbose_log_shows_class_weights_as_a_short_aligned_range(imbalanced_data, capsys):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(verbose=1, drw_start=0.5, **FAST).fit(X, y)
    rows = capsys.readouterr().out.splitlines()[2:]
    expected = class_balanced_weights(torch.as_tensor(clf.class_counts_, dtype=torch.float32))
    assert "1.000..1.000" in rows[0]
    assert f"{expected.min():.3f}..{expected.max():.3f}" in rows[-1]
    assert len({len(row.split("..")[0]) for row in rows}) == 1  # the columns stay in line
    assert clf.history[-1, "class_weights"] == pytest.approx(expected.tolist())


def test_a_fit_predicting_one_class_on_its_training_rows_warns():
    # Identical rows and a frozen network: every row gets the same class.
    X, y = np.zeros((40, 3)), np.arange(40) % 2
    clf = LDAMDRWClassifier(loss="ce", lr=0.0, max_epochs=2, random_state=0)
    with pytest.warns(ConvergenceWarning, match=r"predicted class \d for every training row"):
        clf.fit(X, y)
    assert len(np.unique(clf.predict(X))) == 1


class _InterruptSecondEpoch(Callback):
    def on_batch_end(self, net, training=False, **kwargs):
        if training and len(net.history) == 2:
            raise KeyboardInterrupt


def test_the_one_class_warning_of_an_interrupted_fit_names_the_last_epochs_loss():
    X, y = np.zeros((40, 3)), np.arange(40) % 2
    clf = LDAMDRWClassifier(
        loss="ce",
        recipe="paper",
        lr=0.0,
        max_epochs=3,
        random_state=0,
        callbacks=[_InterruptSecondEpoch()],
    )
    with pytest.warns(ConvergenceWarning) as caught:
        clf.fit(X, y)  # skorch returns from an interrupt
    assert len(clf.history) == 2 and "train_loss" not in clf.history[-1]
    loss = clf.history[0, "train_loss"]
    assert np.isfinite(loss)
    assert any(f"(training loss {loss:.4g})" in str(w.message) for w in caught)


def test_a_fit_that_separates_the_classes_does_not_warn(imbalanced_data):
    X, y = imbalanced_data
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        LDAMDRWClassifier(**FAST).fit(X, y)


def _one_step_weights(clf, X, y):
    """Recompute the weights and meta loss of a fit of one full-batch step at lr=0.

    With ``lr=0`` the classifier ends where the step started (and
    Meta-Weight-Net's look-ahead point is the start too), so its weights and
    meta loss can be computed again from the fitted objects.
    """
    train = np.arange(len(y))
    if not clf.train_on_meta:
        train = np.setdiff1d(train, clf.meta_indices_)
    X_train = torch.as_tensor(X[train], dtype=torch.float32)
    y_train = torch.as_tensor(y[train])
    X_meta, y_meta = clf._meta_batch
    with torch.no_grad():
        meta_loss = clf.criterion_(clf.module_(X_meta), y_meta).mean()
        if isinstance(clf, MetaWeightNetClassifier):
            losses = clf.criterion_(clf.module_(X_train), y_train)
            weights = clf.weight_net_(losses, y_train)
            weights = weights / weights.mean().clamp(min=0.5)  # times the batch size
    if isinstance(clf, L2RWClassifier):
        scores = l2rw_example_weights(
            clf.module_, X_train, y_train, X_meta, y_meta, clf.criterion_, normalize=False
        )
        weights = (scores > 0).float()
    return weights.double().numpy(), y_train.numpy(), float(meta_loss)


@pytest.mark.parametrize("Estimator", [L2RWClassifier, MetaWeightNetClassifier])
def test_meta_weight_stats_describe_the_weights_of_the_step(imbalanced_data, Estimator):
    X, y = imbalanced_data
    # Meta-Weight-Net's weights recomputed from the fitted weighting network
    # are the step's when the step weighs with the updated network.
    params = {"real_step_weights": "updated"} if Estimator is MetaWeightNetClassifier else {}
    clf = Estimator(lr=0.0, max_epochs=1, batch_size=len(y), **FAST_META, **params).fit(X, y)
    weights, labels, meta_loss = _one_step_weights(clf, X, y)
    assert weights.std() > 1e-3  # something to measure
    row = clf.history[-1]
    assert row["mean_weight"] == pytest.approx(weights.mean(), rel=1e-4)
    assert row["weight_spread"] == pytest.approx(weights.std(), rel=1e-3)
    per_class = [weights[labels == k].mean() for k in range(3)]
    assert row["meta_weight_per_class"] == pytest.approx(per_class, rel=1e-4)
    assert row["meta_loss"] == pytest.approx(meta_loss, rel=1e-5)
    assert row["zero_weight_fraction"] == pytest.approx(np.mean(weights == 0))


@pytest.mark.parametrize("Estimator", [L2RWClassifier, MetaWeightNetClassifier])
def test_meta_weight_stats_of_several_steps(imbalanced_data, Estimator):
    X, y = imbalanced_data
    clf = Estimator(max_epochs=5, **FAST_META).fit(X, y)
    for row in clf.history:
        per_class = np.asarray(row["meta_weight_per_class"])
        assert 0 <= row["mean_weight"] <= per_class.max()
        assert row["mean_weight"] >= per_class.min()
        assert 0 <= row["weight_spread"] <= 2
        assert np.isfinite(row["meta_loss"]) and row["meta_loss"] > 0
    # Nothing on the device is left for the pickle.
    stats = dict(clf.callbacks_)["meta_weights"]
    assert stats._weights == stats._labels == stats._meta_losses == []


def test_verbose_log_shows_meta_weights_per_class_as_a_range(imbalanced_data, capsys):
    X, y = imbalanced_data
    clf = L2RWClassifier(verbose=1, max_epochs=2, **FAST_META).fit(X, y)
    out = capsys.readouterr().out
    header, _, *rows = out.splitlines()
    assert "meta_weight_per_class" in header and "weight_spread" in header
    for row, per_class in zip(rows, clf.history[:, "meta_weight_per_class"], strict=True):
        assert f"{min(per_class):.3f}..{max(per_class):.3f}" in row
        assert "[" not in row.replace("\x1b[", "")  # no raw list


@pytest.mark.parametrize("order", [1.0, 2, float("inf")])
def test_sparse_gradient_clipping_clones_and_clips_to_the_norm_of_its_order(order):
    clipping = clone(SparseGradientNormClipping(1.0, gradient_clip_norm_type=order))
    dense = torch.nn.Parameter(torch.zeros(2))
    dense.grad = torch.tensor([3.0, -4.0])
    sparse = torch.nn.Parameter(torch.zeros(3))
    sparse.grad = torch.sparse_coo_tensor([[2]], [12.0], (3,), check_invariants=True)
    clipping.on_grad_computed(None, [("dense", dense), ("sparse", sparse)])
    together = torch.cat([dense.grad, sparse.grad.to_dense()])
    assert float(torch.linalg.vector_norm(together, order)) == pytest.approx(1.0, rel=1e-4)


def test_gradient_clipping_of_packed_members_allows_each_its_own_norm():
    packed = SimpleNamespace(n_members_=4)
    weight = torch.nn.Parameter(torch.zeros(4, 2))
    weight.grad = torch.full((4, 2), 10.0)
    SparseGradientNormClipping(1.0).on_grad_computed(packed, [("weight", weight)])
    # Four members of norm 1 each: norm 2 together.
    assert float(weight.grad.norm()) == pytest.approx(2.0, rel=1e-4)


def test_a_net_with_sparse_gradient_clipping_among_its_callbacks_clones():
    clf = LDAMDRWClassifier(callbacks=[("clip", SparseGradientNormClipping(0.5))])
    cloned = clone(clf)
    assert cloned.callbacks[0][1].gradient_clip_value == 0.5
