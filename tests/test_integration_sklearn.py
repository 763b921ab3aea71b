"""Integration with scikit-learn: pipelines, searches, cloning, calibration, routing.

Every test runs real scikit-learn objects around every public estimator of
the package (``ldam_sklearn.utils.discovery.all_estimators``), so a new
estimator is covered as soon as it is exported. Fits are kept tiny (3 epochs,
one hidden layer of 16 units, 300 rows) so that the module runs in seconds.
"""

import os
from functools import partial

import joblib
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import sklearn
import torch
from _shared import FAST, make_data, per_estimator
from scipy.stats import loguniform, uniform
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.exceptions import NotFittedError, UnsetMetadataPassedError
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import get_scorer
from sklearn.model_selection import (
    GridSearchCV,
    RandomizedSearchCV,
    StratifiedKFold,
    cross_validate,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from skorch.callbacks import Callback

from ldam_sklearn import LDAMDRWClassifier
from ldam_sklearn.data import batch_starts
from ldam_sklearn.losses import CrossEntropyLoss
from ldam_sklearn.modules import MLP

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def make_frame(n_samples=300, random_state=0):
    """A DataFrame with float, integer, string and categorical columns."""
    X, y = make_data(n_samples, random_state)
    rng = np.random.RandomState(random_state)
    df = pd.DataFrame(X[:, :5], columns=[f"num{i}" for i in range(5)])
    df["count"] = rng.poisson(3, size=n_samples)
    # The label leaks into the categorical columns half of the time, so that
    # the encoded columns matter.
    df["color"] = np.where(rng.rand(n_samples) < 0.5, np.array(["red", "green", "blue"])[y], "red")
    df["size"] = pd.Categorical(rng.choice(["S", "M", "L", "XL"], size=n_samples))
    return df, np.array(["common", "medium", "rare"])[y]


class WorkerInfo(Callback):
    """Record the process id and torch's intra-op thread count in the history."""

    def on_epoch_end(self, net, **kwargs):
        net.history.record("pid", os.getpid())
        net.history.record("torch_threads", torch.get_num_threads())


# -- 1. pipelines ----------------------------------------------------------------


@per_estimator
def test_pipeline_with_standard_scaler(Estimator):
    X, y = make_data()
    labels = np.array(["a", "b", "c"])[y]
    pipe = make_pipeline(StandardScaler(), Estimator(**FAST)).fit(X, labels)

    assert pipe.classes_.tolist() == ["a", "b", "c"]
    proba = pipe.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert 0.0 <= pipe.score(X, labels) <= 1.0
    # The pipeline hands the estimator the scaled data, nothing else.
    direct = Estimator(**FAST).fit(StandardScaler().fit_transform(X), labels)
    np.testing.assert_array_equal(proba, direct.predict_proba(StandardScaler().fit(X).transform(X)))
    np.testing.assert_array_equal(pipe.predict(X), direct.classes_[proba.argmax(axis=1)])


@per_estimator
@pytest.mark.parametrize("output", ["default", "sparse", "pandas"])
def test_column_transformer_over_dataframe(Estimator, output):
    df, y = make_frame()
    numeric = ["num0", "num1", "num2", "num3", "num4", "count"]
    categorical = ["color", "size"]
    encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=output == "sparse")
    transformer = ColumnTransformer(
        [("num", StandardScaler(), numeric), ("cat", encoder, categorical)],
        sparse_threshold=1.0 if output == "sparse" else 0.0,
    )
    pipe = make_pipeline(transformer, Estimator(**FAST))
    if output == "pandas":
        pipe.set_output(transform="pandas")
    pipe.fit(df, y)

    assert pipe.feature_names_in_.tolist() == df.columns.tolist()
    assert pipe.n_features_in_ == df.shape[1]
    clf = pipe[-1]
    out_names = pipe[0].get_feature_names_out()
    assert clf.n_features_in_ == len(out_names) == len(numeric) + 3 + 4
    assert clf.module_.body[0].in_features == clf.n_features_in_
    if output == "pandas":
        # The estimator keeps the names of the columns it was fitted on ...
        assert clf.feature_names_in_.tolist() == out_names.tolist()
        # ... and rejects a frame whose columns do not match them.
        Xt = pipe[0].transform(df)
        with pytest.raises(ValueError, match="feature names"):
            clf.predict(Xt.rename(columns={out_names[0]: "renamed"}))
    else:
        assert not hasattr(clf, "feature_names_in_")
        assert sp.issparse(pipe[0].transform(df)) == (output == "sparse")

    # Unseen categories at predict time are the encoder's business.
    new = df.iloc[:20].copy()
    new["color"] = "purple"
    assert set(pipe.predict(new)) <= set(pipe.classes_)
    np.testing.assert_array_equal(pipe.classes_, ["common", "medium", "rare"])


# -- 2. model selection, clone, calibration ----------------------------------------


@per_estimator
def test_grid_search_in_processes_matches_sequential(Estimator):
    X, y = make_data()
    grid = {"lr": [0.02, 0.2], "module__hidden_layer_sizes": [(4,), (16,)]}
    common = {"scoring": "balanced_accuracy", "cv": 2, "error_score": "raise"}
    parallel = GridSearchCV(Estimator(**FAST), grid, n_jobs=2, **common).fit(X, y)
    sequential = GridSearchCV(Estimator(**FAST), grid, n_jobs=1, **common).fit(X, y)

    scores = parallel.cv_results_["mean_test_score"]
    assert np.all((scores >= 0) & (scores <= 1))
    # The parameters reach the network: different candidates score differently.
    assert len(np.unique(scores)) > 1
    # Seeded fits are deterministic, in worker processes as in this one.
    np.testing.assert_array_equal(scores, sequential.cv_results_["mean_test_score"])
    assert parallel.best_params_ == sequential.best_params_

    best = parallel.best_estimator_
    width = parallel.best_params_["module__hidden_layer_sizes"][0]
    # The first layer holds every packed member's (LDAM-DRW's default on dense data).
    assert best.module_.body[0].out_features == width * getattr(best, "n_members_", 1)
    np.testing.assert_array_equal(
        best.predict_proba(X),
        Estimator(**{**FAST, **parallel.best_params_}).fit(X, y).predict_proba(X),
    )


@per_estimator
def test_randomized_search_over_optimizer_and_module_params(Estimator):
    X, y = make_data()
    distributions = {
        "optimizer__weight_decay": loguniform(1e-5, 1e-2),
        "optimizer__momentum": uniform(0.5, 0.45),
        "module__dropout": [0.0, 0.2],
    }
    search = RandomizedSearchCV(
        Estimator(**FAST),
        distributions,
        n_iter=3,
        scoring="balanced_accuracy",
        cv=3,
        n_jobs=2,
        random_state=0,
        error_score="raise",
    ).fit(X, y)

    assert len(search.cv_results_["params"]) == 3
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best, params = search.best_estimator_, search.best_params_
    group = best.optimizer_.param_groups[0]
    assert group["weight_decay"] == params["optimizer__weight_decay"]
    assert group["momentum"] == params["optimizer__momentum"]
    has_dropout = any(isinstance(m, torch.nn.Dropout) for m in best.module_.modules())
    assert has_dropout == (params["module__dropout"] > 0)


@per_estimator
def test_cross_validate_in_processes_without_thread_oversubscription(Estimator):
    X, y = make_data()
    clf = Estimator(**FAST, callbacks=[("worker_info", WorkerInfo())])
    result = cross_validate(
        clf,
        X,
        y,
        cv=3,
        n_jobs=2,
        scoring="balanced_accuracy",
        return_train_score=True,
        return_estimator=True,
    )
    assert result["test_score"].shape == (3,)
    # Better than chance (1/3) on the data it was trained on.
    assert result["train_score"].mean() > 0.5
    allowed = max(1, joblib.cpu_count() // 2)
    for fitted in result["estimator"]:
        # Fitted in a worker process, with torch limited to its share of cores.
        assert fitted.history[-1, "pid"] != os.getpid()
        assert fitted.history[-1, "torch_threads"] <= allowed


def _comparable(params):
    # clone deep-copies non-estimator parameters; a functools.partial (the
    # default optimizer) compares by identity, so compare what it holds.
    return {
        key: (value.func, value.args, value.keywords) if isinstance(value, partial) else value
        for key, value in params.items()
    }


@per_estimator
def test_clone_unfitted_and_fitted(Estimator):
    X, y = make_data()
    unfitted = Estimator(**FAST, device="auto")
    copy = clone(unfitted)
    assert copy is not unfitted
    assert _comparable(copy.get_params(deep=False)) == _comparable(unfitted.get_params(deep=False))

    fitted = Estimator(**FAST).fit(X, y)
    before = fitted.predict_proba(X)
    refit = clone(fitted)
    assert refit.get_params()["device"] == "auto"
    assert refit.get_params()["module__hidden_layer_sizes"] == (16,)
    for attribute in ("module_", "optimizer_", "classes_inferred_", "class_counts_"):
        assert not hasattr(refit, attribute)
    with pytest.raises(NotFittedError):
        refit.predict(X)
    refit.fit(X, y)
    # Same seed, same fit; and fitting the clone leaves the original alone.
    assert refit.module_ is not fitted.module_
    np.testing.assert_array_equal(refit.predict_proba(X), before)
    np.testing.assert_array_equal(fitted.predict_proba(X), before)
    refit.set_params(module__hidden_layer_sizes=(8,))
    assert fitted.module_.body[0].out_features == 16 * getattr(fitted, "n_members_", 1)


@per_estimator
def test_calibrated_classifier_cv(Estimator):
    X, y = make_data()
    labels = np.array(["a", "b", "c"])[y]
    calibrated = CalibratedClassifierCV(Estimator(**FAST), cv=3, method="sigmoid").fit(X, labels)
    assert calibrated.classes_.tolist() == ["a", "b", "c"]
    assert len(calibrated.calibrated_classifiers_) == 3
    inner = [c.estimator for c in calibrated.calibrated_classifiers_]
    assert all(isinstance(est, Estimator) for est in inner)
    assert len({id(est.module_) for est in inner}) == 3
    proba = calibrated.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(calibrated.predict(X)) <= {"a", "b", "c"}

    # Calibrating an already fitted model on held-out data leaves it as it was.
    fitted = Estimator(**FAST).fit(X[:200], labels[:200])
    before = fitted.predict_proba(X)
    frozen = CalibratedClassifierCV(FrozenEstimator(fitted), method="isotonic")
    frozen.fit(X[200:], labels[200:])
    np.testing.assert_array_equal(fitted.predict_proba(X), before)
    assert frozen.predict_proba(X).shape == (len(X), 3)


# -- 4. metadata routing: sample_weight ------------------------------------------------


@pytest.fixture
def routing():
    with sklearn.config_context(enable_metadata_routing=True):
        yield


def _weights(y, random_state=0):
    # Distinct per-row weights, so that any mix-up of rows changes the fit.
    return np.random.RandomState(random_state).uniform(0.2, 2.0, size=len(y))


def _scaled_pipeline(clf):
    scaler = StandardScaler()
    if sklearn.get_config()["enable_metadata_routing"]:
        scaler.set_fit_request(sample_weight=False)
    return Pipeline([("scale", scaler), ("clf", clf)])


@per_estimator
def test_routed_sample_weight_reaches_the_loss(Estimator, routing):
    X, y = make_data()
    w = _weights(y)
    pipe = _scaled_pipeline(Estimator(**FAST).set_fit_request(sample_weight=True))
    pipe.fit(X, y, sample_weight=w)

    Xs = StandardScaler().fit_transform(X)
    with sklearn.config_context(enable_metadata_routing=False):
        # Without routing, a direct fit with the same weights is the same fit.
        direct = Estimator(**FAST).fit(Xs, y, sample_weight=w)
        unweighted = Estimator(**FAST).fit(Xs, y)
    np.testing.assert_array_equal(pipe.predict_proba(X), direct.predict_proba(Xs))
    assert not np.array_equal(direct.predict_proba(Xs), unweighted.predict_proba(Xs))

    # Zero weight on the rarest class: the network is never pulled towards it.
    zero = np.where(y == 2, 0.0, 1.0)
    dropped = clone(pipe).fit(X, y, sample_weight=zero)
    plain = clone(pipe).fit(X, y)
    assert dropped.predict_proba(X)[:, 2].mean() < plain.predict_proba(X)[:, 2].mean()


@per_estimator
def test_routing_needs_an_explicit_request(Estimator, routing):
    X, y = make_data()
    w = np.where(y == 2, 0.0, 1.0)
    # The estimator declares sample_weight as metadata of fit ...
    with pytest.raises(UnsetMetadataPassedError, match="sample_weight"):
        _scaled_pipeline(Estimator(**FAST)).fit(X, y, sample_weight=w)
    # ... and a False request leaves them out (here only the scaler takes them).
    ignored = Pipeline(
        [
            ("scale", StandardScaler().set_fit_request(sample_weight=True)),
            ("clf", Estimator(**FAST).set_fit_request(sample_weight=False)),
        ]
    ).fit(X, y, sample_weight=w)
    Xs = StandardScaler().fit(X, sample_weight=w).transform(X)
    plain = Estimator(**FAST).fit(Xs, y)
    np.testing.assert_array_equal(ignored.predict_proba(X), plain.predict_proba(Xs))


def _check_folds_got_their_weights(search, make_estimator, X, y, cv, fit_params, score_weight=None):
    """Refit each fold by hand with the fold's slice of every fit parameter."""
    nll = get_scorer("neg_log_loss")
    for i, (train, test) in enumerate(cv):
        fold = make_estimator().fit(
            X[train], y[train], **{key: value[train] for key, value in fit_params.items()}
        )
        score_params = {} if score_weight is None else {"sample_weight": score_weight[test]}
        assert search.cv_results_[f"split{i}_test_nll"][0] == pytest.approx(
            nll(fold, X[test], y[test], **score_params), rel=1e-9, abs=1e-12
        )


@per_estimator
def test_grid_search_splits_routed_sample_weight_by_fold(Estimator, routing):
    X, y = make_data()
    w = _weights(y)
    cv = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))
    scoring = {
        "bacc": get_scorer("balanced_accuracy").set_score_request(sample_weight=False),
        "nll": get_scorer("neg_log_loss").set_score_request(sample_weight=False),
    }

    def make():
        return _scaled_pipeline(Estimator(**FAST).set_fit_request(sample_weight=True))

    search = GridSearchCV(
        make(), {"clf__lr": [0.1]}, scoring=scoring, refit="bacc", cv=cv, error_score="raise"
    ).fit(X, y, sample_weight=w)
    _check_folds_got_their_weights(search, make, X, y, cv, {"sample_weight": w})
    np.testing.assert_array_equal(
        search.best_estimator_.predict_proba(X), make().fit(X, y, sample_weight=w).predict_proba(X)
    )


@per_estimator
def test_sample_weight_without_routing(Estimator):
    assert not sklearn.get_config()["enable_metadata_routing"]
    X, y = make_data()
    w = _weights(y)
    cv = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))

    # Pipeline's step__param syntax.
    pipe = _scaled_pipeline(Estimator(**FAST)).fit(X, y, clf__sample_weight=w)
    Xs = StandardScaler().fit_transform(X)
    direct = Estimator(**FAST).fit(Xs, y, sample_weight=w)
    np.testing.assert_array_equal(pipe.predict_proba(X), direct.predict_proba(Xs))

    # GridSearchCV's legacy fit params are sliced by fold as well (and, since
    # scikit-learn 1.9, sample_weight is also handed to the scorers).
    search = GridSearchCV(
        Estimator(**FAST),
        {"lr": [0.1]},
        scoring={"bacc": "balanced_accuracy", "nll": "neg_log_loss"},
        refit="bacc",
        cv=cv,
        error_score="raise",
    ).fit(X, y, sample_weight=w)
    _check_folds_got_their_weights(
        search, lambda: Estimator(**FAST), X, y, cv, {"sample_weight": w}, score_weight=w
    )


class RecordingMLP(MLP):
    """The default MLP, remembering feature 0 of every training batch."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen = []

    def forward(self, X):
        if self.training:
            self.seen.append(X[:, 0].detach().cpu().clone())
        return super().forward(X)


class RecordingLoss(CrossEntropyLoss):
    """Cross-entropy remembering the sample weights of every batch."""

    def __init__(self, class_counts, **kwargs):
        super().__init__(class_counts, **kwargs)
        self.seen = []

    def forward(self, input, target, sample_weight=None):
        self.seen.append(None if sample_weight is None else sample_weight.detach().cpu().clone())
        return super().forward(input, target, sample_weight=sample_weight)


@pytest.mark.parametrize("schedule", ["drw", "resample"])
def test_sample_weight_is_batched_with_its_rows(schedule, routing):
    X, y = make_data()
    w = _weights(y).astype(np.float32)
    X = X.astype(np.float32)
    X[:, 0] = w  # each row carries its own weight as a feature
    clf = LDAMDRWClassifier(
        module=RecordingMLP,
        module__n_features=X.shape[1],
        module__n_classes=3,
        criterion=RecordingLoss,
        schedule=schedule,
        # One run on the rows as they are: the default recipe fits a
        # hold-out first and trains on mixed rows.
        recipe="paper",
        **FAST,
    ).set_fit_request(sample_weight=True)
    make_pipeline(clf).fit(X, y, sample_weight=w)

    rows, weights = clf.module_.seen, clf.criterion_.seen
    assert len(rows) == len(weights) == 3 * len(batch_starts(len(X), FAST["batch_size"]))
    for batch_rows, batch_weights in zip(rows, weights, strict=True):
        np.testing.assert_array_equal(batch_weights.numpy(), batch_rows.numpy())
    order = torch.cat(rows).numpy()
    assert not np.array_equal(order[: len(X)], w)  # batches were shuffled
    if schedule == "drw":
        # Every epoch is a permutation: each row and its weight seen once.
        np.testing.assert_array_equal(np.sort(order[: len(X)]), np.sort(w))


# -- 4. metadata routing: L2RWClassifier's meta_mask ------------------------------------


def _meta_mask(y, per_class=8, random_state=0):
    rng = np.random.RandomState(random_state)
    mask = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        mask[rng.choice(np.flatnonzero(y == label), per_class, replace=False)] = True
    return mask


def test_l2rw_meta_mask_routed_through_pipeline(routing):
    l2rw = pytest.importorskip("ldam_sklearn.l2rw")
    X, y = make_data()
    mask = _meta_mask(y)
    clf = l2rw.L2RWClassifier(**FAST).set_fit_request(meta_mask=True)
    pipe = _scaled_pipeline(clf).fit(X, y, meta_mask=mask)

    Xs = StandardScaler().fit_transform(X)
    direct = l2rw.L2RWClassifier(**FAST).fit(Xs, y, meta_mask=mask)
    np.testing.assert_array_equal(pipe.predict_proba(X), direct.predict_proba(Xs))
    other = l2rw.L2RWClassifier(**FAST).fit(Xs, y, meta_mask=_meta_mask(y, random_state=1))
    assert not np.array_equal(direct.predict_proba(Xs), other.predict_proba(Xs))


def test_l2rw_meta_mask_split_by_grid_search_folds(routing):
    l2rw = pytest.importorskip("ldam_sklearn.l2rw")
    X, y = make_data()
    mask = _meta_mask(y, per_class=12)
    w = _weights(y)
    cv = list(StratifiedKFold(3, shuffle=True, random_state=0).split(X, y))

    def make():
        clf = l2rw.L2RWClassifier(**FAST).set_fit_request(meta_mask=True, sample_weight=True)
        return _scaled_pipeline(clf)

    search = GridSearchCV(
        make(),
        {"clf__lr": [0.1]},
        scoring={
            "bacc": get_scorer("balanced_accuracy").set_score_request(sample_weight=False),
            "nll": get_scorer("neg_log_loss").set_score_request(sample_weight=False),
        },
        refit="bacc",
        cv=cv,
        error_score="raise",
    ).fit(X, y, meta_mask=mask, sample_weight=w)
    _check_folds_got_their_weights(search, make, X, y, cv, {"meta_mask": mask, "sample_weight": w})
