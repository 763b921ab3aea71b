"""LDAMDRWClassifier: its losses, heads, parameters and the ablation grid."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

from ldam_sklearn import LDAMDRWClassifier
from ldam_sklearn.base import BaseNetClassifier
from ldam_sklearn.losses import (
    BalancedSoftmaxLoss,
    CrossEntropyLoss,
    FocalLoss,
    LDAMLoss,
    LogitAdjustedLoss,
)
from ldam_sklearn.modules import CosineLinear, CosineLinearEnsemble
from ldam_sklearn.posthoc import best_posthoc_tau, member_folds

FAST = {"max_epochs": 6, "random_state": 0, "module__hidden_layer_sizes": (16,)}
#: One network: the hold-out, mixup and clipping of the tabular recipe
#: (the default on sparse input), without packed members.
SINGLE = {**FAST, "n_members": 1}


@pytest.mark.parametrize(
    "loss, criterion, cosine",
    [
        ("ldam", LDAMLoss, True),
        ("ce", CrossEntropyLoss, False),
        ("focal", FocalLoss, False),
        ("logit_adjusted", LogitAdjustedLoss, False),
        ("logit_adjusted_posthoc", CrossEntropyLoss, False),
        ("balanced_softmax", BalancedSoftmaxLoss, False),
    ],
)
def test_loss_selects_criterion_and_head(imbalanced_data, loss, criterion, cosine):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(loss=loss, **SINGLE).fit(X, y)
    assert type(clf.criterion_) is criterion
    assert isinstance(clf.module_.head, CosineLinear) is cosine
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0)
    packed = LDAMDRWClassifier(loss=loss, **FAST).fit(X, y)
    assert isinstance(packed.module_.head, CosineLinearEnsemble) is cosine
    np.testing.assert_allclose(clf.predict_proba(X).sum(axis=1), 1.0)


def test_hyperparameters_reach_the_criterion(imbalanced_data):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(max_m=0.3, s=10.0, **FAST).fit(X, y)
    assert float(clf.criterion_.margins.max()) == pytest.approx(0.3)
    assert clf.criterion_.s == 10.0
    clf = LDAMDRWClassifier(loss="focal", gamma=2.5, **FAST).fit(X, y)
    assert clf.criterion_.gamma == 2.5
    clf = LDAMDRWClassifier(loss="logit_adjusted", tau=0.5, **FAST).fit(X, y)
    assert clf.criterion_.tau == 0.5


def test_ldam_predict_proba_applies_the_scale(imbalanced_data):
    X, y = imbalanced_data
    # No post-hoc adjustment on top of the scale (see the tau tests).
    clf = LDAMDRWClassifier(recipe="paper", **{**FAST, "max_epochs": 30}).fit(X, y)
    cosines = clf.forward(X.astype(np.float32)).numpy()
    assert np.abs(cosines).max() <= 1.0 + 1e-6
    expected = torch.softmax(torch.as_tensor(cosines, dtype=torch.float64) * clf.s, dim=1)
    np.testing.assert_allclose(clf.predict_proba(X), expected.numpy(), rtol=1e-5, atol=1e-7)
    # without the scale, probabilities of a cosine head would be near uniform
    assert clf.predict_proba(X).max(axis=1).mean() > 0.6


def test_posthoc_logit_adjustment_subtracts_log_prior(imbalanced_data):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(loss="logit_adjusted_posthoc", schedule="none", tau=1.0, **SINGLE)
    clf.fit(X, y)
    logits = clf.forward(X.astype(np.float32)).double()
    prior = np.bincount(y) / len(y)
    expected = torch.softmax(logits - torch.log(torch.as_tensor(prior)), dim=1)
    np.testing.assert_allclose(clf.predict_proba(X), expected.numpy(), rtol=1e-5, atol=1e-7)
    plain = torch.softmax(logits, dim=1).numpy()
    # the adjustment moves predictions towards the rare class
    assert clf.predict_proba(X)[:, 2].mean() > plain[:, 2].mean()


@pytest.mark.parametrize(
    "params, message",
    [
        ({"loss": "hinge"}, r"loss='hinge' is not valid; choose one of \['balanced_softmax'"),
        ({"schedule": "cosine"}, r"schedule='cosine' is not valid; choose one of"),
        ({"recipe": "cifar"}, r"recipe='cifar' is not valid; choose one of"),
        ({"choose_tau": "no"}, r"choose_tau must be True or False, got 'no'"),
        ({"tau_scoring": "recall"}, r"tau_scoring='recall' is not valid; choose one of"),
        ({"n_members": 0}, r'n_members must be "auto" or an integer of at least 1, got 0'),
        ({"n_members": "5"}, r"n_members must be .* got '5'"),
        ({"n_members": 3, "module": torch.nn.Linear}, "pass n_members=1 with your own module"),
        ({"max_m": -0.1}, "max_m must be a real number >= 0"),
        ({"s": 0}, "s must be a real number > 0"),
        ({"beta": 1.0}, r"beta must be a real number in \[0, 1\)"),
        ({"gamma": -1}, "gamma must be a real number >= 0"),
        ({"tau": -1}, "tau must be a real number >= 0"),
        ({"drw_start": 500}, "drw_start=500 falls outside"),
        ({"drw_start": "late"}, "drw_start must be a fraction"),
        ({"lr_schedule": "cosine"}, "lr_schedule='cosine' is not valid"),
        ({"max_epochs": -1}, "max_epochs must be an integer >= 0"),
        ({"batch_size": 0}, "batch_size must be an integer >= 1"),
        ({"validation_fraction": 1.5}, r"validation_fraction must be in \(0, 1\)"),
    ],
)
def test_bad_parameters_rejected_at_fit_with_choices(imbalanced_data, params, message):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(**params)  # __init__ only stores
    with pytest.raises(ValueError, match=message):
        clf.fit(X, y)


def test_ablation_grid_search_prints_as_table(imbalanced_data):
    X, y = imbalanced_data
    grid = GridSearchCV(
        LDAMDRWClassifier(**FAST),
        {"loss": ["ce", "ldam"], "schedule": ["none", "drw"], "max_m": [0.3, 0.5]},
        scoring="balanced_accuracy",
        cv=2,
    ).fit(X, y)
    results = pd.DataFrame(grid.cv_results_)
    table = results.pivot_table(
        index="param_loss", columns="param_schedule", values="mean_test_score", aggfunc="max"
    )
    assert table.shape == (2, 2)
    assert np.isfinite(table.to_numpy()).all()
    assert grid.best_params_["loss"] in ("ce", "ldam")


def _text_like(n=400, vocabulary=1500, words=12, minority=0.13, seed=0):
    """TF-IDF rows of Zipf-distributed words; the minority shares four rare words."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < minority).astype(int)
    p = 1.0 / np.arange(1, vocabulary + 1)
    docs = rng.choice(vocabulary, size=(n, words), p=p / p.sum())
    docs[y == 1, :4] = rng.choice(np.arange(vocabulary - 50, vocabulary), size=(y.sum(), 4))
    rows = np.repeat(np.arange(n), words)
    counts = sp.csr_matrix((np.ones(n * words), (rows, docs.ravel())), shape=(n, vocabulary))
    return TfidfTransformer().fit_transform(counts).astype(np.float32), y


@pytest.mark.parametrize("max_epochs", [10, 20, 30])
@pytest.mark.parametrize("dense", [False, True])
def test_ldam_learns_short_budgets_on_text_like_data(max_epochs, dense):
    # Regression (#15): TF-IDF rows (unit norm over thousands of features)
    # made the cosine head blow up in the first steps; the fit then predicted
    # the majority class only, silently, where cross-entropy learns.
    X, y = _text_like()
    X = X.toarray() if dense else X
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = LDAMDRWClassifier(max_epochs=max_epochs, random_state=0).fit(X, y)
    erm = LDAMDRWClassifier(loss="ce", schedule="none", max_epochs=max_epochs, random_state=0)
    erm_score = balanced_accuracy_score(y, erm.fit(X, y).predict(X))
    assert balanced_accuracy_score(y, clf.predict(X)) >= min(0.95, erm_score - 0.02)


@pytest.mark.parametrize("max_epochs", [10, 20, 30])
def test_packed_default_learns_short_budgets_on_dense_tabular_data(max_epochs):
    # Regression: packed members that train plainly (27 rows per feature
    # here) are unclipped, and in 4 or 8 epochs their cosine heads did not
    # recover from the first steps' blow-up: one class, where ERM learns.
    X, y = make_classification(267, 10, weights=[0.9, 0.1], random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf = LDAMDRWClassifier(max_epochs=max_epochs, random_state=0).fit(X, y)
    assert not clf._plain_members
    erm = LDAMDRWClassifier(loss="ce", schedule="none", max_epochs=max_epochs, random_state=0)
    erm_score = balanced_accuracy_score(y, erm.fit(X, y).predict(X))
    # It learns (one class would score 0.5), within a few points of ERM.
    assert balanced_accuracy_score(y, clf.predict(X)) >= erm_score - 0.05


def test_tabular_recipe_clips_each_step_and_paper_recipe_does_not(imbalanced_data):
    X, y = imbalanced_data
    tabular = dict(LDAMDRWClassifier(**SINGLE).fit(X, y).callbacks_)
    assert tabular["gradient_clipping"].gradient_clip_value == 1.0
    paper = dict(LDAMDRWClassifier(recipe="paper", **FAST).fit(X, y).callbacks_)
    assert "gradient_clipping" not in paper


def test_tabular_recipe_trains_dense_input_on_mixed_rows(imbalanced_data):
    X, y = imbalanced_data
    seen = []

    def record(module, args):
        if module.training:
            seen.append(args[0].detach().to_dense())

    class Recorder(Callback):
        def on_train_begin(self, net, **kwargs):
            net.module_.register_forward_pre_hook(record)

    def first_batches(data=X, **params):
        seen.clear()
        clf = LDAMDRWClassifier(**{**SINGLE, "max_epochs": 1, **params}, callbacks=[Recorder()])
        clf.fit(data, y)
        return torch.cat(seen)

    rows = torch.as_tensor(X, dtype=torch.float32)

    def distance_to_nearest_row(inputs):
        exact = "donot_use_mm_for_euclid_dist"
        return torch.cdist(inputs, rows, compute_mode=exact).min(dim=1).values

    # Each training input is a convex combination of two rows, rarely a row itself.
    mixed = first_batches()
    is_a_row = (distance_to_nearest_row(mixed) < 1e-4).float().mean()
    assert is_a_row < 0.5
    # The paper's recipe and sparse input train on the rows as they are.
    assert distance_to_nearest_row(first_batches(recipe="paper")).max() < 1e-4
    assert distance_to_nearest_row(first_batches(sp.csr_matrix(X))).max() < 1e-4


def test_mixup_loss_weighs_both_labels_by_the_mixing_weight(imbalanced_data, monkeypatch):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(loss="ce", schedule="none", **SINGLE).fit(X, y)
    Xb, yb = torch.as_tensor(X[:8], dtype=torch.float32), torch.as_tensor(y[:8])
    torch.manual_seed(0)
    lam = float(torch.distributions.Beta(0.2, 0.2).sample())
    perm = torch.randperm(8)
    with torch.no_grad():
        y_pred = clf.module_(lam * Xb + (1 - lam) * Xb[perm])
        expected = lam * clf.criterion_(y_pred, yb) + (1 - lam) * clf.criterion_(y_pred, yb[perm])
    torch.manual_seed(0)
    step = clf.train_step_single((Xb, yb))
    torch.testing.assert_close(step["loss"].detach(), expected)


def test_tabular_recipe_sets_the_default_optimizers_weight_decay_only(imbalanced_data):
    X, y = imbalanced_data

    def decay(**params):
        clf = LDAMDRWClassifier(**{**SINGLE, "max_epochs": 1, **params}).fit(X, y)
        return clf.optimizer_.param_groups[0]["weight_decay"]

    assert decay() == 5e-3
    assert decay(recipe="paper") == 2e-4
    assert decay(optimizer__weight_decay=1e-4) == 1e-4
    assert decay(optimizer=torch.optim.SGD) == 0


def test_deferred_reweighting_changes_the_model_at_the_defaults(imbalanced_data):
    X, y = imbalanced_data
    params = {**SINGLE, "max_epochs": 30}
    drw = LDAMDRWClassifier(**params).fit(X, y)
    plain = LDAMDRWClassifier(schedule="none", **params).fit(X, y)
    switch = int(0.8 * params["max_epochs"])
    # Mixed rows keep the loss above zero at the switch, so the weights act.
    assert drw.history[switch - 1, "train_loss"] > 0.05
    assert np.abs(drw.predict_proba(X) - plain.predict_proba(X)).max() > 0.01


def _record_fits(monkeypatch, record=lambda y, sample_weight: len(y)):
    """Every fit of the network (hold-out fit and refit), as ``record(y, sample_weight)``."""
    fitted = []
    original = BaseNetClassifier.fit

    def spy(self, X, y, sample_weight=None, **kwargs):
        fitted.append(record(np.asarray(y), sample_weight))
        return original(self, X, y, sample_weight=sample_weight, **kwargs)

    monkeypatch.setattr(BaseNetClassifier, "fit", spy)
    return fitted


def test_tabular_fit_chooses_tau_on_held_out_rows_then_refits_on_all(imbalanced_data, monkeypatch):
    X, y = imbalanced_data
    fitted = _record_fits(monkeypatch)
    clf = LDAMDRWClassifier(**SINGLE).fit(X, y)
    assert fitted == [len(y) - round(0.2 * len(y)), len(y)]
    # The hold-out's coarser grid of 0.25 (out-of-fold choices take 0.05).
    assert clf.posthoc_tau_ in set(np.arange(0, 4.01, 0.25))
    # predict_proba applies the chosen adjustment to the network's logits.
    logits = clf.s * clf.forward(X.astype(np.float32)).double()
    log_prior = torch.as_tensor(np.log(clf.class_counts_ / clf.class_counts_.sum()))
    expected = torch.softmax(logits - clf.posthoc_tau_ * log_prior, dim=1)
    np.testing.assert_allclose(clf.predict_proba(X), expected.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    "params, n_fits",
    [
        ({"recipe": "paper"}, 1),
        ({"loss": "logit_adjusted_posthoc"}, 1),
        ({"choose_tau": False}, 1),
        ({}, 2),
    ],
)
def test_tau_is_chosen_only_by_the_tabular_recipe(imbalanced_data, monkeypatch, params, n_fits):
    X, y = imbalanced_data
    fitted = _record_fits(monkeypatch)
    clf = LDAMDRWClassifier(**{**SINGLE, "max_epochs": 2, **params}).fit(X, y)
    assert len(fitted) == n_fits
    if n_fits == 1:
        assert clf.posthoc_tau_ == 0.0


def test_tau_is_not_chosen_unless_two_classes_have_two_rows(monkeypatch):
    X = np.random.RandomState(0).randn(40, 3)
    y = np.r_[np.zeros(39, int), np.ones(1, int)]
    fitted = _record_fits(monkeypatch)
    clf = LDAMDRWClassifier(**{**SINGLE, "max_epochs": 2}).fit(X, y)
    assert len(fitted) == 1 and clf.posthoc_tau_ == 0.0


def _sparse_text(n_rows=300, n_classes=3, seed=0):
    """A TF-IDF-like CSR matrix with one cue column per class, and long-tailed labels."""
    rng = np.random.RandomState(seed)
    y = np.minimum(rng.geometric(0.5, size=n_rows) - 1, n_classes - 1)
    X = sp.random(n_rows, 200, density=0.03, random_state=rng, format="lil")
    X[np.arange(n_rows), y] = 1.0
    return X.tocsr(), y


def test_tabular_recipe_on_sparse_input_trains_a_tenth_of_the_epochs_of_one_wide_layer():
    X, y = _sparse_text()  # 300 rows: 9 batches of 32 per epoch, the last of 44
    clf = LDAMDRWClassifier(max_epochs=300, batch_size=32, random_state=0).fit(X, y)
    # ceil(300 / 10) epochs; max_epochs itself is left as given.
    assert len(clf.history) == 30 and clf.max_epochs == 300
    # At least 200 steps, here ceil(200 / 9) = 23 epochs, within max_epochs.
    few = LDAMDRWClassifier(max_epochs=30, batch_size=32, random_state=0).fit(X, y)
    assert len(few.history) == 23
    tiny = LDAMDRWClassifier(max_epochs=12, batch_size=32, random_state=0).fit(X, y)
    assert len(tiny.history) == 12
    assert [layer.out_features for layer in clf.module_.body if hasattr(layer, "out_features")] == [
        512
    ]
    assert clf.module_.body[2].p == 0.3
    assert clf.optimizer_.param_groups[0]["weight_decay"] == 1e-3
    # The deferred re-weighting still switches on, at 80 % of the epochs trained.
    assert clf.history[-1, "balancing"] == "reweight"
    assert balanced_accuracy_score(y, clf.predict(X)) > 0.9


def test_sparse_rules_leave_given_values_dense_input_and_the_paper_recipe_alone():
    X, y = _sparse_text()
    given = LDAMDRWClassifier(
        max_epochs=4,
        module__hidden_layer_sizes=(8, 8),
        module__dropout=0.0,
        optimizer__weight_decay=1e-4,
        random_state=0,
    ).fit(X, y)
    assert len(given.module_.body) == 4  # two Linear-ReLU pairs, no Dropout
    assert given.optimizer_.param_groups[0]["weight_decay"] == 1e-4
    paper = LDAMDRWClassifier(recipe="paper", max_epochs=4, random_state=0).fit(X, y)
    assert len(paper.history) == 4
    assert paper.optimizer_.param_groups[0]["weight_decay"] == 2e-4
    dense = LDAMDRWClassifier(max_epochs=4, n_members=1, random_state=0).fit(X.toarray(), y)
    assert len(dense.history) == 4
    assert [m.out_features for m in dense.module_.body if hasattr(m, "out_features")] == [256, 256]
    assert dense.optimizer_.param_groups[0]["weight_decay"] == 5e-3


@pytest.mark.parametrize("sparse", [True, False])
def test_tau_is_chosen_with_classes_of_two_rows_and_singletons_stay_whole(monkeypatch, sparse):
    X, y = _sparse_text()
    y[:3] = 3  # a fourth class of 3 rows
    y[3] = 4  # and a fifth of one row
    fitted = _record_fits(monkeypatch, lambda y, _: np.bincount(y, minlength=5))
    X = X if sparse else X.toarray()
    LDAMDRWClassifier(max_epochs=20, n_members=1, random_state=0).fit(X, y)
    counts = np.bincount(y)
    # The first fit has the single row and 80 % of the others, at least one
    # row of each class.
    assert fitted[0][4] == 1 and 1 <= fitted[0][3] <= 3
    np.testing.assert_allclose(fitted[0][:3], 0.8 * counts[:3], atol=1)
    np.testing.assert_array_equal(fitted[1], counts)


@pytest.mark.parametrize("seed", range(5))
def test_hold_out_takes_rows_of_positive_weight_only(monkeypatch, seed):
    X = np.random.RandomState(seed).randn(20, 3)
    y = np.r_[np.zeros(14, int), np.ones(6, int)]
    # Two class-1 rows weigh something: the hold-out may take one of them,
    # never a zero-weight row, so the first fit keeps weight in both classes
    # (it used to fail when the hold-out took the only one).
    sample_weight = np.r_[np.ones(14), [1.0, 1.0], np.zeros(4)]
    fitted = _record_fits(
        monkeypatch, lambda y, w: (np.bincount(y[w > 0], minlength=2), (w == 0).sum())
    )
    clf = LDAMDRWClassifier(**{**SINGLE, "max_epochs": 2, "random_state": seed})
    clf.fit(X, y, sample_weight=sample_weight)
    # 4 of the 16 rows of positive weight held out, at most one of class 1.
    (first_positive, first_zeros), (all_positive, _) = fitted
    assert first_positive.sum() == 12 and first_positive[1] >= 1 and first_zeros == 4
    np.testing.assert_array_equal(all_positive, [14, 2])
    # One positive class-1 row is too few to hold out from: no choice.
    sample_weight[15] = 0.0
    fitted.clear()
    LDAMDRWClassifier(**{**SINGLE, "max_epochs": 2}).fit(X, y, sample_weight=sample_weight)
    assert len(fitted) == 1


def test_hold_out_has_as_many_rows_as_classes_when_the_classes_are_many_and_small(monkeypatch):
    X = np.random.RandomState(0).randn(24, 3)
    y = np.r_[np.zeros(6, int), np.repeat(np.arange(1, 10), 2)]  # 20 % would be 5 rows
    fitted = _record_fits(monkeypatch, lambda y, _: np.bincount(y, minlength=10))
    LDAMDRWClassifier(**{**SINGLE, "max_epochs": 2}).fit(X, y)
    # Ten rows held out (a stratified split refuses fewer than the classes),
    # and the first fit still sees every class.
    assert fitted[0].sum() == 14 and fitted[0].min() >= 1


@pytest.mark.parametrize(
    ("rows", "params", "message"),
    [
        (0, {}, "0 sample"),
        (10, {"batch_size": 0}, "batch_size"),
        (10, {"max_epochs": -1}, "max_epochs"),
    ],
)
def test_sparse_epoch_budget_leaves_bad_input_to_validation(rows, params, message):
    # The sparse epoch budget divides by the rows per batch: empty input or a
    # bad batch_size must get the clear error, not a ZeroDivisionError.
    X = sp.csr_matrix(np.ones((rows, 3)))
    with pytest.raises(ValueError, match=message):
        LDAMDRWClassifier(**params).fit(X, np.arange(rows) % 2)


# -- packed members (the default on dense input) ------------------------------


def test_default_packs_five_members_on_dense_input_for_40_percent_of_the_epochs(imbalanced_data):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(**{**FAST, "max_epochs": 10}).fit(X, y)
    assert clf.n_members_ == 5 and clf.max_epochs == 10
    assert len(clf.history) == 4  # ceil(0.4 * 10)
    assert clf.forward(X.astype(np.float32)).shape == (len(y), 5, 3)
    assert clf.predict_proba(X).shape == (len(y), 3)
    # One network on sparse input, with the paper's recipe and with a given module.
    assert LDAMDRWClassifier(**FAST).fit(sp.csr_matrix(X), y).n_members_ == 1
    assert LDAMDRWClassifier(recipe="paper", **FAST).fit(X, y).n_members_ == 1
    given = LDAMDRWClassifier(
        module=ModuleWithoutPacking, module__n_features=20, module__n_classes=3, max_epochs=2
    )
    assert given.fit(X, y).n_members_ == 1


@pytest.mark.parametrize("sparse", [False, True])
def test_an_epoch_number_for_drw_start_switches_at_its_fraction_of_a_shorter_budget(
    imbalanced_data, sparse
):
    X, y = imbalanced_data
    X = sp.csr_matrix(X) if sparse else X
    # Epoch 40 of 50 is 80 %: the packed 20 epochs (dense) and the 200
    # steps of 32 rows (sparse) switch at their 80 % as well.
    params = {**FAST, "max_epochs": 50, "batch_size": 32, "drw_start": 40}
    clf = LDAMDRWClassifier(**params).fit(X, y)
    trained = len(clf.history)
    assert trained < 50
    switch = round(0.8 * trained)
    assert clf.history[:, "balancing"] == ["none"] * switch + ["reweight"] * (trained - switch)
    assert clf.drw_start == 40 and clf.max_epochs == 50
    # With the whole budget trained (the paper's recipe), epoch 40 it is.
    paper = LDAMDRWClassifier(**{**params, "max_epochs": 42, "recipe": "paper"}).fit(X, y)
    assert paper.history[:, "balancing"] == ["none"] * 40 + ["reweight"] * 2


def test_packed_members_record_their_mean_loss_and_step_as_if_alone(imbalanced_data):
    X, y = imbalanced_data
    params = {**FAST, "loss": "ce", "schedule": "none", "max_epochs": 3}
    packed = LDAMDRWClassifier(**params).fit(X, y)
    single = LDAMDRWClassifier(**params, n_members=1).fit(X, y)
    # On one network's scale, not five networks' sum.
    assert 0.5 < packed.history[0, "train_loss"] / single.history[0, "train_loss"] < 2
    output = packed.forward(X.astype(np.float32))
    labels = torch.as_tensor(np.searchsorted(packed.classes_, y))
    members = [packed.get_loss(output[:, m], labels) for m in range(5)]
    assert torch.isclose(packed.get_loss(output, labels), torch.stack(members).mean())


class ModuleWithoutPacking(torch.nn.Module):
    def __init__(self, n_features, n_classes):
        super().__init__()
        self.linear = torch.nn.Linear(n_features, n_classes)

    def forward(self, X):
        return self.linear(X)


@pytest.mark.parametrize(
    "n_rows, max_epochs, plain", [(600, 50, True), (100, 6, False), (600, 6, False)]
)
def test_a_member_does_not_train_on_its_own_fold(n_rows, max_epochs, plain):
    X, y = make_classification(n_rows, 20, n_informative=5, weights=[0.8, 0.2], random_state=0)
    # Without standardisation the moved rows change no input statistics;
    # the clipping of the mixup members' steps, one factor for all members
    # together, is the one thing members share, so it is switched off here.
    params = {
        **FAST,
        "max_epochs": max_epochs,
        "module__standardize": False,
        "callbacks__gradient_clipping": None,
    }
    clf = LDAMDRWClassifier(**params).fit(X, y)
    assert clf._plain_members is plain
    seed = np.random.RandomState(0).randint(np.iinfo(np.int32).max)
    folds = member_folds(y, None, 5, seed)
    moved = X.copy()
    moved[folds == 0] += 3.0
    outputs = clf.forward(X.astype(np.float32))
    again = LDAMDRWClassifier(**params).fit(moved, y).forward(X.astype(np.float32))
    torch.testing.assert_close(again[:, 0], outputs[:, 0], rtol=1e-4, atol=1e-5)
    assert (again[:, 1] - outputs[:, 1]).abs().max() > 1e-3


def test_packed_tau_is_chosen_on_each_row_by_the_member_that_did_not_see_it(imbalanced_data):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(**FAST).fit(X, y)
    seed = np.random.RandomState(0).randint(np.iinfo(np.int32).max)
    folds = member_folds(y, None, 5, seed)
    cosines = clf.forward(X.astype(np.float32)).double()
    log_proba = torch.log_softmax(clf.s * cosines, dim=-1)[np.arange(len(y)), folds].numpy()
    assert clf.posthoc_tau_ == best_posthoc_tau(log_proba, y, clf.class_counts_)
    # predict_proba: the members' mean log-probability, adjusted.
    log_prior = torch.as_tensor(np.log(clf.class_counts_ / clf.class_counts_.sum()))
    mean = torch.log_softmax(clf.s * cosines, dim=-1).mean(dim=1)
    expected = torch.softmax(mean - clf.posthoc_tau_ * log_prior, dim=1)
    np.testing.assert_allclose(clf.predict_proba(X), expected.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("members", [5, 1])
def test_tau_scoring_f1_macro_adjusts_the_same_network_less(members):
    X, y = make_classification(
        600, 20, n_informative=5, weights=[0.9, 0.1], flip_y=0.05, random_state=2
    )
    by_bacc = LDAMDRWClassifier(**FAST, n_members=members).fit(X, y)
    by_f1 = LDAMDRWClassifier(**FAST, n_members=members, tau_scoring="f1_macro").fit(X, y)
    # The strength is chosen after training (and before the refit of one
    # network): both train the same weights.
    for a, b in zip(by_bacc.module_.parameters(), by_f1.module_.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert by_f1.posthoc_tau_ < by_bacc.posthoc_tau_
    assert (by_f1.predict(X) == 1).sum() < (by_bacc.predict(X) == 1).sum()
    if members > 1:
        folds = member_folds(y, None, 5, np.random.RandomState(0).randint(np.iinfo(np.int32).max))
        cosines = by_f1.forward(X.astype(np.float32)).double()
        log_proba = torch.log_softmax(by_f1.s * cosines, dim=-1)[np.arange(len(y)), folds]
        counts = by_f1.class_counts_
        assert by_f1.posthoc_tau_ == best_posthoc_tau(
            log_proba.numpy(), y, counts, scoring="f1_macro"
        )


@pytest.mark.parametrize("members", [5, 1])
def test_fit_ends_with_one_forward_pass_over_the_training_rows(
    imbalanced_data, monkeypatch, members
):
    # tau (out of fold) and the single-class check share it.
    X, y = imbalanced_data
    calls = []
    outputs = LDAMDRWClassifier._module_outputs

    def counted(self, X):
        calls.append(len(X))
        return outputs(self, X)

    monkeypatch.setattr(LDAMDRWClassifier, "_module_outputs", counted)
    LDAMDRWClassifier(**FAST, n_members=members).fit(X, y)
    # One network also scores its hold-out (a fifth of the rows) before the refit.
    assert calls == ([len(y)] if members > 1 else [len(X) - int(0.8 * len(X)), len(y)])


def test_members_train_plainly_from_12_rows_per_feature_and_20_epochs_or_400_steps():
    X, y = make_classification(400, 20, weights=[0.8, 0.2], random_state=0)
    params = {**FAST, "max_epochs": 50}  # 20 epochs trained
    plain = LDAMDRWClassifier(**params).fit(X[:240], y[:240])  # 12 rows per feature
    assert "gradient_clipping" not in dict(plain.callbacks_)
    assert plain.optimizer_.param_groups[0]["weight_decay"] == 2e-4
    # ceil(0.4 * 47) = 19 epochs: too few to train plainly.
    assert not LDAMDRWClassifier(**{**params, "max_epochs": 47}).fit(X, y)._plain_members
    # ... or 400 steps in fewer epochs: 3 epochs of 137 and of 125 steps.
    X_many, y_many = make_classification(1096, 20, weights=[0.8, 0.2], random_state=0)
    few_epochs = {**FAST, "batch_size": 8}
    assert LDAMDRWClassifier(**few_epochs).fit(X_many, y_many)._plain_members
    assert not LDAMDRWClassifier(**few_epochs).fit(X_many[:1000], y_many[:1000])._plain_members
    regularised = LDAMDRWClassifier(**params).fit(X[:239], y[:239])
    # Clipped to norm 1 per member: sqrt(5) for the five together.
    clipping = dict(regularised.callbacks_)["gradient_clipping"]
    assert clipping.gradient_clip_value == 1.0 and regularised.n_members_ == 5
    assert regularised.optimizer_.param_groups[0]["weight_decay"] == 5e-3


def test_packed_members_keep_their_tau_in_warm_and_partial_fits(imbalanced_data):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(**FAST, warm_start=True).fit(X, y)
    tau = clf.posthoc_tau_
    clf.fit(X, y)
    clf.partial_fit(X, y)
    assert clf.posthoc_tau_ == tau and clf.n_members_ == 5
    # A warm fit trains max_epochs epochs, every member on every row.
    assert len(clf.history) == 3 + 6 + 6


def _thresholds(n_rows, seed=0):
    """A rule of axis-aligned thresholds, which trees fit better than a small network."""
    X = np.random.default_rng(seed).normal(size=(n_rows, 8))
    y = ((X[:, 0] > 1.0) & (X[:, 1] > 0) | (X[:, 2] > 2.2)).astype(int)
    return X, y


def test_default_blends_no_trees(imbalanced_data):
    clf = LDAMDRWClassifier(**FAST).fit(*imbalanced_data)
    assert clf.tree_members_ == [] and clf.tree_weight_ == 1.0


def test_tree_blend_chooses_the_trees_share_and_tau_out_of_fold_and_predicts_the_blend():
    X, y = _thresholds(1500)
    train, test = slice(0, 1000), slice(1000, None)
    params = {"max_epochs": 20, "random_state": 0}
    alone = LDAMDRWClassifier(**params).fit(X[train], y[train])
    blend = LDAMDRWClassifier(**params, tree_blend=True).fit(X[train], y[train])
    assert len(blend.tree_members_) == blend.n_members_ == 5
    # The network trains the same weights; the blend leans on the trees.
    for a, b in zip(alone.module_.parameters(), blend.module_.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert blend.tree_weight_ < 1.0
    score = balanced_accuracy_score(y[test], blend.predict(X[test]))
    assert score > balanced_accuracy_score(y[test], alone.predict(X[test])) + 0.02
    # predict_proba: the softmax of the blend of the members' mean
    # log-probability and the trees', adjusted.
    X_test = X[test].astype(np.float32)
    net = torch.log_softmax(blend.s * blend.forward(X_test).double(), dim=-1).mean(dim=1)
    trees = np.mean([np.log(tree.predict_proba(X_test)) for tree in blend.tree_members_], axis=0)
    w, log_prior = blend.tree_weight_, np.log(blend.class_counts_ / blend.class_counts_.sum())
    logits = w * net.numpy() + (1 - w) * trees - blend.posthoc_tau_ * log_prior
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(blend.predict_proba(X[test]), expected, rtol=1e-6, atol=1e-9)
    # A refit without the blend drops the trees.
    blend.set_params(tree_blend=False).fit(X[train], y[train])
    assert blend.tree_members_ == []
    np.testing.assert_array_equal(blend.predict_proba(X[test]), alone.predict_proba(X[test]))


@pytest.mark.parametrize(
    "params, sparse",
    [
        ({"n_members": 1}, False),
        ({"recipe": "paper"}, False),
        ({"choose_tau": False}, False),
        ({"loss": "logit_adjusted_posthoc"}, False),
        ({}, True),
    ],
)
def test_tree_blend_needs_the_packed_members_out_of_fold_rows(imbalanced_data, params, sparse):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(**{**FAST, **params}, tree_blend=True)
    with pytest.raises(ValueError, match="tree_blend=True chooses the blend on the packed members"):
        clf.fit(sp.csr_matrix(X) if sparse else X, y)


def test_save_params_refuses_a_tree_blend_and_pickle_keeps_it(tmp_path):
    X, y = _thresholds(600)
    clf = LDAMDRWClassifier(max_epochs=6, random_state=0, tree_blend=True).fit(X, y)
    with pytest.raises(ValueError, match="pickle the estimator"):
        clf.save_params(f_params=tmp_path / "params.pt")
    clf.save_params(f_history=tmp_path / "history.json")
    copy = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(copy.predict_proba(X), clf.predict_proba(X))
