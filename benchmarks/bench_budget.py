"""Short budgets on large dense data: quality and fit time against HGB-bal.

On a CPU the default ``LDAMDRWClassifier()`` (five packed members, 40 of its
100 epochs) takes minutes at 100,000 rows, and users shorten ``max_epochs``.
This benchmark fits ``HistGradientBoostingClassifier(class_weight="balanced")``
and ``LDAMDRWClassifier(max_epochs=m)`` for each budget ``m`` on one
synthetic imbalanced set (``make_classification``: 40 features, 3 classes of
90, 8 and 2 %, three clusters a class, 1 % label noise), a stratified third
held out, one PyTorch thread, and prints balanced accuracy, macro-F1 and fit
seconds (docs/quality.md, "short budgets").

Run ``python benchmarks/bench_budget.py`` (120,000 rows, about 4 minutes;
``--n-samples`` and ``--budgets`` to change them).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import balanced_accuracy_score, f1_score
from sklearn.model_selection import train_test_split

from ldam_sklearn import LDAMDRWClassifier

SEED = 0


def make_data(n_samples: int) -> tuple[np.ndarray, ...]:
    """The synthetic set, split into training and test rows."""
    X, y = make_classification(
        n_samples=n_samples,
        n_features=40,
        n_informative=15,
        n_redundant=5,
        n_classes=3,
        n_clusters_per_class=3,
        weights=[0.9, 0.08, 0.02],
        flip_y=0.01,
        class_sep=0.8,
        random_state=SEED,
    )
    return train_test_split(X.astype(np.float32), y, test_size=1 / 3, stratify=y, random_state=SEED)


def run(n_samples: int, budgets: list[int]) -> pd.DataFrame:
    X_train, X_test, y_train, y_test = make_data(n_samples)
    contenders = {"HGB-bal": HistGradientBoostingClassifier(class_weight="balanced")}
    contenders |= {f"LDAM-DRW, max_epochs={m}": LDAMDRWClassifier(max_epochs=m) for m in budgets}
    rows = []
    for name, estimator in contenders.items():
        estimator.set_params(random_state=SEED)
        start = time.perf_counter()
        estimator.fit(X_train, y_train)
        seconds = time.perf_counter() - start
        predicted = estimator.predict(X_test)
        rows.append(
            {
                "contender": name,
                "balanced_accuracy": balanced_accuracy_score(y_test, predicted),
                "macro_f1": f1_score(y_test, predicted, average="macro"),
                "fit_seconds": seconds,
            }
        )
        print(rows[-1], flush=True)
    return pd.DataFrame(rows).set_index("contender")


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-samples", type=int, default=120_000)
    parser.add_argument("--budgets", default="10,20,100", help="comma-separated max_epochs")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    table = run(args.n_samples, [int(m) for m in args.budgets.split(",")])
    print(table.round(3).to_markdown())
    return table


if __name__ == "__main__":
    main()
