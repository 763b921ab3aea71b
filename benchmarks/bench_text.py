"""Quality on real imbalanced text: the text rows of issue #19.

Every contender is a scikit-learn ``Pipeline`` from raw strings: the same
``TfidfVectorizer`` (see :func:`vectorizer`) in front of

- ours at their defaults: ``LDAMDRWClassifier()``, ``L2RWClassifier()``,
  ``MetaWeightNetClassifier()``, ``CrossFitEnsembleClassifier()`` (five
  LDAM-DRW networks), and
  ERM (``LDAMDRWClassifier(loss="ce", schedule="none")``: cross-entropy
  without re-weighting, in the default recipe, which still chooses a
  post-hoc adjustment; ``bench_real.py``'s ERM takes ``recipe="paper"``,
  which diverged on an SMS spam fold);
- references: ``LinearSVC``, ``LogisticRegression`` and ``SGDClassifier``
  with ``class_weight="balanced"``, and ``ComplementNB``.

Data sets (``<data-home>`` is ``../shared/data`` by default):

- ``sms_spam``: ``sms_spam.csv`` (``label``, ``text``), 13 % spam, 3-fold
  stratified CV (fixed seed).
- ``banking77_lt10``, ``banking77_lt100``: BANKING77-LT, built from
  ``banking77_train.csv`` as CIFAR-10-LT is built: the i-th class (classes
  in an order drawn once from a fixed seed) keeps
  ``n_max * rho ** (-i / (C - 1))`` of its training rows, ``n_max`` being
  the largest class count (187), a class with fewer rows keeping them all;
  three subsampling seeds; scored on the untouched balanced
  ``banking77_test.csv``.

Metrics: macro-F1, balanced accuracy, few-shot accuracy (the recall of the
test rows of the classes with fewer than 20 training rows, BANKING77-LT
only) and fit seconds (vectorizer included). A fit that diverges is
recorded as such (``diverged`` counts them; its metrics are left out of
the means). Results are cached per
(dataset, contender, split) in the JSON file (``--out``) as in
``bench_real.py``, whose cache and machine record are reused; each run
prints the table of the complete (dataset, contender) pairs and writes
``bench_text.md`` and ``bench_text.png`` next to the JSON.

Run ``python benchmarks/bench_text.py`` (``--quick``: the first split of
SMS spam and of BANKING77-LT rho=100 only).
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from bench_real import DEFAULT_DATA_HOME, Cache, machine
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.metrics import balanced_accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.naive_bayes import ComplementNB
from sklearn.pipeline import make_pipeline
from sklearn.svm import LinearSVC

from ldam_sklearn import (
    CrossFitEnsembleClassifier,
    L2RWClassifier,
    LDAMDRWClassifier,
    MetaWeightNetClassifier,
)
from ldam_sklearn.datasets import make_long_tailed

SEED = 0
N_SPLITS = 3
#: Training rows below which a class counts as few-shot.
FEW_SHOT = 20
#: BANKING77-LT name -> imbalance ratio.
BANKING77_LT = {"banking77_lt10": 10, "banking77_lt100": 100}
DATASETS = ["sms_spam", *BANKING77_LT]
QUICK = ["sms_spam", "banking77_lt100"]

#: One split: training texts, their labels, test texts, their labels.
Split = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def vectorizer() -> TfidfVectorizer:
    """The features every contender sees: scikit-learn's ``TfidfVectorizer()``.

    Chosen by measurement with the linear references on BANKING77-LT
    (seed 0): word 1-2 grams with ``sublinear_tf`` lost 2 to 6 points of
    macro-F1 to the plain unigrams at rho=100, and adding character 2-5
    grams gained 1.5 to 2.5 points at rho=10 but lost 0.9 to 1.3 at rho=100
    for 4 to 14 times the fit time.
    """
    return TfidfVectorizer()


#: Contender name -> factory of the estimator behind the vectorizer.
#: Fast references first: a partial run already shows them.
CONTENDERS: dict[str, Callable[[], object]] = {
    "LinearSVC-bal": lambda: LinearSVC(class_weight="balanced"),
    "LR-bal": lambda: LogisticRegression(class_weight="balanced", max_iter=1000),
    "SGD-bal": lambda: SGDClassifier(class_weight="balanced", random_state=SEED),
    "ComplementNB": ComplementNB,
    "ERM": lambda: LDAMDRWClassifier(loss="ce", schedule="none", random_state=SEED),
    "LDAM-DRW": lambda: LDAMDRWClassifier(random_state=SEED),
    "LDAM-DRW x5": lambda: CrossFitEnsembleClassifier(random_state=SEED),
    "L2RW": lambda: L2RWClassifier(random_state=SEED),
    "MW-Net": lambda: MetaWeightNetClassifier(random_state=SEED),
}


def long_tailed_banking77(
    train: pd.DataFrame, imbalance_ratio: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """BANKING77-LT training texts and labels: one subsample of ``train``.

    The class order comes from the fixed ``SEED`` (the same for every
    subsample), the rows kept from ``seed``.
    """
    labels = train["category"].to_numpy()
    classes, counts = np.unique(labels, return_counts=True)
    order = np.random.RandomState(SEED).permutation(classes)
    return make_long_tailed(
        train["text"].to_numpy(),
        labels,
        imbalance_ratio,
        n_max=int(counts.max()),
        class_order=order,
        random_state=seed,
    )


def load_splits(name: str, data_home: Path, n_splits: int = N_SPLITS) -> list[Split]:
    """The first ``n_splits`` splits of one data set, the same for every contender."""
    if name == "sms_spam":
        frame = pd.read_csv(data_home / "sms_spam.csv")
        texts, labels = frame["text"].astype(str).to_numpy(), frame["label"].to_numpy()
        cv = StratifiedKFold(N_SPLITS, shuffle=True, random_state=SEED)
        folds = list(cv.split(texts, labels))[:n_splits]
        return [(texts[tr], labels[tr], texts[te], labels[te]) for tr, te in folds]
    train = pd.read_csv(data_home / "banking77_train.csv")
    test = pd.read_csv(data_home / "banking77_test.csv")
    X_test, y_test = test["text"].astype(str).to_numpy(), test["category"].to_numpy()
    return [
        (*long_tailed_banking77(train, BANKING77_LT[name], seed), X_test, y_test)
        for seed in range(n_splits)
    ]


def few_shot_accuracy(y_train, y_test, pred) -> float:
    """Recall of the test rows whose class has fewer than ``FEW_SHOT`` training rows.

    NaN when no class is that rare.
    """
    classes, counts = np.unique(y_train, return_counts=True)
    rows = np.isin(y_test, classes[counts < FEW_SHOT])
    return float(np.mean(pred[rows] == y_test[rows])) if rows.any() else float("nan")


def score_split(make: Callable[[], object], split: Split) -> dict:
    """Fit the pipeline on one split's training texts; the metrics on its test texts."""
    X_train, y_train, X_test, y_test = split
    model = make_pipeline(vectorizer(), make())
    start = time.perf_counter()
    with warnings.catch_warnings():
        # Convergence and single-class warnings are part of what is measured.
        warnings.simplefilter("ignore")
        try:
            model.fit(X_train, y_train)
        except FloatingPointError:
            # NonFiniteGuard's report of a diverged fit: a result, not a crash.
            return {"diverged": True, "fit_seconds": time.perf_counter() - start}
    fit_seconds = time.perf_counter() - start
    pred = model.predict(X_test)
    return {
        "diverged": False,
        "macro_f1": f1_score(y_test, pred, average="macro"),
        "balanced_accuracy": balanced_accuracy_score(y_test, pred),
        "few_shot_accuracy": few_shot_accuracy(y_train, y_test, pred),
        "fit_seconds": fit_seconds,
    }


def run(
    datasets: dict[str, list[Split]],
    contenders: dict[str, Callable[[], object]],
    cache: Cache,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Score every contender on every split not in the cache; all per-split rows."""
    for contender, make in contenders.items():
        for dataset, splits in datasets.items():
            for index, split in enumerate(splits):
                if cache.get(dataset, contender, index) is None:
                    result = score_split(make, split)
                    cache.put(dataset, contender, index, result)
                    outcome = (
                        "diverged" if result["diverged"] else f"macro-F1 {result['macro_f1']:.3f}"
                    )
                    log(
                        f"{dataset:>16} {contender:>14} split {index}: "
                        f"{outcome} ({result['fit_seconds']:.1f} s)"
                    )
    rows = [
        {"dataset": d, "contender": c, "split": i, **cache.get(d, c, i)}
        for c in contenders
        for d, splits in datasets.items()
        for i in range(len(splits))
    ]
    return pd.DataFrame(rows)


def summarize(per_split: pd.DataFrame) -> pd.DataFrame:
    """Mean of each metric (median of the fit seconds) per data set and contender."""
    grouped = per_split.groupby(["dataset", "contender"], sort=False)
    table = grouped[["macro_f1", "balanced_accuracy", "few_shot_accuracy"]].mean()
    table["median_fit_seconds"] = grouped["fit_seconds"].median()
    table["diverged"] = grouped["diverged"].sum()
    return table


def plot(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(table.index.get_level_values("dataset")))
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.5), squeeze=False)
    for ax, dataset in zip(axes[0], datasets, strict=True):
        rows = table.loc[dataset]
        positions = np.arange(len(rows))
        ax.barh(positions - 0.2, rows["macro_f1"], height=0.4, label="macro-F1")
        ax.barh(positions + 0.2, rows["balanced_accuracy"], height=0.4, label="balanced acc.")
        ax.set_yticks(positions, rows.index)
        ax.invert_yaxis()
        low = float(rows[["macro_f1", "balanced_accuracy"]].min().min())
        ax.set_xlim(max(0.0, low - 0.05), 1.0)
        ax.set_title(dataset)
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="lower left")
    fig.suptitle("Text: TF-IDF pipelines, mean over 3 splits")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(per_split: pd.DataFrame, out: Path, log: Callable[[str], None] = print) -> pd.DataFrame:
    """Print and write the table (markdown next to the JSON, and a plot)."""
    table = summarize(per_split)
    text = table.round(3).to_markdown()
    log(f"\n{text}")
    stem = out.with_suffix("")
    Path(f"{stem}.md").write_text(f"{machine()}\n\n{text}\n")
    plot(table, Path(f"{stem}.png"))
    return table


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"only the first split of {', '.join(QUICK)}"
    )
    parser.add_argument("--datasets", help=f"comma-separated names out of {', '.join(DATASETS)}")
    parser.add_argument(
        "--contenders", help=f"comma-separated names out of {', '.join(CONTENDERS)}"
    )
    parser.add_argument("--data-home", type=Path, default=DEFAULT_DATA_HOME)
    parser.add_argument("--out", type=Path, default=Path("results/bench_text.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    def pick(given: str | None, default: list[str], known: list[str], what: str) -> list[str]:
        names = given.split(",") if given else default
        if set(names) - set(known):
            parser.error(f"unknown {what} {sorted(set(names) - set(known))}; choose from {known}")
        return names

    names = pick(args.datasets, QUICK if args.quick else DATASETS, DATASETS, "datasets")
    chosen = pick(args.contenders, list(CONTENDERS), list(CONTENDERS), "contenders")
    n_splits = 1 if args.quick else N_SPLITS
    datasets = {name: load_splits(name, args.data_home, n_splits) for name in names}
    per_split = run(datasets, {name: CONTENDERS[name] for name in chosen}, Cache(args.out))
    return report(per_split, args.out)


if __name__ == "__main__":
    main()
