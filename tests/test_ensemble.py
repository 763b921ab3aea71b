import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from _shared import make_data
from imblearn.over_sampling import RandomOverSampler
from imblearn.pipeline import make_pipeline as make_imb_pipeline
from scipy.special import softmax
from sklearn.datasets import make_classification
from sklearn.dummy import DummyClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from ldam_sklearn import CrossFitEnsembleClassifier, LDAMDRWClassifier
from ldam_sklearn.callbacks import warn_single_class
from ldam_sklearn.posthoc import best_posthoc_tau


class RowRecorder(LogisticRegression):
    """Logistic regression that keeps the ids (last column) of the rows it was fitted on."""

    def fit(self, X, y, sample_weight=None):
        self.rows_ = X[:, -1].astype(int)
        return super().fit(X[:, :-1], y, sample_weight=sample_weight)

    def predict_proba(self, X):
        return super().predict_proba(X[:, :-1])


def _with_ids(X):
    return np.column_stack([X, np.arange(len(X))])


@pytest.mark.parametrize("scoring", ["balanced_accuracy", "f1_macro"])
def test_each_row_is_held_out_by_one_member_and_tau_is_chosen_on_those_rows(scoring):
    X, y = make_data(300, weights=(0.8, 0.15, 0.05))
    X = _with_ids(X)
    clf = CrossFitEnsembleClassifier(
        RowRecorder(), n_members=4, random_state=0, tau_scoring=scoring
    ).fit(X, y)
    trained_on = np.zeros(len(y), int)
    log_proba = np.zeros((len(y), 3))
    for member in clf.estimators_:
        trained_on[member.rows_] += 1
        held = np.setdiff1d(np.arange(len(y)), member.rows_)
        log_proba[held] = np.log(member.predict_proba(X[held]))
    assert (trained_on == 3).all()
    counts = np.bincount(y)
    np.testing.assert_array_equal(clf.class_counts_, counts)
    assert clf.posthoc_tau_ == best_posthoc_tau(log_proba, y, counts, scoring=scoring)
    # On these rows macro-F1 asks for a weaker adjustment than balanced accuracy.
    assert clf.posthoc_tau_ == {"balanced_accuracy": 0.6, "f1_macro": 0.1}[scoring]


def test_rows_of_small_classes_are_spread_over_the_folds_and_single_rows_go_everywhere():
    X, y = make_data(200, weights=(0.8, 0.18, 0.02))
    rare = np.flatnonzero(y == 2)[:3]
    keep = np.r_[np.flatnonzero(y != 2), rare]
    X, y = _with_ids(X[keep]), y[keep]
    y[0] = 3  # a class of a single row
    X[:, -1] = np.arange(len(y))
    clf = CrossFitEnsembleClassifier(RowRecorder(), n_members=5, random_state=0).fit(X, y)
    rare_rows = np.flatnonzero(y == 2)
    held_by = np.zeros(len(y), int)
    log_proba = np.zeros((len(y), 4))
    for member in clf.estimators_:
        np.testing.assert_array_equal(member.classes_, [0, 1, 2, 3])
        assert 0 in member.rows_ and len(set(rare_rows) & set(member.rows_)) >= 2
        held = np.setdiff1d(np.arange(len(y)), member.rows_)
        held_by[held] += 1
        log_proba[held] = np.log(member.predict_proba(X[held]))
    # Each of the 3 rows of the small class is held out by one member.
    assert held_by[0] == 0 and (held_by[1:] == 1).all()
    scored = np.arange(1, len(y))
    expected = best_posthoc_tau(log_proba[scored], y[scored], np.bincount(y))
    assert clf.posthoc_tau_ == expected


class WeightRecorder(RowRecorder):
    def fit(self, X, y, sample_weight=None):
        self.positive_ = np.bincount(y[sample_weight > 0], minlength=2)
        return super().fit(X, y, sample_weight=sample_weight)


def test_zero_weight_rows_go_to_every_member_and_each_keeps_weight_in_every_class():
    X, y = make_data(60, weights=(0.8, 0.2))
    X = _with_ids(X)
    sample_weight = np.ones(len(y))
    minority = np.flatnonzero(y == 1)
    sample_weight[minority[2:]] = 0.0  # two minority rows of weight, the rest none
    clf = CrossFitEnsembleClassifier(WeightRecorder(), n_members=5, random_state=0)
    clf.fit(X, y, sample_weight=sample_weight)
    for member in clf.estimators_:
        assert set(minority[2:]) <= set(member.rows_)
        assert member.positive_[1] >= 1


def test_without_two_splittable_classes_every_member_trains_on_all_rows():
    X, y = make_data(60, weights=(0.95, 0.05))
    y[:] = 0
    y[0] = 1  # the only other class has a single row
    X = _with_ids(X)
    # The members predict the majority for all rows, and the ensemble says so.
    with pytest.warns(ConvergenceWarning, match="predicted class 0 for every training row"):
        clf = CrossFitEnsembleClassifier(RowRecorder(), n_members=5, random_state=0).fit(X, y)
    assert clf.posthoc_tau_ == 0.0
    assert all(len(member.rows_) == len(y) for member in clf.estimators_)


def test_choose_tau_false_bags_members_on_all_rows_without_adjustment():
    X, y = make_data(200)
    X = _with_ids(X)
    clf = CrossFitEnsembleClassifier(RowRecorder(), n_members=3, choose_tau=False).fit(X, y)
    assert clf.posthoc_tau_ == 0.0
    assert all(len(member.rows_) == len(y) for member in clf.estimators_)


def test_predict_proba_is_the_adjusted_mean_of_the_members_log_probabilities():
    X, y = make_data(300, weights=(0.85, 0.15))
    clf = CrossFitEnsembleClassifier(LogisticRegression(C=0.01), n_members=3, random_state=0)
    clf.fit(X, y)
    mean = np.mean([np.log(m.predict_proba(X)) for m in clf.estimators_], axis=0)
    adjusted = mean - clf.posthoc_tau_ * np.log(np.bincount(y) / len(y))
    np.testing.assert_allclose(clf.predict_proba(X), softmax(adjusted, axis=1), rtol=1e-10)
    np.testing.assert_array_equal(clf.predict(X), adjusted.argmax(axis=1))


def test_string_labels_and_sample_weight_reach_the_members():
    X, y = make_data(150)
    labels = np.array(["cat", "dog", "eel"])[y]
    weights = np.where(y == 2, 3.0, 1.0)
    X = _with_ids(X)
    clf = CrossFitEnsembleClassifier(RowRecorder(), n_members=3, random_state=0)
    clf.fit(X, labels, sample_weight=weights)
    assert set(clf.predict(X)) <= set(labels)
    np.testing.assert_array_equal(clf.classes_, ["cat", "dog", "eel"])


def test_ldam_members_leave_the_choice_of_tau_to_the_ensemble_and_are_one_network():
    X, y = make_data(300, weights=(0.85, 0.15))
    member = LDAMDRWClassifier(max_epochs=5, module__hidden_layer_sizes=(16,))
    clf = CrossFitEnsembleClassifier(member, n_members=2, random_state=0).fit(X, y)
    assert member.choose_tau and member.n_members == "auto"
    assert all(not m.choose_tau and m.posthoc_tau_ == 0.0 for m in clf.estimators_)
    assert all(m.n_members_ == 1 for m in clf.estimators_)
    # A number of packed networks the user gives is kept.
    packed = LDAMDRWClassifier(max_epochs=5, module__hidden_layer_sizes=(16,), n_members=3)
    clf = CrossFitEnsembleClassifier(packed, n_members=2, random_state=0).fit(X, y)
    assert all(m.n_members_ == 3 for m in clf.estimators_)
    seeds = {m.random_state for m in clf.estimators_}
    assert len(seeds) == 2


@pytest.mark.parametrize(
    "n_features, sparse, recipe",
    [(16, False, "paper"), (17, False, "tabular"), (8, True, "tabular")],
)
def test_default_members_train_40_epochs_with_the_recipe_of_the_rows_per_feature(
    n_features, sparse, recipe
):
    # 200 rows: 12.5 per feature (paper's recipe) or 11.8 per feature (tabular);
    # sparse input keeps the tabular recipe and its rules for sparse input.
    X, y = make_classification(200, n_features=n_features, weights=[0.8], random_state=0)
    X = sp.csr_matrix(X) if sparse else X
    clf = CrossFitEnsembleClassifier(n_members=2, random_state=0).fit(X, y)
    for member in clf.estimators_:
        assert isinstance(member, LDAMDRWClassifier)
        assert member.recipe == recipe and len(member.history_) == 40


def test_sparse_input_in_a_pipeline():
    rng = np.random.RandomState(0)
    y = (rng.rand(200) < 0.2).astype(int)
    cue = sp.csr_matrix(3.0 * y[:, None])
    counts = sp.hstack([cue, sp.random(200, 50, density=0.1, random_state=0)], format="csr")
    member = LDAMDRWClassifier(max_epochs=5, module__hidden_layer_sizes=(16,))
    pipe = make_pipeline(
        TfidfTransformer(), CrossFitEnsembleClassifier(member, n_members=2, random_state=0)
    )
    pipe.fit(counts, y)
    assert (pipe.predict(counts) == y).mean() > 0.9


@pytest.mark.parametrize(
    "params, message",
    [
        ({"n_members": 1}, "n_members must be an integer of at least 2, got 1"),
        ({"n_members": 2.5}, "n_members must be an integer of at least 2"),
        ({"choose_tau": "yes"}, "choose_tau must be True or False, got 'yes'"),
        ({"tau_scoring": "f1"}, r"tau_scoring='f1' is not valid; choose one of"),
        ({"estimator": LinearSVC()}, "estimator LinearSVC has no predict_proba"),
    ],
)
def test_bad_parameters_are_named(params, message):
    X, y = make_data(60)
    with pytest.raises(ValueError, match=message):
        CrossFitEnsembleClassifier(**params).fit(X, y)


def test_works_behind_a_scaler_in_a_pipeline_and_scores():
    X, y = make_data(200)
    pipe = make_pipeline(
        StandardScaler(), CrossFitEnsembleClassifier(LogisticRegression(), random_state=0)
    )
    assert pipe.fit(X, y).score(X, y) > 0.8


def test_grid_search_pickle_and_imblearn_pipeline():
    X, y = make_data(240)
    member = LDAMDRWClassifier(max_epochs=3, module__hidden_layer_sizes=(16,))
    pipe = make_imb_pipeline(
        RandomOverSampler(random_state=0),
        CrossFitEnsembleClassifier(member, n_members=2, random_state=0),
    )
    grid = {"crossfitensembleclassifier__choose_tau": [True, False]}
    search = GridSearchCV(pipe, grid, cv=2, scoring="balanced_accuracy", error_score="raise")
    search.fit(X, y)
    restored = pickle.loads(pickle.dumps(search.best_estimator_))
    np.testing.assert_allclose(
        restored.predict_proba(X), search.best_estimator_.predict_proba(X), rtol=1e-6
    )


class WarnsSingleClass(LogisticRegression):
    """Logistic regression that warns, as a collapsed network does, that it predicts one class."""

    def fit(self, X, y, sample_weight=None):
        super().fit(X, y, sample_weight=sample_weight)
        warn_single_class(self, 0, "training loss 9.9")
        return self


def test_members_single_class_warnings_give_way_to_the_ensembles_own_check():
    X, y = make_data(200, weights=(0.8, 0.2))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = CrossFitEnsembleClassifier(WarnsSingleClass(), n_members=3, random_state=0)
        assert len(np.unique(clf.fit(X, y).predict(X))) == 2
    constant = CrossFitEnsembleClassifier(
        DummyClassifier(strategy="prior"), n_members=3, choose_tau=False
    )
    with pytest.warns(ConvergenceWarning) as caught:
        constant.fit(X, y)
    assert len(caught) == 1
    assert str(caught[0].message).startswith(
        "CrossFitEnsembleClassifier predicted class 0 for every training row (post-hoc tau 0)"
    )


class DropsRarestClass(LogisticRegression):
    def fit(self, X, y, sample_weight=None):
        keep = y != np.argmin(np.bincount(y))
        return super().fit(X[keep], y[keep])


def test_a_member_that_drops_a_class_is_named():
    X, y = make_data(200)
    clf = CrossFitEnsembleClassifier(DropsRarestClass(), n_members=3, random_state=0)
    with pytest.raises(ValueError, match=r"a member learned the classes \[0, 1\] instead of"):
        clf.fit(X, y)


def test_members_fitted_in_parallel_processes_give_the_same_ensemble():
    X, y = make_data(200, weights=(0.8, 0.2))
    member = LDAMDRWClassifier(max_epochs=3, module__hidden_layer_sizes=(8,))
    serial = CrossFitEnsembleClassifier(member, n_members=3, random_state=0).fit(X, y)
    parallel = CrossFitEnsembleClassifier(member, n_members=3, random_state=0, n_jobs=2)
    parallel.fit(X, y)
    assert parallel.posthoc_tau_ == serial.posthoc_tau_
    np.testing.assert_allclose(parallel.predict_proba(X), serial.predict_proba(X), rtol=1e-6)
