"""Unit tests of the comparison logic behind ``ldam-sklearn compare``."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from imblearn.over_sampling import SMOTE
from sklearn.datasets import make_classification
from sklearn.preprocessing import StandardScaler

from ldam_sklearn import compare
from ldam_sklearn.compare import (
    ComparisonData,
    Method,
    NetSettings,
    format_table,
    load_csv,
    load_generated,
    plot_per_class_recall,
    run_comparison,
    save_report,
    score,
    shot_groups,
)
from ldam_sklearn.datasets import long_tailed_counts

TINY = NetSettings(epochs=2, hidden=(8,), batch_size=64)


def small_data(weights=(0.8, 0.15, 0.05), sparse=False):
    X, y = make_classification(
        n_samples=300,
        n_features=6,
        n_informative=4,
        n_classes=3,
        weights=list(weights),
        random_state=0,
    )
    return ComparisonData(
        name="small",
        description="small test data",
        X_train=X[:200],
        y_train=y[:200],
        X_test=X[200:],
        y_test=y[200:],
        preprocessor=StandardScaler(),
        sparse=sparse,
    )


def test_shot_groups_boundaries():
    groups = shot_groups(np.array([101, 100, 20, 19]))
    assert groups["many_shot"].tolist() == [True, False, False, False]
    assert groups["medium_shot"].tolist() == [False, True, True, False]
    assert groups["few_shot"].tolist() == [False, False, False, True]


def test_score_by_hand():
    classes = np.array(["a", "b", "c"])
    y_true = np.array(["a", "a", "a", "a", "b", "b", "c", "c"])
    y_pred = np.array(["a", "a", "a", "b", "b", "a", "a", "a"])
    scores = score(y_true, y_pred, classes, class_counts=np.array([500, 150, 10]))
    assert scores["per_class_recall"] == [0.75, 0.5, 0.0]
    assert scores["balanced_accuracy"] == pytest.approx(1.25 / 3)
    assert scores["g_mean"] == 0.0  # one class never recalled
    assert scores["many_shot"] == pytest.approx(0.625)
    assert scores["medium_shot"] is None
    assert scores["few_shot"] == 0.0


@pytest.mark.parametrize("name", ["digits", "synthetic"])
def test_generated_data_follows_the_paper_construction(name):
    data = load_generated(name, imbalance_ratio=10, test_size=0.25)
    train_counts = np.bincount(data.y_train)
    assert train_counts.tolist() == long_tailed_counts(train_counts[0], 10, 10).tolist()
    test_counts = np.bincount(data.y_test)
    assert test_counts.max() <= 1.1 * test_counts.min()  # balanced as the source (digits: roughly)
    assert data.config["imbalance_ratio"] == 10 and data.config["profile"] == "exp"


def test_unknown_generated_dataset():
    with pytest.raises(ValueError, match="choose one of: mnist1d, digits, synthetic"):
        load_generated("cifar")


def test_csv_columns_and_stratified_split(tmp_path):
    rng = np.random.default_rng(0)
    y = np.repeat(["x", "y", "z"], [60, 30, 10])
    frame = pd.DataFrame(
        {"num": rng.normal(size=100), "cat": rng.choice(["p", "q"], size=100), "flag": True, "y": y}
    )
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    data = load_csv(path, "y", test_size=0.2)
    assert data.config["features"] == {"numeric": ["num"], "categorical": ["cat", "flag"]}
    assert np.unique(data.y_test, return_counts=True)[1].tolist() == [12, 6, 2]
    assert data.preprocessor.fit_transform(data.X_train).shape == (80, 1 + 2 + 1)


def test_csv_singleton_class_is_refused(tmp_path):
    path = tmp_path / "t.csv"
    pd.DataFrame({"a": range(5), "y": ["u", "u", "v", "v", "w"]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"classes \['w'\] have a single row"):
        load_csv(path, "y")


def test_report_schema_and_json_round_trip(tmp_path):
    report = run_comparison(
        small_data(), ["erm", "ldam_drw", "logreg"], settings=TINY, seeds=2, progress=False
    )
    assert list(report["methods"]) == ["erm", "ldam_drw", "logreg"]
    assert report["data"]["class_counts_train"] == np.bincount(small_data().y_train).tolist()
    entry = report["methods"]["ldam_drw"]
    assert [run["seed"] for run in entry["runs"]] == [0, 1]
    params = entry["pipeline"][-1]["params"]
    assert params["max_epochs"] == 2 and params["module__hidden_layer_sizes"] == [8]
    assert params["loss"] == "ldam" and params["schedule"] == "drw"
    mean = np.mean([run["balanced_accuracy"] for run in entry["runs"]])
    assert entry["summary"]["balanced_accuracy"]["mean"] == pytest.approx(mean)
    path = save_report(report, tmp_path / "deep" / "r.json")
    assert json.loads(path.read_text()) == report
    assert " ± " in format_table(report)


def test_same_seed_same_scores():
    first, second = (
        run_comparison(small_data(), ["ldam_drw"], settings=TINY, progress=False) for _ in range(2)
    )
    assert (
        first["methods"]["ldam_drw"]["runs"][0]["per_class_recall"]
        == (second["methods"]["ldam_drw"]["runs"][0]["per_class_recall"])
    )


def test_failed_method_is_reported_and_the_others_run(monkeypatch):
    def broken(settings, seed, class_counts):
        raise RuntimeError("out of cheese")

    monkeypatch.setitem(compare.METHODS, "broken", Method("Broken", broken))
    report = run_comparison(small_data(), ["broken", "logreg"], settings=TINY, progress=False)
    assert report["methods"]["broken"]["status"] == "failed"
    assert report["methods"]["broken"]["note"] == "RuntimeError: out of cheese"
    assert report["methods"]["logreg"]["status"] == "ok"
    assert "Broken: failed - RuntimeError: out of cheese" in format_table(report)


def test_skips_smote_with_a_singleton_class_and_hgb_on_sparse_data():
    data = small_data()
    data.y_train = data.y_train.copy()
    data.y_train[data.y_train == 2] = 1
    data.y_train[0] = 2  # one training sample of class 2
    report = run_comparison(data, ["smote", "hgb"], settings=TINY, progress=False)
    assert report["methods"]["smote"]["status"] == "skipped"
    assert report["methods"]["hgb"]["status"] == "ok"
    sparse = run_comparison(small_data(sparse=True), ["hgb"], settings=TINY, progress=False)
    assert sparse["methods"]["hgb"]["status"] == "skipped"


def test_smote_neighbours_fit_the_rarest_class():
    smote, _ = compare.METHODS["smote"].build(TINY, 0, np.array([50, 4]))
    assert isinstance(smote, SMOTE) and smote.k_neighbors == 3


def test_unknown_method_and_bad_seeds():
    with pytest.raises(ValueError, match="unknown method.*choose from: erm, class_weighted"):
        run_comparison(small_data(), ["nope"], progress=False)
    with pytest.raises(ValueError, match="seeds must be >= 1"):
        run_comparison(small_data(), ["erm"], seeds=0, progress=False)


def test_thread_limit_is_restored():
    before = torch.get_num_threads()
    run_comparison(small_data(), ["logreg"], n_threads=1, progress=False)
    assert torch.get_num_threads() == before


def test_plot_is_a_png(tmp_path):
    report = run_comparison(small_data(), ["erm", "logreg"], settings=TINY, progress=False)
    path = plot_per_class_recall(report, tmp_path / "plots" / "recall.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
