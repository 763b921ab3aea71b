"""Choosing the post-hoc adjustment: its strength and the members' folds."""

import warnings

import numpy as np
import pytest

from ldam_sklearn.posthoc import TAU_SCORINGS, best_blend, best_posthoc_tau, member_folds


def test_best_posthoc_tau_maximises_balanced_accuracy_and_prefers_one_among_ties():
    counts = np.array([90, 10])
    # The minority row is found from tau = 0.2 on, the majority rows stay
    # right up to tau = 4: every tau in [0.2, 4] ties, and 1 is preferred.
    log_proba = np.log([[0.6, 0.4], [0.99999, 1e-5], [0.999999, 1e-6]])
    assert best_posthoc_tau(log_proba, np.array([1, 0, 0]), counts) == 1.0
    # A minority row needing a strong adjustment, tau > log(99) / log(9) =
    # 2.09, moves tau up to the first strength of the grid above it.
    log_proba = np.log([[0.99, 0.01], [0.9999999, 1e-7]])
    assert best_posthoc_tau(log_proba, np.array([1, 0]), counts) == 2.1
    assert best_posthoc_tau(log_proba, np.array([1, 0]), counts, step=0.25) == 2.25
    # No adjustment when the unadjusted argmax is already best alone: the
    # majority row turns at tau > log(51 / 49) / log(9) = 0.018.
    log_proba = np.log([[0.49, 0.51], [0.51, 0.49]])
    assert best_posthoc_tau(log_proba, np.array([1, 0]), counts) == 0.0


def test_best_posthoc_tau_gives_near_ties_in_balanced_accuracy_to_macro_f1():
    counts = np.array([90, 10])
    # Nine minority rows are found at any tau, the tenth from tau 2.1 on,
    # where 99 of 1,000 majority rows turn too: balanced accuracy 0.9505
    # against 0.95 below 2.1, a near tie, whose macro-F1 (0.17 for the
    # minority class against 0.95) decides for the weaker adjustment.
    p = np.r_[np.full(9, 0.6), 0.01, np.full(99, 0.01), np.full(901, 1e-9)]
    labels = np.r_[np.ones(10, int), np.zeros(1000, int)]
    log_proba = np.log(np.c_[1 - p, p])
    assert best_posthoc_tau(log_proba, labels, counts) == 1.0
    assert best_posthoc_tau(log_proba, labels, counts, near_tie=0.0) == 2.1
    # Without the near tie (20 rows turn, not 99), balanced accuracy decides.
    p[30:109] = 1e-9
    assert best_posthoc_tau(np.log(np.c_[1 - p, p]), labels, counts) == 2.1
    # Macro-F1 decides otherwise: the tenth minority row costs 20 false
    # alarms (minority F1 0.95 to 0.5), so every tau below 2.1 ties, and 1
    # is preferred.
    log_proba = np.log(np.c_[1 - p, p])
    assert best_posthoc_tau(log_proba, labels, counts, scoring="f1_macro") == 1.0


@pytest.mark.parametrize(
    "params, message",
    [
        ({"step": 0}, "step must be"),
        ({"near_tie": -0.1}, "near_tie must be"),
        ({"scoring": "accuracy"}, r"scoring='accuracy' is not valid; choose one of"),
    ],
)
def test_best_posthoc_tau_rejects_a_bad_grid_by_name(params, message):
    with pytest.raises(ValueError, match=message):
        best_posthoc_tau(np.zeros((2, 2)), np.array([0, 1]), np.array([5, 5]), **params)


def test_best_posthoc_tau_scores_the_classes_present_without_warnings():
    counts = np.array([80, 15, 5])
    # No held-out row of class 2; a strong adjustment predicts it for row 0.
    log_proba = np.log([[0.99, 0.001, 0.009], [0.9, 0.099, 0.001], [0.01, 0.98, 0.01]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tau = best_posthoc_tau(log_proba, np.array([0, 1, 1]), counts)
    # Row 1 needs tau > log(0.9 / 0.099) / log(80 / 15) = 1.32, row 0 turns
    # to class 2 at tau > log(0.99 / 0.009) / log(80 / 5) = 1.70.
    assert tau == 1.35


def test_member_folds_spread_each_class_and_leave_unsplittable_rows_to_every_member():
    y = np.r_[np.zeros(50, int), np.ones(7, int), [2, 2], [3]]
    weight = np.ones(len(y))
    weight[:5] = 0
    folds = member_folds(y, weight, 5, seed=0)
    # Rows of zero weight and the class of one row train every member.
    assert (folds[:5] == -1).all() and folds[-1] == -1
    assert ((folds >= 0) == (np.arange(len(y)) >= 5) & (y != 3)).all()
    # Stratified: 9 weighted class-0 rows per fold, the class of 7 in every fold
    # at least once, the class of two rows in two folds.
    assert (np.bincount(folds[(y == 0) & (folds >= 0)]) == 9).all()
    assert set(folds[y == 1]) == set(range(5))
    assert len(set(folds[y == 2])) == 2
    # Fewer than two classes of two rows: nothing is held out.
    assert (member_folds(np.r_[np.zeros(9, int), 1], None, 5, seed=0) == -1).all()
    # Fewer rows in every class than members: as many folds as the largest class has rows.
    assert sorted(member_folds(np.array([0, 0, 0, 1, 1]), None, 5, seed=0)) == [0, 0, 1, 1, 2]


def test_best_blend_with_the_network_alone_is_best_posthoc_tau():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    log_proba = np.log(rng.dirichlet(np.ones(3), 300))
    counts = np.array([200, 80, 20])
    trees = np.log(rng.dirichlet(np.ones(3), 300))
    for scoring in TAU_SCORINGS:
        tau = best_posthoc_tau(log_proba, labels, counts, scoring=scoring)
        assert best_blend(log_proba, trees, labels, counts, weights=(1.0,), scoring=scoring) == (
            1.0,
            tau,
        )


def test_best_blend_takes_the_trees_only_when_they_score_better():
    labels = np.r_[np.zeros(90, int), np.ones(10, int)]
    counts = np.array([90, 10])
    right = np.log(np.where(labels[:, None] == [0, 1], 0.9, 0.1))
    noise = np.log(np.random.default_rng(0).dirichlet(np.ones(2), 100))
    # Both right: the network alone wins the tie.
    assert best_blend(right, right, labels, counts)[0] == 1.0
    assert best_blend(right, noise, labels, counts)[0] == 1.0
    weight, _ = best_blend(noise, right, labels, counts)
    assert weight < 1.0
    blend = weight * noise + (1 - weight) * right
    assert best_posthoc_tau(blend, labels, counts) >= 0.0
    assert (np.argmax(blend, axis=1) == labels).mean() > (np.argmax(noise, axis=1) == labels).mean()


@pytest.mark.parametrize(
    "params, message",
    [
        ({"step": 0}, "step must be"),
        ({"scoring": "roc_auc"}, r"scoring='roc_auc' is not valid; choose one of"),
    ],
)
def test_best_blend_rejects_a_bad_grid_by_name(params, message):
    log_proba = np.zeros((2, 2))
    with pytest.raises(ValueError, match=message):
        best_blend(log_proba, log_proba, np.array([0, 1]), np.array([5, 5]), **params)
