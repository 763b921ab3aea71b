"""Running a comparison: :func:`run_comparison`, its progress output and thread limit."""

from __future__ import annotations

import platform
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any

import imblearn
import numpy as np
import sklearn
import skorch
import torch
from imblearn.pipeline import make_pipeline
from sklearn.base import clone
from skorch.callbacks import Callback
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from .._version import __version__
from ..base import resolve_device
from .data import ComparisonData
from .methods import METHODS, Method, NetSettings
from .metrics import FEW_SHOT_MAX, MANY_SHOT_MIN, SCORES, score, shot_groups

__all__ = ["run_comparison"]


#: Seconds between two progress lines of one fit when stderr is not a terminal.
_LINE_INTERVAL_S = 30.0


class _EpochTicker(Callback):
    """skorch callback reporting every finished epoch to a :class:`_Progress`."""

    def __init__(self, progress: _Progress):
        self.progress = progress

    def on_train_begin(self, net, **kwargs):
        # The default recipe trains a share of max_epochs (packed members,
        # sparse input) and sets max_epochs to it while it trains.
        self.progress.resize(net.max_epochs)

    def on_epoch_end(self, net, **kwargs):
        self.progress.epoch(len(net.history), net.history[-1].get("train_bacc"))


class _Progress:
    """Progress of a comparison on stderr.

    On a terminal: a tqdm bar over the runs and one over the epochs of the
    current fit (ETA and training balanced accuracy). Otherwise (a log file,
    a pipe): one line per run, and a line every ``_LINE_INTERVAL_S`` seconds
    of a long fit, so that a 5-minute fit is not 5 minutes of silence.
    """

    def __init__(self, total: int, enabled: bool):
        self.stream = sys.stderr
        self.enabled = enabled
        self.live = enabled and self.stream.isatty()
        self.interval = _LINE_INTERVAL_S
        self.total, self.done = total, 0
        self.runs = tqdm(
            total=total, desc="runs", unit="run", file=self.stream, disable=not self.live
        )
        self.epochs = None
        self.fit = ("", 0, 0, 0.0, 0.0)  # label, seed, epochs, start, time of the last line

    def start(self, label: str, seed: int, epochs: int | None) -> Callback | None:
        """Announce a run; return the callback that reports its epochs, if it has any."""
        self.runs.set_postfix_str(f"{label}, seed {seed}")
        if not (self.enabled and epochs):
            return None
        now = time.perf_counter()
        self.fit = (label, seed, epochs, now, now)
        if self.live:
            self.epochs = tqdm(
                total=epochs,
                desc=f"{label} (seed {seed})",
                unit="epoch",
                leave=False,
                file=self.stream,
            )
        return _EpochTicker(self)

    def resize(self, epochs: int) -> None:
        """The current fit trains ``epochs`` epochs."""
        label, seed, _, start, last = self.fit
        self.fit = (label, seed, epochs, start, last)
        if self.epochs is not None:
            self.epochs.total = epochs
            self.epochs.refresh()

    def epoch(self, done: int, train_bacc: float | None) -> None:
        """One more epoch of the current fit is done."""
        score = "" if train_bacc is None else f"train bal. acc {train_bacc:.3f}"
        if self.epochs is not None:
            self.epochs.set_postfix_str(score, refresh=False)
            self.epochs.update()
            return
        label, seed, epochs, start, last = self.fit
        now = time.perf_counter()
        if now - last < self.interval or done >= epochs:
            return
        self.fit = (label, seed, epochs, start, now)
        left = (now - start) / done * (epochs - done)
        self.write(
            f"    {label} (seed {seed}): epoch {done}/{epochs}, {score or 'no score'}, "
            f"about {left:.0f} s left"
        )

    def write(self, text: str) -> None:
        """A line on stderr that does not break the bars."""
        if self.live:
            tqdm.write(text, file=self.stream)
        elif self.enabled:
            print(text, file=self.stream, flush=True)

    def finish(self, label: str, seed: int, outcome: str, warned: Sequence[str] = ()) -> None:
        if self.epochs is not None:
            self.epochs.close()
            self.epochs = None
        self.done += 1
        self.runs.update()
        if not self.live:
            width = len(str(self.total))
            self.write(f"[{self.done:>{width}}/{self.total}] {label} (seed {seed}): {outcome}")
        for warning in warned:
            self.write(f"    warning, {label}: {warning}")

    def close(self) -> None:
        self.runs.close()


@contextmanager
def _thread_limit(n_threads: int | None) -> Iterator[None]:
    """Cap torch's and the native (OpenMP, BLAS) thread pools, then restore them."""
    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        with threadpool_limits(n_threads):
            yield
    finally:
        torch.set_num_threads(previous)


def _jsonable(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return repr(value)


def _describe(pipeline) -> list[dict[str, Any]]:
    # The exact configuration of every step, as the report's record of "what ran".
    return [
        {
            "step": type(step).__name__,
            "params": {
                key: _jsonable(value)
                for key, value in step.get_params(deep=False).items()
                # skorch lists private bookkeeping; callbacks hold the progress bar.
                if key != "callbacks" and not key.startswith("_")
            },
        }
        for _, step in pipeline.steps
    ]


def _fit_and_score(
    method: Method,
    settings: NetSettings,
    seed: int,
    ticker: Callback | None,
    data: ComparisonData,
    classes: np.ndarray,
    class_counts: np.ndarray,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Build, fit and score one run: its scores and the description of its pipeline."""
    # Warnings (SMOTE's lowered k_neighbors, L2RW's meta rows, LogisticRegression
    # convergence) are recorded with the run and shown once the run is over,
    # not between the progress bars.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        steps = method.build(settings, seed, class_counts)
        if ticker is not None:
            steps[-1].set_params(callbacks=[("progress", ticker)])
        pipeline = make_pipeline(clone(data.preprocessor), *steps)
        start = time.perf_counter()
        pipeline.fit(data.X_train, data.y_train)
        fit_seconds = time.perf_counter() - start
        y_pred = pipeline.predict(data.X_test)
    run = {"fit_seconds": fit_seconds, **score(data.y_test, y_pred, classes, class_counts)}
    run["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    run["deferred_stage"] = _deferred_stage(pipeline[-1])
    return run, _describe(pipeline)


def _deferred_stage(estimator) -> dict[str, Any] | None:
    """Where a DRW / DRS switch found the training: its epoch, loss and balanced accuracy.

    ``None`` without a switch. The epoch before it tells whether re-balancing
    had anything to act on: a network that already classifies every training
    row correctly has a near-zero loss, which re-weighting cannot change.
    """
    history = getattr(estimator, "history_", None)
    phases = [epoch.get("balancing") for epoch in history or ()]
    switch = next((i for i, phase in enumerate(phases) if phase not in (None, "none")), 0)
    if switch == 0:
        return None
    before = history[switch - 1]
    return {
        "epoch": switch + 1,
        "epochs": len(history),
        "train_loss": float(before["train_loss"]),
        "train_bacc": None if before.get("train_bacc") is None else float(before["train_bacc"]),
    }


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    summary = {}
    for key in (*SCORES, "fit_seconds"):
        values = [run[key] for run in runs]
        summary[key] = (
            None
            if any(v is None for v in values)
            else {"mean": float(np.mean(values)), "std": float(np.std(values))}
        )
    summary["per_class_recall"] = np.mean(
        [run["per_class_recall"] for run in runs], axis=0
    ).tolist()
    return summary


def _run_method(
    method: Method,
    skip_reason: str | None,
    data: ComparisonData,
    settings: NetSettings,
    seeds: int,
    classes: np.ndarray,
    class_counts: np.ndarray,
    bar: _Progress,
) -> dict[str, Any]:
    """Fit and score one method for every seed: its entry of the report."""
    entry = {"label": method.label, "status": "ok", "note": None, "runs": []}
    if skip_reason is not None:
        return {**entry, "status": "skipped", "note": skip_reason}
    shown: set[str] = set()
    for seed in range(seeds):
        ticker = bar.start(method.label, seed, settings.epochs if method.neural else None)
        try:
            run, entry["pipeline"] = _fit_and_score(
                method, settings, seed, ticker, data, classes, class_counts
            )
        except Exception as exc:  # one broken method must not sink the others
            note = f"{type(exc).__name__}: {exc}"
            bar.finish(method.label, seed, f"failed ({note})")
            return {**entry, "status": "failed", "note": note}
        entry["runs"].append({"seed": seed, **run})
        outcome = f"balanced accuracy {run['balanced_accuracy']:.3f}, {run['fit_seconds']:.1f} s"
        new_warnings = [text for text in run["warnings"] if text not in shown]
        shown.update(new_warnings)
        bar.finish(method.label, seed, outcome, new_warnings)
    entry["summary"] = _summary(entry["runs"])
    return entry


def _versions() -> dict[str, str]:
    return {
        "ldam_sklearn": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "skorch": skorch.__version__,
        "scikit-learn": sklearn.__version__,
        "imbalanced-learn": imblearn.__version__,
        "platform": platform.platform(),
    }


def run_comparison(
    data: ComparisonData,
    methods: Sequence[str] = tuple(METHODS),
    *,
    settings: NetSettings | None = None,
    seeds: int = 1,
    n_threads: int | None = 1,
    progress: bool = True,
) -> dict[str, Any]:
    """Fit and score each method for seeds ``0 .. seeds - 1``.

    Each run fits ``preprocessing -> [sampler] -> classifier`` in an
    imbalanced-learn pipeline [3]_ on the training set and scores it on the
    test set. The methods include LDAM-DRW and its baselines [1]_ and
    learning to reweight examples [2]_. A method that cannot run on this
    data (SMOTE with a one-sample class, gradient boosting on sparse text) is
    reported as skipped; one whose fit raises is reported as failed with the
    error, and the others still run.

    Parameters
    ----------
    data : ComparisonData
        From :func:`load_generated`, :func:`load_csv` or :func:`load_imblearn`.
    methods : sequence of str, default=all of :data:`METHODS`
        Names of the methods, in the order of the report.
    settings : NetSettings, default=None
        Network and budget of the neural methods; ``None`` uses the defaults.
    seeds : int, default=1
        Number of model seeds.
    n_threads : int or None, default=1
        Threads of torch and of the native pools (OpenMP, BLAS) during the
        run; ``None`` leaves them alone. The small networks and data sets of
        a comparison gain little from more, and lose up to tenfold (measured
        on two cores: 15 vs 575 ms per epoch, gradient boosting 4 vs 29 s)
        when other processes compete for the cores and threads spin.
    progress : bool, default=True
        Show progress on stderr: tqdm bars on a terminal, one line per run
        otherwise.

    Returns
    -------
    report : dict
        JSON-ready: ``config``, ``versions``, ``data`` (classes, class counts,
        shot groups) and ``methods``, one entry per method with its
        ``status`` ("ok", "skipped", "failed"), ``note``, ``pipeline``,
        ``runs`` (scores of each seed, its warnings and, for a DRW / DRS
        schedule, ``deferred_stage``: the switch epoch and the training loss
        and balanced accuracy of the epoch before) and ``summary`` (mean and
        std).

    Raises
    ------
    ValueError
        If a method name is unknown (the message lists the valid ones) or
        ``seeds < 1``.

    References
    ----------
    .. [1] K. Cao, C. Wei, A. Gaidon, N. Arechiga and T. Ma, "Learning
       Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
       NeurIPS 2019, arXiv:1906.07413.
    .. [2] M. Ren, W. Zeng, B. Yang and R. Urtasun, "Learning to Reweight
       Examples for Robust Deep Learning", ICML 2018, arXiv:1803.09050.
    .. [3] G. Lemaître, F. Nogueira and C. K. Aridas, "Imbalanced-learn: A
       Python Toolbox to Tackle the Curse of Imbalanced Datasets in Machine
       Learning", JMLR 18(17), 2017.

    Examples
    --------
    >>> from ldam_sklearn.compare import NetSettings, load_generated, run_comparison
    >>> data = load_generated("digits", imbalance_ratio=10)
    >>> report = run_comparison(
    ...     data, ["erm", "logreg"], settings=NetSettings(epochs=1, hidden=(16,)), progress=False
    ... )
    >>> sorted(report)
    ['config', 'created', 'data', 'methods', 'schema_version', 'versions']
    >>> {name: entry["status"] for name, entry in report["methods"].items()}
    {'erm': 'ok', 'logreg': 'ok'}
    >>> 0 <= report["methods"]["erm"]["summary"]["balanced_accuracy"]["mean"] <= 1
    True
    """
    unknown = [name for name in methods if name not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from: {', '.join(METHODS)}.")
    if seeds < 1:
        raise ValueError(f"seeds must be >= 1, got {seeds}.")
    settings = settings or NetSettings()
    classes, class_counts = np.unique(data.y_train, return_counts=True)
    test_counts = np.array([(data.y_test == label).sum() for label in classes])
    skip_reasons = {
        name: METHODS[name].skip(data, class_counts) if METHODS[name].skip else None
        for name in methods
    }
    n_runs = seeds * sum(reason is None for reason in skip_reasons.values())
    bar = _Progress(n_runs, progress)
    try:
        with _thread_limit(n_threads):
            results = {
                name: _run_method(
                    METHODS[name],
                    skip_reasons[name],
                    data,
                    settings,
                    seeds,
                    classes,
                    class_counts,
                    bar,
                )
                for name in methods
            }
    finally:
        bar.close()

    groups = shot_groups(class_counts)
    return {
        "schema_version": 1,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config": {
            "data": {
                **data.config,
                "name": data.name,
                "description": data.description,
                "n_train": len(data.y_train),
                "n_test": len(data.y_test),
                "sparse_features": data.sparse,
                "preprocessing": repr(data.preprocessor),
            },
            "methods": list(methods),
            "seeds": list(range(seeds)),
            "n_threads": n_threads,
            "network": {
                **asdict(settings),
                "hidden": list(settings.hidden),
                "resolved_device": str(resolve_device(settings.device)),
            },
            "shot_thresholds": {
                "many_shot": f"> {MANY_SHOT_MIN}",
                "medium_shot": f"{FEW_SHOT_MAX}..{MANY_SHOT_MIN}",
                "few_shot": f"< {FEW_SHOT_MAX}",
            },
        },
        "versions": _versions(),
        "data": {
            "classes": classes.tolist(),
            "class_counts_train": class_counts.tolist(),
            "class_counts_test": test_counts.tolist(),
            "shot_groups": {group: classes[mask].tolist() for group, mask in groups.items()},
        },
        "methods": results,
    }
