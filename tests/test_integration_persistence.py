"""Persistence: pickle, joblib and skorch's save_params / load_params round trips."""

import pickle

import joblib
import numpy as np
import pandas as pd
import pytest
import sklearn
import torch
from _shared import FAST, make_data, per_estimator
from sklearn.compose import make_column_transformer
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ldam_sklearn import LDAMDRWClassifier

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _pickle(obj, tmp_path):
    return pickle.loads(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))


def _joblib(obj, tmp_path):
    joblib.dump(obj, tmp_path / "model.joblib")
    return joblib.load(tmp_path / "model.joblib")


def _joblib_compressed(obj, tmp_path):
    joblib.dump(obj, tmp_path / "model.joblib.xz", compress=("xz", 3))
    return joblib.load(tmp_path / "model.joblib.xz")


ROUND_TRIPS = pytest.mark.parametrize(
    "round_trip", [_pickle, _joblib, _joblib_compressed], ids=["pickle", "joblib", "joblib-xz"]
)


@per_estimator
@ROUND_TRIPS
def test_fitted_estimator_round_trip(Estimator, round_trip, tmp_path):
    X, y = make_data()
    labels = np.array(["low", "mid", "high"])[y]
    clf = Estimator(**FAST).fit(X, labels)
    restored = round_trip(clf, tmp_path)

    assert restored is not clf and restored.module_ is not clf.module_
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(restored.predict(X), clf.predict(X))
    np.testing.assert_array_equal(restored.classes_, clf.classes_)
    np.testing.assert_array_equal(restored.class_counts_, clf.class_counts_)
    assert restored.get_params()["device"] == "auto"
    assert len(restored.history) == len(clf.history)

    # The optimizer state (momentum) travels too: training on continues alike.
    clf.partial_fit(X, labels)
    restored.partial_fit(X, labels)
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))


@per_estimator
def test_unfitted_estimator_round_trip(Estimator, tmp_path):
    X, y = make_data()
    clf = Estimator(**FAST)
    restored = _joblib(clf, tmp_path)
    np.testing.assert_array_equal(
        restored.fit(X, y).predict_proba(X), clf.fit(X, y).predict_proba(X)
    )


@per_estimator
def test_pipeline_over_dataframe_round_trip(Estimator, tmp_path):
    X, y = make_data()
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    df["kind"] = np.array(["a", "b", "c", "d"])[np.arange(len(df)) % 4]
    pipe = make_pipeline(
        make_column_transformer(
            (StandardScaler(), [f"f{i}" for i in range(X.shape[1])]),
            (OneHotEncoder(sparse_output=False), ["kind"]),
        ),
        Estimator(**FAST),
    ).set_output(transform="pandas")
    pipe.fit(df, y)
    restored = _joblib_compressed(pipe, tmp_path)
    np.testing.assert_array_equal(restored.predict_proba(df), pipe.predict_proba(df))
    assert restored[-1].feature_names_in_.tolist() == pipe[-1].feature_names_in_.tolist()


def test_sparse_text_pipeline_round_trip(tmp_path):
    rng = np.random.RandomState(0)
    words = np.char.add("w", rng.randint(0, 5000, size=(300, 20)).astype(str))
    y = rng.rand(300) < 0.2
    docs = [" ".join(row) + (" offer" if spam else "") for row, spam in zip(words, y, strict=True)]
    pipe = make_pipeline(
        HashingVectorizer(n_features=2**14), LDAMDRWClassifier(**FAST, optimizer=torch.optim.Adam)
    ).fit(docs, y)
    for round_trip in (_pickle, _joblib):
        restored = round_trip(pipe, tmp_path)
        np.testing.assert_array_equal(restored.predict_proba(docs), pipe.predict_proba(docs))


@per_estimator
def test_metadata_request_survives_pickling(Estimator):
    X, y = make_data()
    w = np.random.RandomState(0).uniform(0.2, 2.0, size=len(y))
    with sklearn.config_context(enable_metadata_routing=True):
        clf = _pickle(Estimator(**FAST).set_fit_request(sample_weight=True), None)
        routed = make_pipeline(clf).fit(X, y, sample_weight=w)
    direct = Estimator(**FAST).fit(X, y, sample_weight=w)
    np.testing.assert_array_equal(routed.predict_proba(X), direct.predict_proba(X))


def _save_all(clf, directory):
    files = {
        "f_params": directory / "params.pt",
        "f_optimizer": directory / "optimizer.pt",
        "f_criterion": directory / "criterion.pt",
        "f_history": directory / "history.json",
    }
    # Components registered besides module_ and optimizer_ (MW-Net's
    # weighting network and its optimizer) take skorch's f_<name> arguments.
    for name in (*clf._modules, *clf._optimizers):
        if name not in ("module", "optimizer"):
            files[f"f_{name}"] = directory / f"{name}.pt"
    clf.save_params(**files)
    return files


@per_estimator
def test_save_params_load_params_round_trip(Estimator, tmp_path):
    X, y = make_data()
    clf = Estimator(**FAST).fit(X, y)
    files = _save_all(clf, tmp_path)

    # skorch's recipe: an estimator of the same shape, then load_params.
    other = Estimator(**{**FAST, "random_state": 1}).fit(X, y)
    assert not np.array_equal(other.predict_proba(X), clf.predict_proba(X))
    other.load_params(**files)
    np.testing.assert_array_equal(other.predict_proba(X), clf.predict_proba(X))
    assert other.history[:, "train_loss"] == clf.history[:, "train_loss"]

    # Optimizer state and history were restored: training continues alike
    # (with the same seed for the shuffling of the new epochs).
    other.set_params(random_state=FAST["random_state"])
    first = len(clf.history)  # fewer than max_epochs for LDAM-DRW's packed members
    clf.partial_fit(X, y)
    other.partial_fit(X, y)
    np.testing.assert_array_equal(other.predict_proba(X), clf.predict_proba(X))
    assert len(other.history) == len(clf.history) == first + FAST["max_epochs"]


def test_load_params_into_a_fresh_estimator(tmp_path):
    # skorch's documented workflow, and what BaseNetClassifier's own error
    # message suggests: give the module's shape, initialize, load_params.
    X, y = make_data()
    clf = LDAMDRWClassifier(**FAST).fit(X, y)
    files = _save_all(clf, tmp_path)
    fresh = LDAMDRWClassifier(
        **FAST, module__n_features=X.shape[1], module__n_classes=3, classes=[0, 1, 2]
    )
    fresh.initialize()
    fresh.load_params(**files)
    np.testing.assert_array_equal(fresh.predict_proba(X), clf.predict_proba(X))


def test_load_params_restores_the_class_prior(tmp_path):
    X, y = make_data()
    clf = LDAMDRWClassifier(loss="logit_adjusted_posthoc", **FAST).fit(X, y)
    files = _save_all(clf, tmp_path)
    # Same shapes and labels, different class counts.
    keep = np.r_[np.flatnonzero(y == 0)[:40], np.flatnonzero(y != 0)]
    other = LDAMDRWClassifier(loss="logit_adjusted_posthoc", **FAST).fit(X[keep], y[keep])
    other.load_params(**files)
    np.testing.assert_array_equal(other.predict_proba(X), clf.predict_proba(X))
