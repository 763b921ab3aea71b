"""Integration with imbalanced-learn: samplers in front of every estimator, reports."""

import numpy as np
import pandas as pd
import pytest
from _shared import FAST, per_estimator
from imblearn.metrics import classification_report_imbalanced
from imblearn.over_sampling import SMOTE, RandomOverSampler
from imblearn.pipeline import make_pipeline
from imblearn.under_sampling import RandomUnderSampler
from sklearn.datasets import make_classification
from sklearn.metrics import recall_score
from sklearn.model_selection import GridSearchCV
from sklearn.preprocessing import StandardScaler

from ldam_sklearn.utils.discovery import all_estimators

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LABELS = np.array(["common", "medium", "rare"])


def make_data(n_samples=400, random_state=0):
    X, y = make_classification(
        n_samples=n_samples,
        n_features=8,
        n_informative=5,
        n_redundant=0,
        n_classes=3,
        weights=[0.75, 0.18, 0.07],
        class_sep=2.0,
        random_state=random_state,
    )
    return X, LABELS[y]


def _expected_counts(sampler, y):
    counts = np.unique(y, return_counts=True)[1]
    if isinstance(sampler, RandomUnderSampler):
        return np.full(len(counts), counts.min())
    return np.full(len(counts), counts.max())


@per_estimator
@pytest.mark.parametrize(
    "Sampler", [RandomOverSampler, SMOTE, RandomUnderSampler], ids=lambda s: s.__name__
)
def test_sampler_before_estimator(Estimator, Sampler):
    X, y = make_data()
    sampler = Sampler(random_state=0)
    pipe = make_pipeline(StandardScaler(), sampler, Estimator(**FAST)).fit(X, y)
    clf = pipe[-1]

    # The estimator was trained on the resampled, balanced data ...
    np.testing.assert_array_equal(clf.class_counts_, _expected_counts(sampler, y))
    assert clf.classes_.tolist() == LABELS.tolist()
    # ... and predicts every row of the original data (samplers only act in fit).
    y_pred = pipe.predict(X)
    assert y_pred.shape == y.shape
    assert set(y_pred) <= set(LABELS)
    assert pipe.predict_proba(X).shape == (len(X), 3)

    report = classification_report_imbalanced(y, y_pred, output_dict=True, zero_division=0)
    for label in LABELS:
        assert {"pre", "rec", "spe", "f1", "geo", "iba", "sup"} <= set(report[label])
    assert sum(report[label]["sup"] for label in LABELS) == len(y)
    assert report["rare"]["rec"] == recall_score(y, y_pred, labels=["rare"], average="macro")
    text = classification_report_imbalanced(y, y_pred, zero_division=0)
    assert "avg / total" in text and "rare" in text


@per_estimator
def test_sampler_pipeline_in_grid_search(Estimator):
    X, y = make_data()
    pipe = make_pipeline(RandomOverSampler(random_state=0), Estimator(**FAST))
    search = GridSearchCV(
        pipe,
        {
            "randomoversampler__sampling_strategy": ["not majority", "minority"],
            f"{type(pipe[-1]).__name__.lower()}__module__hidden_layer_sizes": [(8,), (16,)],
        },
        scoring="balanced_accuracy",
        cv=3,
        error_score="raise",
    ).fit(X, y)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    best = search.best_estimator_
    counts = best[-1].class_counts_
    if search.best_params_["randomoversampler__sampling_strategy"] == "minority":
        assert counts[2] == counts[0] != counts[1]  # only the rarest class grew
    else:
        assert len(set(counts)) == 1


def test_smote_keeps_dataframe_feature_names():
    X, y = make_data()
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    Estimator = dict(all_estimators())["LDAMDRWClassifier"]
    pipe = make_pipeline(SMOTE(random_state=0), Estimator(**FAST)).fit(df, y)
    assert pipe[-1].feature_names_in_.tolist() == df.columns.tolist()
    with pytest.raises(ValueError, match="feature names"):
        pipe.predict(df.rename(columns={"f0": "renamed"}))
