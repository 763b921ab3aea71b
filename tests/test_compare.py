"""Unit tests of the comparison logic behind ``ldam-sklearn compare``."""

import io
import json
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from imblearn.over_sampling import SMOTE
from sklearn.datasets import make_classification
from sklearn.preprocessing import StandardScaler

from ldam_sklearn import CrossFitEnsembleClassifier, LDAMDRWClassifier, compare
from ldam_sklearn.compare import (
    IMBLEARN_DATASETS,
    METHODS,
    ComparisonData,
    Method,
    NetSettings,
    format_table,
    load_csv,
    load_generated,
    load_imblearn,
    plot_per_class_recall,
    run_comparison,
    save_report,
    score,
    shot_groups,
)
from ldam_sklearn.compare import report as report_module
from ldam_sklearn.compare import run as run_module
from ldam_sklearn.datasets import long_tailed_counts

TINY = NetSettings(epochs=2, hidden=(8,), batch_size=64)


def small_data(weights=(0.8, 0.15, 0.05), sparse=False, **classification):
    X, y = make_classification(
        n_samples=300,
        n_features=6,
        n_informative=4,
        n_classes=len(weights),
        weights=list(weights),
        random_state=0,
        **classification,
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
    with pytest.warns(UserWarning, match="k_neighbors lowered from 5 to 3: the rarest training"):
        smote, _ = compare.METHODS["smote"].build(TINY, 0, np.array([50, 4]))
    assert isinstance(smote, SMOTE) and smote.k_neighbors == 3


def test_ablation_rows_train_the_papers_way_and_one_row_shows_the_default():
    # The default recipe's post-hoc adjustment would make "ERM" a re-balanced
    # method; only the "default" row shows what LDAMDRWClassifier() does.
    nets = {name: method.build(TINY, 0, np.array([50, 10]))[-1] for name, method in METHODS.items()}
    assert nets["ensemble"].get_params() == CrossFitEnsembleClassifier(random_state=0).get_params()
    recipes = {name: net.recipe for name, net in nets.items() if isinstance(net, LDAMDRWClassifier)}
    assert recipes.pop("default") == LDAMDRWClassifier().recipe == "tabular"
    assert {"erm", "ldam", "ldam_drw", "ce_drw", "ros"} <= set(recipes)
    assert set(recipes.values()) == {"paper"}


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


def rare_class_data():
    """small_data with 4 training rows of class 2: SMOTE and L2RW adapt, and warn."""
    data = small_data()
    data.y_train = data.y_train.copy()
    data.y_train[data.y_train == 2] = 1
    data.y_train[:4] = 2
    return data


def test_warnings_that_change_the_result_reach_stderr_and_the_table(capsys):
    report = run_comparison(rare_class_data(), ["smote", "l2rw"], settings=TINY)
    err = capsys.readouterr().err
    smote = "SMOTE's k_neighbors lowered from 5 to 3"
    assert f"warning, ERM + SMOTE: UserWarning: {smote}" in err
    assert "warning, L2RW: UserWarning: classes [2] have no more than meta_size=10" in err
    table = format_table(report)
    warnings_part = table.split("Warnings (they may change the scores above):")[1]
    assert smote in warnings_part and "L2RW: UserWarning: classes [2]" in warnings_part
    assert any(smote in text for text in report["methods"]["smote"]["runs"][0]["warnings"])


def test_a_warning_is_shown_once_per_method_not_once_per_seed(capsys):
    run_comparison(rare_class_data(), ["smote"], settings=TINY, seeds=2)
    assert capsys.readouterr().err.count("k_neighbors lowered") == 1


def test_table_explains_g_mean_and_shows_rows_per_class():
    data = small_data()
    report = run_comparison(data, ["logreg"], progress=False)
    table = format_table(report)
    assert "G-mean: geometric mean of the per-class recalls, so 0 whenever one class" in table
    train, test = np.bincount(data.y_train), np.bincount(data.y_test)
    items = ", ".join(f"{label}: {train[label]}/{test[label]}" for label in range(3))
    assert f"rows per class (training/test): {items}" in table
    assert "many/medium/few" in table and "minority recall" not in table


def test_binary_table_shows_minority_recall_instead_of_shot_groups():
    data = small_data(weights=(0.9, 0.1))
    report = run_comparison(data, ["erm", "logreg"], settings=TINY, seeds=2, progress=False)
    lines = format_table(report).splitlines()
    header = lines[2]
    assert "minority recall" in header
    assert not {"many", "medium", "few"} & set(header.split())
    minority = int(np.argmin(np.bincount(data.y_train)))
    recalls = [run["per_class_recall"][minority] for run in report["methods"]["logreg"]["runs"]]
    row = next(line for line in lines if line.startswith("LogReg"))
    assert f"{np.mean(recalls):.3f} ± {np.std(recalls):.3f}" in row
    assert f"test recall of the rarer training class, {minority!r}" in format_table(report)


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_epoch_bar_shows_epochs_and_training_balanced_accuracy(monkeypatch):
    monkeypatch.setattr(sys, "stderr", Terminal())
    progress = run_module._Progress(total=1, enabled=True)
    ticker = progress.start("ERM", 0, epochs=3)
    data = small_data()
    LDAMDRWClassifier(max_epochs=3, callbacks=[("progress", ticker)], random_state=0).fit(
        data.X_train, data.y_train
    )
    bar = progress.epochs
    # The default's packed members train ceil(40 % of 3) epochs, and the bar says so.
    assert (bar.n, bar.total, bar.unit, bar.desc) == (2, 2, "epoch", "ERM (seed 0)")
    assert bar.postfix.startswith("train bal. acc 0.")
    progress.finish("ERM", 0, "done")
    progress.close()
    assert "ERM (seed 0)" in sys.stderr.getvalue()


def test_long_fits_report_progress_lines_when_stderr_is_not_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(run_module, "_LINE_INTERVAL_S", 0.0)
    run_comparison(small_data(), ["erm"], settings=NetSettings(epochs=3, hidden=(8,)))
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("    ERM (seed 0): epoch 1/3, train bal. acc 0.")
    assert err[0].endswith(" s left")
    assert err[1].startswith("    ERM (seed 0): epoch 2/3")
    assert err[2].startswith("[1/1] ERM (seed 0): balanced accuracy")


def test_unknown_imblearn_name_gets_the_closest_names():
    with pytest.raises(
        ValueError, match="'ecolli' is not an imbalanced-learn data set; did you mean 'ecoli'"
    ):
        load_imblearn("ecolli")
    with pytest.raises(ValueError, match="the names are: ecoli, optical_digits"):
        load_imblearn("zzz")
    assert len(IMBLEARN_DATASETS) == 27 and "abalone_19" in IMBLEARN_DATASETS


def fake_report(n_classes=10, seeds=2, methods=tuple(METHODS)):
    """A report as run_comparison writes it, with made-up scores: no fitting."""
    rng = np.random.default_rng(0)
    classes = [f"class_{i}" for i in range(n_classes)]
    counts = long_tailed_counts(500, n_classes, 100).tolist()
    entries = {}
    for i, name in enumerate(methods):
        runs = [
            {
                "balanced_accuracy": 0.3 + 0.02 * i + 0.01 * seed,
                "per_class_recall": rng.random(n_classes).tolist(),
            }
            for seed in range(seeds)
        ]
        entries[name] = {
            "label": METHODS[name].label,
            "status": "ok",
            "runs": runs,
            "summary": {
                "balanced_accuracy": {
                    "mean": float(np.mean([r["balanced_accuracy"] for r in runs]))
                },
                "per_class_recall": np.mean([r["per_class_recall"] for r in runs], axis=0).tolist(),
            },
        }
    entries["hgb"] = {"label": "HistGB (balanced)", "status": "skipped", "note": "sparse"}
    return {
        "config": {"data": {"description": "made-up scores"}, "seeds": list(range(seeds))},
        "data": {
            "classes": classes,
            "class_counts_train": counts,
            "class_counts_test": [30] * n_classes,
        },
        "methods": entries,
    }


def test_figure_ranks_every_method_with_its_own_colour_and_marker():
    names = [name for name in METHODS if name != "hgb"]
    report = fake_report(methods=names)
    rank_ax, recall_ax, _ = report_module._figure(report).axes
    ranked = [label.get_text() for label in rank_ax.get_yticklabels()]
    # Every method that ran has its row, best (here: last in the report) at the top.
    assert ranked == [METHODS[name].label for name in names]
    means = [collection for collection in rank_ax.collections if collection.get_sizes()[0] == 70]
    styles = {(tuple(c.get_facecolor()[0]), c.get_paths()[0].vertices.tobytes()) for c in means}
    assert len(means) == len(names) and len(styles) == len(names)
    assert len({tuple(c.get_facecolor()[0]) for c in means}) == len(names)
    # The recall panel: the four best and the ERM reference, classes named on the axis.
    legend = [text.get_text() for text in recall_ax.get_legend().get_texts()]
    best = [METHODS[name].label for name in names[::-1][:4]]
    assert legend == [*best, "ERM (reference)"]
    ticks = [label.get_text() for label in recall_ax.get_xticklabels()]
    assert ticks[0] == "class_0\n500" and ticks[-1].startswith("class_9\n")
    lines = recall_ax.get_lines()
    assert (
        len({line.get_color() for line in lines}) == len({line.get_marker() for line in lines}) == 5
    )


def test_plot_of_a_binary_report_with_one_seed(tmp_path):
    report = fake_report(n_classes=2, seeds=1, methods=("erm", "ldam_drw"))
    path = plot_per_class_recall(report, tmp_path / "binary.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_when_no_method_ran(tmp_path, recwarn):
    report = fake_report(methods=())
    assert [entry["status"] for entry in report["methods"].values()] == ["skipped"]
    path = plot_per_class_recall(report, tmp_path / "empty.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [w for w in recwarn if "legend" in str(w.message)]


def test_table_says_when_the_deferred_stage_had_nothing_to_act_on():
    # Separable rows: the paper's recipe fits all of them before the switch
    # at 80 % of the epochs; the default's packed members train 12 epochs,
    # too few to train plainly, and mixup keeps their loss up.
    data = small_data(weights=(0.5, 0.5), class_sep=3.0, flip_y=0)
    settings = NetSettings(epochs=30, hidden=(32,), batch_size=64)
    report = run_comparison(data, ["erm", "ldam_drw", "default"], settings=settings, progress=False)
    runs = {name: entry["runs"][0] for name, entry in report["methods"].items()}
    assert runs["erm"]["deferred_stage"] is None
    stage = runs["ldam_drw"]["deferred_stage"]
    assert stage["epoch"] == 25 and stage["epochs"] == 30 and stage["train_bacc"] == 1.0
    default = runs["default"]["deferred_stage"]
    assert default["epochs"] == 12 and default["train_bacc"] < 1.0
    notes = format_table(report).split("or 20 epochs):")[1]
    assert "LDAM-DRW: 1 of 1 runs, switch at epoch 25 of 30, training loss" in notes
    assert "default recipe:" not in notes
    json.dumps(report)
