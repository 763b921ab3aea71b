"""Quality on real imbalanced tabular data: the development suite of issue #15.

The 20 binary sets of imbalanced-learn's benchmark collection found in
``<data-home>/imblearn_zenodo/`` (``x{ID}data.npz``, keys ``data`` and
``label``, 1 = minority) and UCI Yeast with its 10 classes
(``<data-home>/uci_yeast_multiclass.csv``). Every contender runs behind a
``StandardScaler`` on the same 3-fold stratified splits (fixed seed), and
is scored by balanced accuracy (primary), macro-F1, G-mean and fit seconds;
the summary gives the mean over datasets and the mean rank (1 = best
balanced accuracy on a dataset, ties share their mean rank).

Results are cached per (dataset, contender, fold) in the JSON file
(``--out``), so a long run can be split over several invocations
(``--datasets``, ``--contenders``) and an interrupted one resumes where it
stopped. Each run prints the table over the datasets for which every
selected contender is complete, and writes ``bench_real.md`` and
``bench_real.png`` (per-dataset balanced accuracy and mean rank) next to the
JSON.

Run ``python benchmarks/bench_real.py`` (all sets; ``--quick`` for 5 small
ones); ``--contenders "HGB-bal,LDAM-DRW x5 n_jobs=-1"`` times the ensemble
with its members fitted in parallel, a row the default run leaves out. Fast
contenders come first, so an early look at a partial run already shows the
references.

Threads: by default PyTorch runs one intra-op thread per fit (small networks
slow down many times over when their threads compete with anything else),
while the native thread pools (HGB-bal's OpenMP, BLAS) keep their defaults,
one thread per core. ``--threads N`` gives every contender the same N
threads: PyTorch's and, through ``threadpoolctl``, the native pools.
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import json
import os
import platform
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from imblearn.ensemble import BalancedRandomForestClassifier, EasyEnsembleClassifier
from imblearn.metrics import geometric_mean_score
from imblearn.over_sampling import RandomOverSampler
from imblearn.pipeline import make_pipeline as make_imb_pipeline
from scipy.stats import rankdata
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_info, threadpool_limits

from ldam_sklearn import (
    CrossFitEnsembleClassifier,
    L2RWClassifier,
    LDAMDRWClassifier,
    MetaWeightNetClassifier,
)

#: Zenodo record 61452 ID -> name, as in imbalanced-learn's ``fetch_datasets``.
ZENODO = {
    1: "ecoli",
    2: "optical_digits",
    3: "satimage",
    4: "pen_digits",
    5: "abalone",
    6: "sick_euthyroid",
    7: "spectrometer",
    8: "car_eval_34",
    10: "us_crime",
    11: "yeast_ml8",
    13: "libras_move",
    14: "thyroid_sick",
    16: "arrhythmia",
    18: "oil",
    19: "car_eval_4",
    20: "wine_quality",
    21: "letter_img",
    22: "yeast_me2",
    24: "ozone_level",
    25: "mammography",
}
YEAST = "yeast_multiclass"
DATASETS = [*ZENODO.values(), YEAST]
#: Small and varied: two binary sets under 400 rows, a wide one, a mid-sized
#: one with ratio 1:28, and the 10-class set.
QUICK = ["ecoli", "libras_move", "oil", "yeast_me2", YEAST]

SEED = 0
N_FOLDS = 3
DEFAULT_DATA_HOME = Path(__file__).resolve().parents[2] / "shared" / "data"


def _scaled(estimator):
    return make_pipeline(StandardScaler(), estimator)


def _optional(module: str, build: Callable[[], object]) -> Callable[[], object] | str:
    """A contender factory, or the note saying why it is skipped."""
    try:
        __import__(module)
    except ImportError:
        return f"skipped: {module} is not installed (pip install {module})"
    return build


def _lightgbm():
    from lightgbm import LGBMClassifier

    return _scaled(LGBMClassifier(class_weight="balanced", random_state=SEED, verbose=-1))


def _realmlp():
    from pytabkit import RealMLP_TD_Classifier

    return _scaled(RealMLP_TD_Classifier(random_state=SEED, n_threads=1))


def _tabm():
    from pytabkit import TabM_D_Classifier

    return _scaled(TabM_D_Classifier(random_state=SEED, n_threads=1))


def _erm():
    return LDAMDRWClassifier(loss="ce", schedule="none", recipe="paper", random_state=SEED)


#: Contender name -> factory of a fresh estimator (or a note when skipped).
#: Fast references first: a partial run already shows them.
CONTENDERS: dict[str, Callable[[], object] | str] = {
    "LR-bal": lambda: _scaled(LogisticRegression(class_weight="balanced", max_iter=1000)),
    "HGB-bal": lambda: _scaled(
        HistGradientBoostingClassifier(class_weight="balanced", random_state=SEED)
    ),
    "BRF": lambda: _scaled(
        BalancedRandomForestClassifier(
            sampling_strategy="all", replacement=True, bootstrap=False, random_state=SEED
        )
    ),
    "EasyEnsemble": lambda: _scaled(EasyEnsembleClassifier(random_state=SEED)),
    # ERM is plain training: recipe="paper" adds nothing to the loss and the
    # schedule, where the default recipe adds a post-hoc adjustment.
    "ERM": lambda: _scaled(_erm()),
    "ERM+ROS": lambda: make_imb_pipeline(
        StandardScaler(), RandomOverSampler(random_state=SEED), _erm()
    ),
    "LDAM-DRW (paper)": lambda: _scaled(LDAMDRWClassifier(recipe="paper", random_state=SEED)),
    "LDAM": lambda: _scaled(LDAMDRWClassifier(schedule="none", random_state=SEED)),
    "LDAM-DRW": lambda: _scaled(LDAMDRWClassifier(random_state=SEED)),
    "LDAM-DRW f1": lambda: _scaled(LDAMDRWClassifier(tau_scoring="f1_macro", random_state=SEED)),
    "LDAM-DRW trees": lambda: _scaled(LDAMDRWClassifier(tree_blend=True, random_state=SEED)),
    "LDAM-DRW trees f1": lambda: _scaled(
        LDAMDRWClassifier(tree_blend=True, tau_scoring="f1_macro", random_state=SEED)
    ),
    "LDAM-DRW x5": lambda: _scaled(CrossFitEnsembleClassifier(random_state=SEED)),
    "LDAM-DRW x5 n_jobs=-1": lambda: _scaled(
        CrossFitEnsembleClassifier(random_state=SEED, n_jobs=-1)
    ),
    "L2RW": lambda: _scaled(L2RWClassifier(random_state=SEED)),
    "MW-Net": lambda: _scaled(MetaWeightNetClassifier(random_state=SEED)),
    "LightGBM-bal": _optional("lightgbm", _lightgbm),
    "RealMLP-TD": _optional("pytabkit", _realmlp),
    "TabM-D": _optional("pytabkit", _tabm),
}


#: Rows of fit time only, left out unless named: the same ensemble (the same
#: scores) with its members fitted side by side, as HGB-bal uses every core.
FIT_TIME_ONLY = ("LDAM-DRW x5 n_jobs=-1",)


def load_dataset(name: str, data_home: Path) -> tuple[np.ndarray, np.ndarray]:
    """``X`` (float64) and integer-coded ``y`` of one suite dataset."""
    if name == YEAST:
        frame = pd.read_csv(data_home / "uci_yeast_multiclass.csv")
        labels = frame.pop("label").to_numpy()
        return frame.to_numpy(dtype=np.float64), np.unique(labels, return_inverse=True)[1]
    ids = {v: k for k, v in ZENODO.items()}
    with np.load(data_home / "imblearn_zenodo" / f"x{ids[name]}data.npz") as raw:
        return raw["data"].astype(np.float64), (raw["label"] == 1).astype(np.int64)


def folds(y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """The suite's stratified splits: the same for every contender."""
    cv = StratifiedKFold(N_FOLDS, shuffle=True, random_state=SEED)
    return list(cv.split(np.zeros((len(y), 1)), y))


def score_fold(make: Callable[[], object], X, y, train, test) -> dict:
    """Fit on one fold's training rows; the metrics on its test rows."""
    model = make()
    start = time.perf_counter()
    with warnings.catch_warnings():
        # Convergence and single-class warnings are part of what is measured,
        # not something to print 60 times.
        warnings.simplefilter("ignore")
        model.fit(X[train], y[train])
    fit_seconds = time.perf_counter() - start
    pred = model.predict(X[test])
    return {
        "balanced_accuracy": balanced_accuracy_score(y[test], pred),
        "macro_f1": f1_score(y[test], pred, average="macro"),
        "g_mean": float(geometric_mean_score(y[test], pred, average="multiclass")),
        "fit_seconds": fit_seconds,
    }


class Cache:
    """Per-(dataset, contender, fold) results in a JSON file, safe for parallel runs."""

    def __init__(self, path: Path):
        self.path = path
        self.results = self._read()

    def _read(self) -> dict:
        if not self.path.exists():
            return {}
        return json.loads(self.path.read_text()).get("results", {})

    @staticmethod
    def key(dataset: str, contender: str, fold: int) -> str:
        return f"{dataset}|{contender}|{fold}"

    def get(self, dataset: str, contender: str, fold: int) -> dict | None:
        return self.results.get(self.key(dataset, contender, fold))

    def put(self, dataset: str, contender: str, fold: int, result: dict) -> None:
        # Re-read under a lock and merge, so that runs on other datasets or
        # contenders writing the same file keep each other's results.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.results = {**self._read(), self.key(dataset, contender, fold): result}
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"machine": machine(), "results": self.results}, indent=1))
            os.replace(tmp, self.path)


def machine() -> dict:
    return {
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "native_threads": max((pool["num_threads"] for pool in threadpool_info()), default=None),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="minutes"),
    }


def run(
    datasets: dict[str, tuple[np.ndarray, np.ndarray]],
    contenders: dict[str, Callable[[], object]],
    cache: Cache,
    log: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Score every contender on every fold not in the cache; all per-fold rows.

    Contenders are the outer loop, so that the fast references finish on
    every dataset before the slow networks start.
    """
    for contender, make in contenders.items():
        for dataset, (X, y) in datasets.items():
            for fold, (train, test) in enumerate(folds(y)):
                if cache.get(dataset, contender, fold) is None:
                    result = score_fold(make, X, y, train, test)
                    cache.put(dataset, contender, fold, result)
                    log(
                        f"{dataset:>16} {contender:>14} fold {fold}: "
                        f"bacc {result['balanced_accuracy']:.3f} "
                        f"({result['fit_seconds']:.1f} s)"
                    )
    rows = [
        {"dataset": d, "contender": c, "fold": f, **cache.get(d, c, f)}
        for c in contenders
        for d in datasets
        for f in range(N_FOLDS)
    ]
    return pd.DataFrame(rows)


def summarize(per_fold: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-dataset balanced accuracy (datasets x contenders) and the summary per contender."""
    means = per_fold.groupby(["dataset", "contender"], sort=False).mean(numeric_only=True)
    bacc = means["balanced_accuracy"].unstack("contender")
    order = list(dict.fromkeys(per_fold["contender"]))
    bacc = bacc[order]
    # Rank 1 is the best balanced accuracy on a dataset; ties share their mean rank.
    ranks = bacc.apply(lambda row: pd.Series(rankdata(-row.to_numpy()), index=row.index), axis=1)
    summary = pd.DataFrame(
        {
            "balanced_accuracy": bacc.mean(),
            "mean_rank": ranks.mean(),
            "macro_f1": means["macro_f1"].unstack("contender")[order].mean(),
            "g_mean": means["g_mean"].unstack("contender")[order].mean(),
            "median_fit_seconds": per_fold.groupby("contender")["fit_seconds"].median()[order],
            "wins": (ranks == ranks.min(axis=1).to_numpy()[:, None]).sum(),
        }
    )
    return bacc, summary


def plot(bacc: pd.DataFrame, summary: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(
        1, 2, figsize=(14, 0.35 * len(bacc) + 2.5), gridspec_kw={"width_ratios": [3, 1]}
    )
    markers = "osD^v<>phX*P"
    positions = np.arange(len(bacc))
    for i, contender in enumerate(bacc.columns):
        left.scatter(
            bacc[contender], positions, label=contender, marker=markers[i % len(markers)], s=28
        )
    left.set_yticks(positions, bacc.index)
    left.invert_yaxis()
    left.set_xlabel("balanced accuracy (mean of 3 folds)")
    left.grid(axis="x", alpha=0.3)
    left.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=6)
    ranked = summary.sort_values("mean_rank")
    right.barh(ranked.index, ranked["mean_rank"], color="tab:gray")
    right.invert_yaxis()
    right.set_xlabel("mean rank (1 = best)")
    fig.suptitle(f"Balanced accuracy on {len(bacc)} real imbalanced sets, 3-fold CV")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def report(per_fold: pd.DataFrame, out: Path, log: Callable[[str], None] = print) -> pd.DataFrame:
    """Print and write the table of the datasets that every contender completed."""
    bacc, summary = summarize(per_fold)
    table = summary.round(3).to_markdown()
    per_dataset = bacc.round(3).to_markdown()
    log(f"\nPer dataset, balanced accuracy:\n{per_dataset}")
    log(f"\nOver {len(bacc)} datasets:\n{table}")
    stem = out.with_suffix("")
    Path(f"{stem}.md").write_text(
        f"{machine()}\n\nOver {len(bacc)} datasets:\n\n{table}\n\n"
        f"Per dataset, balanced accuracy:\n\n{per_dataset}\n"
    )
    plot(bacc, summary, Path(f"{stem}.png"))
    return summary


def main(argv: list[str] | None = None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    parser.add_argument("--datasets", help="comma-separated names (default: all)")
    parser.add_argument(
        "--contenders", help=f"comma-separated names out of {', '.join(CONTENDERS)}"
    )
    parser.add_argument("--data-home", type=Path, default=DEFAULT_DATA_HOME)
    parser.add_argument("--out", type=Path, default=Path("results/bench_real.json"))
    parser.add_argument(
        "--threads", type=int, help="threads of every contender (default: PyTorch 1, others all)"
    )
    args = parser.parse_args(argv)

    names = args.datasets.split(",") if args.datasets else QUICK if args.quick else DATASETS
    unknown = set(names) - set(DATASETS)
    if unknown:
        parser.error(f"unknown datasets {sorted(unknown)}; choose from {DATASETS}")
    default = [name for name in CONTENDERS if name not in FIT_TIME_ONLY]
    chosen = args.contenders.split(",") if args.contenders else default
    unknown = set(chosen) - set(CONTENDERS)
    if unknown:
        parser.error(f"unknown contenders {sorted(unknown)}; choose from {list(CONTENDERS)}")
    contenders = {}
    for name in chosen:
        if isinstance(CONTENDERS[name], str):
            print(f"{name}: {CONTENDERS[name]}")
        else:
            contenders[name] = CONTENDERS[name]
    datasets = {name: load_dataset(name, args.data_home) for name in names}
    saved = torch.get_num_threads()
    torch.set_num_threads(args.threads or 1)
    try:
        with threadpool_limits(args.threads):
            per_fold = run(datasets, contenders, Cache(args.out))
            return report(per_fold, args.out)
    finally:
        torch.set_num_threads(saved)


if __name__ == "__main__":
    main()
