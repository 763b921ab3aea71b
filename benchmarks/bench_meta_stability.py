"""Do the default meta-reweighting estimators ever diverge on the real-data suite?

Fits ``make_pipeline(StandardScaler(), L2RWClassifier(random_state=seed))``
and the same with ``MetaWeightNetClassifier`` on the largest sets of
``bench_real.py``'s suite (issue #16 asks for no NaN and no divergence
error over 3 seeds). Each seed draws its own 3-fold stratified split
(``random_state=seed``) and seeds the estimator; ``--folds`` says how many
of the three folds are fitted. A fit counts as diverged when it raises
(``FloatingPointError`` from the divergence guard, or anything else), when
a training loss in its history is not finite, or when ``predict_proba``
on the test rows is not finite.

Run ``python benchmarks/bench_meta_stability.py`` (5 largest sets, seeds
0, 1, 2, one fold each); results go to a JSON file, one entry per fit,
written as each fit ends, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from bench_real import DATASETS, DEFAULT_DATA_HOME, N_FOLDS, load_dataset, machine
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ldam_sklearn import L2RWClassifier, MetaWeightNetClassifier

ESTIMATORS = {"L2RW": L2RWClassifier, "MW-Net": MetaWeightNetClassifier}


def largest(n: int, data_home: Path) -> list[str]:
    """The ``n`` suite sets with the most rows, largest first."""
    sizes = {name: len(load_dataset(name, data_home)[1]) for name in DATASETS}
    return sorted(sizes, key=sizes.get, reverse=True)[:n]


def fit_once(name: str, seed: int, X, y, train, test) -> dict:
    """One default fit; whether it diverged, and its balanced accuracy when it did not."""
    model = make_pipeline(StandardScaler(), ESTIMATORS[name](random_state=seed))
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            # Small-class and convergence warnings are not what is measured here.
            warnings.simplefilter("ignore")
            model.fit(X[train], y[train])
    except Exception as error:  # every failure of a default fit is a result
        return {"diverged": True, "error": f"{type(error).__name__}: {error}"}
    seconds = time.perf_counter() - start
    losses = model[-1].history[:, "train_loss"]
    proba = model.predict_proba(X[test])
    finite = all(math.isfinite(loss) for loss in losses) and bool(np.isfinite(proba).all())
    return {
        "diverged": not finite,
        "error": None if finite else "non-finite training loss or probabilities",
        "balanced_accuracy": balanced_accuracy_score(y[test], model.classes_[proba.argmax(1)]),
        "fit_seconds": seconds,
    }


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", help="comma-separated names (default: the 5 largest)")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated random states")
    parser.add_argument("--folds", type=int, default=1, help=f"folds per seed (1 to {N_FOLDS})")
    parser.add_argument("--estimators", default=",".join(ESTIMATORS))
    parser.add_argument("--data-home", type=Path, default=DEFAULT_DATA_HOME)
    parser.add_argument("--out", type=Path, default=Path("results/bench_meta_stability.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)

    names = args.datasets.split(",") if args.datasets else largest(5, args.data_home)
    seeds = [int(seed) for seed in args.seeds.split(",")]
    rows: list[dict] = []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for name in names:
        X, y = load_dataset(name, args.data_home)
        for seed in seeds:
            cv = StratifiedKFold(N_FOLDS, shuffle=True, random_state=seed)
            splits = list(cv.split(np.zeros((len(y), 1)), y))[: args.folds]
            for fold, (train, test) in enumerate(splits):
                for estimator in args.estimators.split(","):
                    result = fit_once(estimator, seed, X, y, train, test)
                    rows.append(
                        {"dataset": name, "estimator": estimator, "seed": seed, "fold": fold}
                        | result
                    )
                    args.out.write_text(json.dumps({"machine": machine(), "fits": rows}, indent=1))
                    shown = result["error"] or (
                        f"bacc {result['balanced_accuracy']:.3f} ({result['fit_seconds']:.1f} s)"
                    )
                    print(f"{name:>16} {estimator:>7} seed {seed} fold {fold}: {shown}", flush=True)
    diverged = [row for row in rows if row["diverged"]]
    print(f"\n{len(diverged)} of {len(rows)} fits diverged")
    for estimator in args.estimators.split(","):
        scores = [r["balanced_accuracy"] for r in rows if r["estimator"] == estimator]
        if scores:
            print(f"{estimator}: mean balanced accuracy {np.mean(scores):.3f} over {len(scores)}")
    return rows


if __name__ == "__main__":
    main()
