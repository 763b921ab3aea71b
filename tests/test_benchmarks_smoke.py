"""The benchmark suite still runs: ``benchmarks/run.py --quick`` on tiny sizes.

Keeps ``python benchmarks/run.py`` from rotting as the package changes. The
numbers of a quick run mean nothing; only the code paths, the table, the
JSON and the plot are checked.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ldam_sklearn.datasets import long_tailed_counts

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def run_module():
    saved_path, saved_env = list(sys.path), dict(os.environ)
    spec = importlib.util.spec_from_file_location(
        "_ldam_benchmarks_run", ROOT / "benchmarks" / "run.py"
    )
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        # run.py puts benchmarks/ and the checkout on sys.path and may set
        # OMP_WAIT_POLICY; leave the test process as it was.
        sys.path[:] = saved_path
        os.environ.clear()
        os.environ.update(saved_env)


def test_quick_suite_runs_and_reports(run_module, tmp_path, capsys):
    report = run_module.main(["--quick", "--out", str(tmp_path), "--device", "cpu"])

    sections = {row["section"].split()[1] for row in report["table"]}
    assert sections == set(run_module.SECTIONS)
    for row in report["table"]:
        assert row["status"] in ("ok", "MISSED", "info", "skipped")
        if row["target"] != "—":
            assert row["status"] in ("ok", "MISSED")
    # Every ratio with a target in the issue is in the table.
    names = " | ".join(row["measurement"] for row in report["table"])
    for needle in (
        "ours / hand-written loop",
        "plain skorch / ours",
        "fit set-up before the first epoch",
        "minor page faults per epoch",
        "process peak RSS / dense size",
        "time ratio 100x features, equal nnz",
        "L2RW epoch / ERM epoch",
        "naive double backward",
        "predict_proba time / forward loop time",
        "cost per row",
        "R² of a straight line",
        "fit on CUDA",
    ):
        assert needle in names, needle
    # CPU-only: the CUDA rows are skipped with a note, never failed.
    cuda = [row for row in report["table"] if row["section"].startswith("6")]
    assert cuda and all(row["status"] == "skipped" and row["note"] for row in cuda)

    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["quick"] is True
    assert {"cpu", "torch", "date", "cpu_count"} <= set(saved["machine"])
    assert (tmp_path / "results.md").read_text().startswith(saved["machine"]["cpu"])
    assert (tmp_path / "scaling.png").stat().st_size > 0
    out = capsys.readouterr().out
    assert "target" in out and "QUICK MODE" in out


def test_fit_benchmark_runs_one_contender_for_a_profiler():
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_fit.py"),
            "--profile",
            "ldam_sklearn",
            "--loss",
            "ldam",
            "--epochs",
            "1",
            "--n-samples",
            "300",
        ],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ | {"OMP_NUM_THREADS": "1"},
    )
    timed = ast.literal_eval(result.stdout.strip())
    assert timed["epoch"] > 0 and timed["setup"] > 0


def test_fit_benchmark_gives_each_contender_each_place_in_turn(run_module, monkeypatch):
    bench_fit = sys.modules["bench_fit"]
    calls = []

    def recorder(name):
        def contender(X, y, epochs, batch_size, loss, device, precision):
            calls.append(name)
            return {"epoch": 1.0, "setup": 0.0, "faults": 0.0}

        return contender

    names = list(bench_fit.CONTENDERS)
    monkeypatch.setattr(bench_fit, "CONTENDERS", {name: recorder(name) for name in names})
    bench_fit.run(n_samples=20, rounds=len(names))

    orders = [calls[i : i + len(names)] for i in range(0, len(calls), len(names))]
    assert len(orders) == len(names)
    for place in range(len(names)):
        assert sorted(order[place] for order in orders) == sorted(names)


def _load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(
        f"_ldam_{name}", ROOT / "benchmarks" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def bench_real():
    return _load_benchmark("bench_real")


def test_meta_weights_benchmark_times_sparse_input(run_module):
    # run.py put benchmarks/ on sys.path, where bench_meta_weights lives.
    bench = sys.modules["bench_meta_weights"]
    result = bench.run_sparse_epochs(feature_counts=(500, 5_000), n_samples=200, epochs=1, rounds=1)
    assert set(result) == {500, 5_000}
    for block in result.values():
        assert set(block["seconds_per_epoch"]) == {"erm", "l2rw", "mwnet"}
        assert block["ratio_to_erm"]["erm"] == 1.0
        assert all(seconds > 0 for seconds in block["seconds_per_epoch"].values())


# Two epochs on 400 rows may leave the rare class unlearned; that is not checked here.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_budget_benchmark_scores_each_budget_beside_hgb():
    bench = _load_benchmark("bench_budget")
    table = bench.main(["--n-samples", "600", "--budgets", "2,5"])
    assert list(table.index) == ["HGB-bal", "LDAM-DRW, max_epochs=2", "LDAM-DRW, max_epochs=5"]
    assert table["balanced_accuracy"].between(0, 1).all() and (table["fit_seconds"] > 0).all()


def _fake_data_home(path: Path) -> Path:
    """A data home laid out like ../shared/data, holding generated data."""
    rng = np.random.default_rng(0)
    (path / "imblearn_zenodo").mkdir(parents=True)
    X = rng.normal(size=(90, 4))
    label = np.where(np.arange(90) < 15, 1, -1)
    X[label == 1] += 1.5
    np.savez(path / "imblearn_zenodo" / "x1data.npz", data=X, label=label)
    yeast = pd.DataFrame(rng.normal(size=(60, 3)), columns=["a", "b", "c"])
    yeast["label"] = np.repeat(["CYT", "NUC", "ERL"], [30, 24, 6])
    yeast.to_csv(path / "uci_yeast_multiclass.csv", index=False)
    return path


def test_real_data_benchmark_scores_caches_and_reports(bench_real, tmp_path, monkeypatch):
    home = _fake_data_home(tmp_path / "data")
    out = tmp_path / "out" / "real.json"
    argv = [
        "--data-home",
        str(home),
        "--datasets",
        "ecoli,yeast_multiclass",
        "--contenders",
        "LR-bal,LDAM-DRW",
        "--out",
        str(out),
    ]
    summary = bench_real.main(argv)

    assert list(summary.index) == ["LR-bal", "LDAM-DRW"]
    assert set(summary["mean_rank"]) <= {1.0, 1.5, 2.0}
    assert summary["mean_rank"].sum() == 3.0
    assert ((summary["balanced_accuracy"] > 0.5) & (summary["balanced_accuracy"] <= 1)).all()
    results = json.loads(out.read_text())["results"]
    assert len(results) == 2 * 2 * bench_real.N_FOLDS
    assert (tmp_path / "out" / "real.png").stat().st_size > 0
    assert "LDAM-DRW" in (tmp_path / "out" / "real.md").read_text()

    # A second run finds every fold in the cache and fits nothing.
    def no_fit(*args, **kwargs):
        raise AssertionError("a cached fold was fitted again")

    monkeypatch.setattr(bench_real, "score_fold", no_fit)
    again = bench_real.main(argv)
    pd.testing.assert_frame_equal(again, summary)


def test_real_data_benchmark_gives_every_contender_the_same_threads(
    bench_real, tmp_path, monkeypatch
):
    import torch
    from threadpoolctl import threadpool_info

    seen = []

    def record(*args, **kwargs):
        pools = [pool["num_threads"] for pool in threadpool_info()]
        seen.append((torch.get_num_threads(), max(pools, default=1)))
        return {"balanced_accuracy": 0.5, "macro_f1": 0.5, "g_mean": 0.5, "fit_seconds": 0.1}

    monkeypatch.setattr(bench_real, "score_fold", record)
    home = _fake_data_home(tmp_path / "data")
    threads = torch.get_num_threads()
    argv = ["--data-home", str(home), "--datasets", "ecoli", "--contenders", "LR-bal"]
    bench_real.main([*argv, "--out", str(tmp_path / "a.json"), "--threads", "1"])
    assert seen == [(1, 1)] * bench_real.N_FOLDS
    # PyTorch's setting is given back.
    assert torch.get_num_threads() == threads


def test_real_data_benchmark_uses_the_same_folds_for_everyone(bench_real):
    y = np.repeat([0, 1, 2], [40, 12, 5])
    first, second = bench_real.folds(y), bench_real.folds(y)
    for (train_a, test_a), (_, test_b) in zip(first, second, strict=True):
        np.testing.assert_array_equal(test_a, test_b)
        assert set(y[train_a]) == {0, 1, 2}
    assert sorted(np.concatenate([test for _, test in first])) == list(range(len(y)))


@pytest.fixture
def bench_text(monkeypatch):
    # bench_text imports bench_real's cache and machine record, as it does
    # when run as a script from benchmarks/.
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    return _load_benchmark("bench_text")


def _fake_text_home(path: Path) -> Path:
    """A data home laid out like ../shared/data's text files, holding generated text."""
    rng = np.random.default_rng(0)
    path.mkdir(parents=True)

    def texts(labels):
        # Each label has its own cue word among random filler words.
        return [
            " ".join([f"cue{label}", *(f"w{i}" for i in rng.integers(0, 50, size=6))])
            for label in labels
        ]

    spam = np.where(np.arange(150) < 45, "spam", "ham")
    pd.DataFrame({"label": spam, "text": texts(spam)}).to_csv(path / "sms_spam.csv", index=False)
    intents = [f"intent_{i}" for i in range(6)]
    train = np.repeat(intents, 40)
    test = np.repeat(intents, 10)
    pd.DataFrame({"text": texts(train), "category": train}).to_csv(
        path / "banking77_train.csv", index=False
    )
    pd.DataFrame({"text": texts(test), "category": test}).to_csv(
        path / "banking77_test.csv", index=False
    )
    return path


def test_text_benchmark_scores_caches_and_reports(bench_text, tmp_path, monkeypatch):
    home = _fake_text_home(tmp_path / "data")
    out = tmp_path / "out" / "text.json"
    argv = ["--data-home", str(home), "--contenders", "LR-bal,ERM", "--out", str(out), "--quick"]
    table = bench_text.main(argv)

    assert list(table.index) == [
        (dataset, contender)
        for contender in ("LR-bal", "ERM")
        for dataset in ("sms_spam", "banking77_lt100")
    ]
    # The cue words make spam easy; the intents' tail keeps one or two rows
    # per class, still far above the chance level of 1/6.
    assert (table.loc["sms_spam", ["macro_f1", "balanced_accuracy"]] > 0.9).all(axis=None)
    assert (table.loc["banking77_lt100", ["macro_f1", "balanced_accuracy"]] > 0.4).all(axis=None)
    # Spam has more than 20 training rows; the 100:1 intents' tail has fewer.
    assert table.loc["sms_spam", "few_shot_accuracy"].isna().all()
    assert table.loc["banking77_lt100", "few_shot_accuracy"].notna().all()
    assert (table["diverged"] == 0).all()
    results = json.loads(out.read_text())["results"]
    assert len(results) == 2 * 2
    assert (tmp_path / "out" / "text.png").stat().st_size > 0
    assert "LR-bal" in (tmp_path / "out" / "text.md").read_text()

    # A second run finds every split in the cache and fits nothing.
    def no_fit(*args, **kwargs):
        raise AssertionError("a cached split was fitted again")

    monkeypatch.setattr(bench_text, "score_split", no_fit)
    pd.testing.assert_frame_equal(bench_text.main(argv), table)


def test_banking77_lt_keeps_the_profile_and_the_class_order(bench_text):
    classes = [f"c{i}" for i in range(8)]
    train = pd.DataFrame(
        {"text": [f"t{i}" for i in range(8 * 50)], "category": np.repeat(classes, 50)}
    )
    _, first = bench_text.long_tailed_banking77(train, 10, seed=0)
    texts, second = bench_text.long_tailed_banking77(train, 10, seed=1)

    # The same classes get the same counts for every seed: 50 * 10 ** (-i / 7).
    counts = pd.Series(first).value_counts()
    pd.testing.assert_series_equal(counts, pd.Series(second).value_counts())
    assert sorted(counts) == sorted(long_tailed_counts(50, 8, 10))
    # Other rows are kept by another seed.
    assert set(texts) != set(bench_text.long_tailed_banking77(train, 10, seed=0)[0])


def test_few_shot_accuracy_is_the_recall_of_the_rare_classes(bench_text):
    y_train = np.repeat(["head", "tail"], [30, 5])
    y_test = np.array(["head", "head", "tail", "tail"])
    pred = np.array(["tail", "head", "tail", "head"])
    assert bench_text.few_shot_accuracy(y_train, y_test, pred) == 0.5
    assert np.isnan(bench_text.few_shot_accuracy(y_train[:30], y_test[:2], pred[:2]))


def test_text_benchmark_records_a_diverged_fit_and_leaves_it_out_of_the_means(bench_text):
    from sklearn.dummy import DummyClassifier

    class Diverging(DummyClassifier):
        def fit(self, X, y):
            raise FloatingPointError("Training diverged")

    split = (
        np.array(["aa bb", "cc dd"] * 10),
        np.repeat(["x", "y"], 10),
        np.array(["aa", "cc"]),
        np.array(["x", "y"]),
    )
    assert bench_text.score_split(Diverging, split)["diverged"]
    fitted = bench_text.score_split(DummyClassifier, split)
    per_split = pd.DataFrame(
        [
            {"dataset": "d", "contender": "c", "split": 0, **fitted},
            {
                "dataset": "d",
                "contender": "c",
                "split": 1,
                **bench_text.score_split(Diverging, split),
            },
        ]
    )
    table = bench_text.summarize(per_split)
    assert table.loc[("d", "c"), "diverged"] == 1
    assert table.loc[("d", "c"), "macro_f1"] == fitted["macro_f1"]


def test_plain_members_benchmark_forces_each_recipe_and_bands_the_gains(monkeypatch, tmp_path):
    import ldam_sklearn.ldam_drw as ldam_drw

    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    bench = _load_benchmark("bench_plain_members")
    threshold = ldam_drw._ROWS_PER_FEATURE
    recipes = []
    fit = ldam_drw.LDAMDRWClassifier.fit

    def recorded(self, X, y, **kwargs):
        fit(self, X, y, **kwargs)
        recipes.append(self._plain_members)
        return self

    monkeypatch.setattr(ldam_drw.LDAMDRWClassifier, "fit", recorded)
    iris = {"iris, ratio 10": bench.bundled_sets()["iris, ratio 10"]}
    fits = bench.run(iris, (0,))
    # Three folds plainly, then three regularised; the threshold is restored.
    assert recipes == [True] * 3 + [False] * 3
    assert ldam_drw._ROWS_PER_FEATURE == threshold
    assert fits["rows_per_feature"].round(2).tolist() == [round(70 * 2 / 3 / 4, 2)]
    table = bench.summarize(fits)
    assert table["fits"].sum() == 1 and table.index[0].left == 8
    assert not bench.suite_sets(tmp_path)


def test_sms_threshold_benchmark_bounds_every_threshold(bench_text, tmp_path, capsys):
    bench = _load_benchmark("bench_sms_threshold")
    home = _fake_text_home(tmp_path / "data")
    table = bench.main(["--data-home", str(home), "--contenders", "ERM", "--quick"])

    assert list(table.index) == ["LinearSVC-bal", "LR-bal", "ERM"]
    # The bars are the references' own scores: the better on each metric.
    bars = table.loc[["LinearSVC-bal", "LR-bal"], ["macro_f1", "balanced_accuracy"]].max()
    assert f"macro-F1 {bars['macro_f1']:.4f}" in capsys.readouterr().out
    # On one fold the oracle threshold sweeps the contender's own one too.
    assert (table["best_macro_f1"] >= table["macro_f1"] - 1e-12).all()
    assert (table["auc"] > 0.9).all()
    # The closest point's margin is the worse of its two margins to the bars.
    margins = np.minimum(
        table["closest_f1"] - bars["macro_f1"], table["closest_bacc"] - bars["balanced_accuracy"]
    )
    np.testing.assert_allclose(table["shortfall"], margins)


def test_sms_threshold_curves_count_each_threshold(bench_text):
    bench = _load_benchmark("bench_sms_threshold")
    score = np.array([0.1, 0.4, 0.6, 0.9])
    spam = np.array([False, True, False, True])
    f1, bacc = bench.threshold_curves(score, spam, np.array([-np.inf, 0.5, 0.9]))
    # All spam; then rows 0.6 and 0.9 (one right, one wrong); then none.
    np.testing.assert_allclose(bacc, [0.5, 0.5, 0.5])
    np.testing.assert_allclose(f1, [(2 / 3 + 0) / 2, 0.5, (0 + 2 / 3) / 2])
