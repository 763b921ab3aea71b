"""Plain or regularised packed members by training rows per feature.

``LDAMDRWClassifier()`` trains its packed members as in the paper (no mixup
or clipping, weight decay 2e-4) on dense data of at least
``_ROWS_PER_FEATURE`` training rows per feature (with enough epochs or
steps), and with the regularised tabular training below that;
``CrossFitEnsembleClassifier()``'s default members follow the same rule
(``--estimator ensemble``). The development suite has no set between 4 and
12 rows per feature, so this benchmark fills the gap with imbalanced sets
of every size around it:

- scikit-learn's bundled sets made imbalanced: breast cancer made
  long-tailed at ratios 5, 10 and 20, iris at ratio 10
  (``make_long_tailed``, the class order drawn from the seed), diabetes'
  top 10 % of targets against the rest, and digits' ones against the rest
  (600 rows);
- stratified subsamples of suite sets (``--data-home``, ``../shared/data``
  by default; left out when absent), of 300 to 1,500 rows.

Each set (two seeds of the subsample or of the class order) is scored with
the rule's threshold forced to 0 (plain) and to infinity (regularised),
3-fold stratified CV as in ``bench_real.py`` (``StandardScaler`` in front),
one PyTorch thread. It prints each fit's balanced accuracy and macro-F1 and
the mean difference (regularised - plain) per band of rows per feature
(docs/quality.md, "plain members").

Run ``python benchmarks/bench_plain_members.py`` (about 10 minutes, the
ensemble 30; ``--quick``: the bundled sets, one seed).
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from bench_real import DEFAULT_DATA_HOME, _scaled, folds, load_dataset
from sklearn import datasets
from sklearn.metrics import balanced_accuracy_score, f1_score
from sklearn.model_selection import train_test_split

import ldam_sklearn.ensemble as ensemble
import ldam_sklearn.ldam_drw as ldam_drw
from ldam_sklearn import CrossFitEnsembleClassifier, LDAMDRWClassifier
from ldam_sklearn.datasets import make_long_tailed

SEEDS = (0, 1)
#: ``--estimator`` -> the default estimator whose members follow the rule.
ESTIMATORS = {"ldam-drw": LDAMDRWClassifier, "ensemble": CrossFitEnsembleClassifier}
#: (suite set, rows of its stratified subsample): 6.7 to 14.8 training rows per feature.
SUBSAMPLES = [
    ("us_crime", 1000),
    ("ozone_level", 1000),
    ("ozone_level", 1400),
    ("sick_euthyroid", 600),
    ("sick_euthyroid", 900),
    ("thyroid_sick", 700),
    ("thyroid_sick", 1000),
    ("optical_digits", 1000),
    ("optical_digits", 1400),
    ("satimage", 500),
    ("satimage", 800),
    ("yeast_ml8", 1500),
    ("car_eval_34", 300),
    ("oil", 600),
]
#: Bands of training rows per feature in the summary.
BANDS = [0, 8, 12, 16, np.inf]

#: A set: seed -> (X, y).
MakeSet = Callable[[int], tuple[np.ndarray, np.ndarray]]


def _long_tailed(X, y, ratio: float) -> MakeSet:
    def make(seed: int):
        classes, counts = np.unique(y, return_counts=True)
        order = np.random.RandomState(seed).permutation(classes)
        return make_long_tailed(
            X, y, ratio, n_max=int(counts.max()), class_order=order, random_state=seed
        )

    return make


def _subsample(X, y, n: int) -> MakeSet:
    def make(seed: int):
        if n >= len(y):
            return X, y
        rows, _ = train_test_split(np.arange(len(y)), train_size=n, stratify=y, random_state=seed)
        return X[rows], y[rows]

    return make


def bundled_sets() -> dict[str, MakeSet]:
    X, y = datasets.load_breast_cancer(return_X_y=True)
    sets = {f"breast_cancer, ratio {r}": _long_tailed(X, y, r) for r in (5, 10, 20)}
    X, y = datasets.load_iris(return_X_y=True)
    sets["iris, ratio 10"] = _long_tailed(X, y, 10)
    X, y = datasets.load_diabetes(return_X_y=True)
    sets["diabetes, top 10 %"] = _subsample(X, (y >= np.quantile(y, 0.9)).astype(int), len(y))
    X, y = datasets.load_digits(return_X_y=True)
    sets["digits, ones, 600 rows"] = _subsample(X, (y == 1).astype(int), 600)
    return sets


def suite_sets(data_home: Path) -> dict[str, MakeSet]:
    if not (data_home / "imblearn_zenodo").is_dir():
        print(f"{data_home}: no suite sets, the bundled sets only")
        return {}
    sets = {}
    for name, n in SUBSAMPLES:
        X, y = load_dataset(name, data_home)
        sets[f"{name}, {n} rows"] = _subsample(X, y, n)
    return sets


def score(estimator: type, X, y, threshold: float) -> tuple[float, float]:
    """Mean balanced accuracy and macro-F1 of the default over the 3 folds."""
    saved = ldam_drw._ROWS_PER_FEATURE
    ldam_drw._ROWS_PER_FEATURE = ensemble._ROWS_PER_FEATURE = threshold
    scores = []
    try:
        for train, test in folds(y):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = _scaled(estimator(random_state=0)).fit(X[train], y[train])
            predicted = model.predict(X[test])
            scores.append(
                (
                    balanced_accuracy_score(y[test], predicted),
                    f1_score(y[test], predicted, average="macro"),
                )
            )
    finally:
        ldam_drw._ROWS_PER_FEATURE = ensemble._ROWS_PER_FEATURE = saved
    return tuple(np.mean(scores, axis=0))


def run(
    sets: dict[str, MakeSet], seeds: tuple[int, ...], estimator: type = LDAMDRWClassifier
) -> pd.DataFrame:
    rows = []
    for name, make in sets.items():
        for seed in seeds:
            X, y = make(seed)
            y = np.unique(y, return_inverse=True)[1]
            plain = score(estimator, X, y, 0)
            regularised = score(estimator, X, y, np.inf)
            rows.append(
                {
                    "set": name,
                    "seed": seed,
                    # Training rows: two of the three folds.
                    "rows_per_feature": len(y) * 2 / 3 / X.shape[1],
                    "plain_bacc": plain[0],
                    "regularised_bacc": regularised[0],
                    "plain_f1": plain[1],
                    "regularised_f1": regularised[1],
                }
            )
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def summarize(fits: pd.DataFrame) -> pd.DataFrame:
    """Per band of rows per feature: fits, mean differences, fits better regularised."""
    gain = pd.DataFrame(
        {
            "bacc": fits["regularised_bacc"] - fits["plain_bacc"],
            "f1": fits["regularised_f1"] - fits["plain_f1"],
        }
    )
    band = pd.cut(fits["rows_per_feature"], BANDS, right=False)
    grouped = gain.groupby(band, observed=True)
    return pd.DataFrame(
        {
            "fits": grouped.size(),
            "bacc_gain": grouped["bacc"].mean(),
            "bacc_better": grouped["bacc"].apply(lambda d: int((d > 0).sum())),
            "f1_gain": grouped["f1"].mean(),
            "f1_better": grouped["f1"].apply(lambda d: int((d > 0).sum())),
        }
    )


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the bundled sets, one seed")
    parser.add_argument("--data-home", type=Path, default=DEFAULT_DATA_HOME)
    parser.add_argument("--estimator", choices=ESTIMATORS, default="ldam-drw")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    sets = bundled_sets() if args.quick else {**bundled_sets(), **suite_sets(args.data_home)}
    fits = run(sets, SEEDS[:1] if args.quick else SEEDS, ESTIMATORS[args.estimator])
    print(fits.round(3).to_markdown(index=False))
    table = summarize(fits)
    print(table.round(3).to_markdown())
    return table


if __name__ == "__main__":
    main()
