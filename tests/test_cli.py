"""End-to-end tests of ``ldam-sklearn compare`` on tiny settings."""

import importlib.util
import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from ldam_sklearn import compare
from ldam_sklearn.cli import main

# The L2RW estimator lands in its own module; until then only it may be left out.
HAVE_L2RW = importlib.util.find_spec("ldam_sklearn.l2rw") is not None
ALL_METHODS = [name for name in compare.METHODS if HAVE_L2RW or name != "l2rw"]
TINY = ["--epochs", "2", "--hidden", "16", "--batch-size", "64"]
SCORE_KEYS = {"balanced_accuracy", "macro_f1", "g_mean", "many_shot", "medium_shot", "few_shot"}


@pytest.fixture(autouse=True)
def _data_home(tmp_path, monkeypatch):
    """Keep the MNIST-1D cache out of the user's cache folder."""
    monkeypatch.setenv("LDAM_SKLEARN_DATA", str(tmp_path / "data_home"))


def run(tmp_path, *args):
    """Run the command quietly into tmp_path/out; return (status, report)."""
    out = tmp_path / "out"
    status = main(["compare", *TINY, "--out", str(out), "--quiet", *args])
    return status, json.loads((out / "results.json").read_text())


def check_png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def check_report(report, methods, n_seeds=1):
    """The JSON schema: configuration, data summary and one entry per method."""
    assert report["schema_version"] == 1
    assert {"config", "versions", "data", "methods", "created"} <= set(report)
    config = report["config"]
    assert config["methods"] == methods
    assert config["seeds"] == list(range(n_seeds))
    assert config["command"][:2] == ["ldam-sklearn", "compare"]
    assert {"epochs", "hidden", "batch_size", "lr", "device"} <= set(config["network"])
    assert {"torch", "skorch", "scikit-learn", "imbalanced-learn", "ldam_sklearn"} <= set(
        report["versions"]
    )
    data = report["data"]
    n_classes = len(data["classes"])
    assert len(data["class_counts_train"]) == len(data["class_counts_test"]) == n_classes
    assert sum(data["class_counts_train"]) == config["data"]["n_train"]
    assert sum(data["class_counts_test"]) == config["data"]["n_test"]
    assert sorted(sum(data["shot_groups"].values(), []), key=str) == sorted(
        data["classes"], key=str
    )
    assert list(report["methods"]) == methods
    for entry in report["methods"].values():
        assert entry["status"] in ("ok", "skipped")
        assert isinstance(entry["label"], str)
        if entry["status"] == "skipped":
            assert entry["note"]
            continue
        assert [run["seed"] for run in entry["runs"]] == list(range(n_seeds))
        assert entry["pipeline"][-1]["step"]  # the exact configuration of each step
        for run in entry["runs"]:
            assert math.isfinite(run["fit_seconds"]) and run["fit_seconds"] >= 0
            assert len(run["per_class_recall"]) == n_classes
            for key in SCORE_KEYS:
                assert run[key] is None or 0.0 <= run[key] <= 1.0
            assert all(0.0 <= r <= 1.0 for r in run["per_class_recall"])
        for key in SCORE_KEYS:
            stat = entry["summary"][key]
            assert stat is None or (0 <= stat["mean"] <= 1 and stat["std"] >= 0)


def test_generated_data_all_methods(tmp_path, capsys):
    status, report = run(tmp_path, "--dataset", "synthetic", "--methods", ",".join(ALL_METHODS))
    assert status == 0
    check_report(report, ALL_METHODS)
    assert all(entry["status"] == "ok" for entry in report["methods"].values())
    # Long-tailed training set, balanced test set.
    counts = report["data"]["class_counts_train"]
    assert counts == sorted(counts, reverse=True) and counts[0] >= 90 * counts[-1]
    assert len(set(report["data"]["class_counts_test"])) == 1
    check_png(tmp_path / "out" / "per_class_recall.png")
    table = capsys.readouterr().out
    for name in ALL_METHODS:
        assert compare.METHODS[name].label in table
    assert "bal. acc" in table and "results.json" in table


def test_mnist1d_step_profile_and_method_subset(tmp_path):
    status, report = run(
        tmp_path,
        "--methods",
        "erm,LDAM-DRW",
        "--imbalance-ratio",
        "10",
        "--profile",
        "step",
    )
    assert status == 0
    check_report(report, ["erm", "ldam_drw"])
    assert report["config"]["data"]["dataset"] == "mnist1d"
    assert report["config"]["data"]["profile"] == "step"
    assert report["data"]["class_counts_train"] == [389] * 5 + [38] * 5
    assert report["config"]["data"]["n_test"] == 1000


@pytest.fixture
def table_csv(tmp_path):
    rng = np.random.default_rng(0)
    n = 240
    label = np.array(["common"] * 180 + ["rare"] * 45 + ["very rare"] * 15)
    frame = pd.DataFrame(
        {
            "x1": rng.normal(size=n) + (label == "rare"),
            "x2": rng.normal(size=n) - 2 * (label == "very rare"),
            "colour": rng.choice(["red", "green", "blue"], size=n),
            "label": label,
        }
    )
    frame.loc[::17, "x1"] = np.nan  # median-imputed
    frame.loc[5, "label"] = np.nan  # dropped
    path = tmp_path / "table.csv"
    frame.to_csv(path, index=False)
    return path


def test_csv_tabular_with_seeds(tmp_path, table_csv):
    methods = ["erm", "smote", "ldam_drw", "logreg", "hgb"]
    status, report = run(
        tmp_path,
        "--csv",
        str(table_csv),
        "--target",
        "label",
        "--methods",
        ",".join(methods),
        "--seeds",
        "2",
        "--test-size",
        "0.3",
    )
    assert status == 0
    check_report(report, methods, n_seeds=2)
    data = report["config"]["data"]
    assert data["features"] == {"numeric": ["x1", "x2"], "categorical": ["colour"]}
    assert data["rows_dropped_missing_target"] == 1
    assert data["n_train"] + data["n_test"] == 239
    assert report["data"]["classes"] == ["common", "rare", "very rare"]
    check_png(tmp_path / "out" / "per_class_recall.png")


def test_csv_text_is_sparse_and_skips_gradient_boosting(tmp_path, capsys):
    rng = np.random.default_rng(0)
    words = {"pos": ["great", "fine", "love"], "neg": ["awful", "bad", "hate"]}
    labels = ["pos"] * 60 + ["neg"] * 12
    reviews = [" ".join(rng.choice(words[y], size=4)) + " movie" for y in labels]
    path = tmp_path / "reviews.csv"
    pd.DataFrame({"review": reviews, "stars": labels, "id": range(72)}).to_csv(path, index=False)
    methods = ["erm", "ros", "ldam_drw", "logreg", "hgb"]
    status, report = run(
        tmp_path,
        "--csv",
        str(path),
        "--target",
        "stars",
        "--text-column",
        "review",
        "--methods",
        ",".join(methods),
    )
    assert status == 0
    check_report(report, methods)
    assert report["config"]["data"]["sparse_features"] is True
    assert report["methods"]["hgb"]["status"] == "skipped"
    assert "dense" in report["methods"]["hgb"]["note"]
    assert "HistGB (balanced): skipped" in capsys.readouterr().out


def test_imblearn_from_cache(tmp_path):
    rng = np.random.default_rng(0)
    zenodo = tmp_path / "sk_data" / "zenodo"
    zenodo.mkdir(parents=True)
    label = np.array([1] * 12 + [-1] * 88)
    np.savez(zenodo / "x1data.npz", data=rng.normal(size=(100, 5)) + label[:, None], label=label)
    status, report = run(
        tmp_path,
        "--imblearn",
        "ecoli",
        "--data-home",
        str(tmp_path / "sk_data"),
        "--methods",
        "erm,logreg",
    )
    assert status == 0
    check_report(report, ["erm", "logreg"])
    assert report["data"]["classes"] == [-1, 1]


def test_progress_lines_on_stderr_when_not_a_terminal(tmp_path, capsys):
    main(
        ["compare", *TINY, "--dataset", "digits", "--methods", "erm,logreg", "--out", str(tmp_path)]
    )
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("[1/2] ERM (seed 0): balanced accuracy")
    assert err[1].startswith("[2/2] LogReg (balanced) (seed 0)")


def error_of(capsys, *args):
    """Run with bad arguments: argparse-style exit 2, message on stderr."""
    with pytest.raises(SystemExit) as exc:
        main(["compare", *TINY, "--quiet", *args])
    assert exc.value.code == 2
    return capsys.readouterr().err


def test_unknown_method_lists_the_valid_ones(capsys):
    err = error_of(capsys, "--methods", "erm,magic")
    assert "unknown method(s) magic" in err
    assert "ldam_drw" in err and "l2rw" in err and "hgb" in err


def test_unknown_dataset_lists_the_valid_ones(capsys):
    err = error_of(capsys, "--dataset", "cifar")
    assert "invalid choice: 'cifar'" in err and "mnist1d" in err and "synthetic" in err


def test_bad_csv_path(tmp_path, capsys):
    err = error_of(capsys, "--csv", str(tmp_path / "nope.csv"), "--target", "y")
    assert "nope.csv: no such file" in err


def test_missing_columns_list_the_columns(table_csv, capsys):
    err = error_of(capsys, "--csv", str(table_csv), "--target", "class")
    assert "--target 'class' is not a column" in err and "'colour'" in err
    err = error_of(capsys, "--csv", str(table_csv), "--target", "label", "--text-column", "txt")
    assert "--text-column 'txt' is not a column" in err


def test_one_class_and_continuous_targets(tmp_path, capsys):
    path = tmp_path / "one.csv"
    pd.DataFrame({"x": np.linspace(0, 1, 10), "y": ["a"] * 10}).to_csv(path, index=False)
    assert "single class ('a')" in error_of(capsys, "--csv", str(path), "--target", "y")
    assert "continuous values" in error_of(capsys, "--csv", str(path), "--target", "x")


def test_options_of_another_source(table_csv, capsys):
    assert "--csv needs --target" in error_of(capsys, "--csv", str(table_csv))
    assert "--target applies to --csv only" in error_of(capsys, "--target", "label")
    err = error_of(capsys, "--csv", str(table_csv), "--target", "label", "--profile", "step")
    assert "--profile applies to --dataset only" in err
    assert "own test split" in error_of(capsys, "--test-size", "0.3")
    assert "must be >= 1" in error_of(capsys, "--imbalance-ratio", "0.5")


def test_out_is_a_file(tmp_path, capsys):
    (tmp_path / "taken").write_text("")
    err = error_of(capsys, "--dataset", "digits", "--out", str(tmp_path / "taken"))
    assert "--out" in err and "cannot create the folder" in err


def test_imblearn_not_cached_names_the_expected_file(tmp_path, capsys):
    err = error_of(capsys, "--imblearn", "ecoli", "--data-home", str(tmp_path))
    assert "not cached" in err and str(tmp_path / "zenodo" / "x1data.npz") in err


def test_python_dash_m():
    result = subprocess.run(
        [sys.executable, "-m", "ldam_sklearn", "compare", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--imbalance-ratio" in result.stdout and "ldam_drw" in result.stdout


def test_help_lists_the_imblearn_names_and_where_data_is_read_from(capsys):
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert all(name in help_text for name in compare.IMBLEARN_DATASETS)
    assert "DATA_HOME/zenodo/x<ID>data.npz, never downloaded" in help_text
    assert "DATA_HOME is --data-home DIR, else $SCIKIT_LEARN_DATA" in help_text
    assert "point --data-home at the folder that holds it" in help_text


def test_unknown_imblearn_name_gets_the_closest_names(capsys):
    err = error_of(capsys, "--imblearn", "abalone19")
    assert "'abalone19' is not an imbalanced-learn data set; did you mean 'abalone_19'" in err
    assert "odict_keys" not in err


def test_warnings_that_change_the_result_reach_the_console(tmp_path, capsys):
    # Imbalance ratio 30 on digits leaves 4 rows of the rarest class: SMOTE
    # runs with 3 neighbours instead of 5.
    args = ["--dataset", "digits", "--imbalance-ratio", "30", "--methods", "smote"]
    main(["compare", *TINY, *args, "--out", str(tmp_path)])
    captured = capsys.readouterr()
    lowered = "SMOTE's k_neighbors lowered from 5 to 3"
    assert f"warning, ERM + SMOTE: UserWarning: {lowered}" in captured.err
    assert lowered in captured.out.split("Warnings (they may change the scores above):")[1]
    main(["compare", *TINY, *args, "--out", str(tmp_path), "--quiet"])
    captured = capsys.readouterr()
    assert captured.err == "" and lowered in captured.out
