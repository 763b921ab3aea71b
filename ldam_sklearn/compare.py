"""Compare imbalance methods on one data set: the logic behind ``ldam-sklearn compare``.

The command-line parsing lives in :mod:`ldam_sklearn.cli`; this module holds
what it runs, usable from Python as well:

1. a loader builds a :class:`ComparisonData` — a training set, a held-out test
   set and one preprocessing transformer shared by every method of the run;
2. :func:`run_comparison` fits every method of :data:`METHODS` on it for each
   seed and scores it on the test set, returning a JSON-ready report;
3. :func:`format_table`, :func:`save_report` and :func:`plot_per_class_recall`
   turn the report into the terminal table, the JSON file and the PNG plot.

Every neural method trains the same MLP for the same number of epochs
(:class:`NetSettings`); only the loss, the schedule or the sampler differs.
The data (long-tailed subsample and test split) is fixed; ``seeds`` vary the
models only, so every seed sees the same training class counts.
"""

from __future__ import annotations

import json
import platform
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from imblearn.metrics import geometric_mean_score
from imblearn.over_sampling import SMOTE, RandomOverSampler
from imblearn.pipeline import make_pipeline
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.multiclass import type_of_target
from skorch.callbacks import Callback
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from ._version import __version__
from .base import resolve_device
from .datasets import load_long_tailed_mnist1d, make_long_tailed
from .ldam_drw import LDAMDRWClassifier

__all__ = [
    "DATASETS",
    "METHODS",
    "ComparisonData",
    "Method",
    "NetSettings",
    "format_table",
    "load_csv",
    "load_generated",
    "load_imblearn",
    "plot_per_class_recall",
    "run_comparison",
    "save_report",
    "score",
    "shot_groups",
]

#: Classes with more training samples than this are "many-shot" ...
MANY_SHOT_MIN = 100
#: ... and with fewer than this "few-shot"; the rest are "medium-shot"
#: (the split of Liu et al. 2019, used by most long-tail papers).
FEW_SHOT_MAX = 20

#: The data splits are fixed across seeds so that seeds measure model variance.
DATA_SEED = 0

#: The scores of each run, besides per-class recall and fit time.
SCORES = ("balanced_accuracy", "macro_f1", "g_mean", "many_shot", "medium_shot", "few_shot")


# -- settings and data ---------------------------------------------------------------


@dataclass(frozen=True)
class NetSettings:
    """Network and budget shared by every neural method of a run.

    The defaults are those of ``ldam-sklearn compare`` without arguments:
    all 13 methods train on long-tailed MNIST-1D in about a minute on two
    CPU cores, and 200 epochs (rather than 100) let LDAM-DRW's lead over ERM
    stand clear of the seed-to-seed spread (about 3.5 points of balanced
    accuracy, measured over 3 seeds).

    Attributes
    ----------
    epochs : int, default=200
        ``max_epochs`` of every network.
    hidden : tuple of int, default=(256, 256)
        Hidden layer widths of the MLP.
    batch_size : int, default=128
    lr : float, default=0.1
        Base learning rate (SGD with momentum, the package default).
    device : str, default="auto"
        Where the networks train.
    """

    epochs: int = 200
    hidden: tuple[int, ...] = (256, 256)
    batch_size: int = 128
    lr: float = 0.1
    device: str = "auto"

    def estimator_params(self, seed: int) -> dict[str, Any]:
        """Keyword arguments of a package estimator trained with these settings."""
        return {
            "max_epochs": self.epochs,
            "module__hidden_layer_sizes": self.hidden,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "device": self.device,
            "random_state": seed,
        }


@dataclass
class ComparisonData:
    """A training set, a held-out test set and the preprocessing of a run.

    Attributes
    ----------
    name : str
        Short name of the data set, used in titles.
    description : str
        One line on how the data was built.
    X_train, y_train, X_test, y_test
        Raw features (array or DataFrame/Series) and labels; ``preprocessor``
        turns the features into the network's input.
    preprocessor : estimator
        Unfitted transformer, cloned and fitted inside each method's pipeline
        so no test information leaks into it.
    sparse : bool
        Whether ``preprocessor`` outputs a sparse matrix (TF-IDF).
    config : dict
        How the data was made (source, path, columns, ratios), for the report.
    """

    name: str
    description: str
    X_train: Any
    y_train: np.ndarray
    X_test: Any
    y_test: np.ndarray
    preprocessor: Any
    sparse: bool = False
    config: dict[str, Any] = field(default_factory=dict)


def _balanced_source(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "digits":
        from sklearn.datasets import load_digits

        return load_digits(return_X_y=True)
    from sklearn.datasets import make_classification

    return make_classification(
        n_samples=6000,
        n_features=20,
        n_informative=10,
        n_redundant=5,
        n_classes=10,
        n_clusters_per_class=1,
        flip_y=0.0,  # no label noise, so that the classes stay exactly balanced
        random_state=DATA_SEED,
    )


#: Generated data sets: name -> description.
DATASETS = {
    "mnist1d": "MNIST-1D (Greydanus 2020), generated locally; its own test split",
    "digits": "scikit-learn's 8x8 digits; stratified test split",
    "synthetic": "make_classification, 10 classes, 20 features; stratified test split",
}


def load_generated(
    name: str = "mnist1d",
    imbalance_ratio: float = 100.0,
    profile: str = "exp",
    *,
    test_size: float = 0.25,
    data_home: str | Path | None = None,
) -> ComparisonData:
    """Long-tailed training set from a balanced data set, with a balanced test set.

    The training set follows the construction of Cao et al. (2019), see
    :func:`ldam_sklearn.datasets.make_long_tailed`; the test set is left
    (roughly) balanced, so that balanced accuracy and plain accuracy agree.

    Parameters
    ----------
    name : {"mnist1d", "digits", "synthetic"}, default="mnist1d"
        ``"mnist1d"`` keeps MNIST-1D's own test split; the others are split
        with a stratified ``test_size`` before the training part is subsampled.
    imbalance_ratio : float, default=100.0
        Ratio between the largest and the smallest training class.
    profile : {"exp", "step"}, default="exp"
        Exponential or step decay of the training class counts.
    test_size : float, default=0.25
        Test fraction for ``"digits"`` and ``"synthetic"``.
    data_home : str or path, default=None
        Cache folder of MNIST-1D, see :func:`ldam_sklearn.datasets.get_data_home`.

    Returns
    -------
    data : ComparisonData
        Features standardised by a ``StandardScaler`` in every pipeline.

    Raises
    ------
    ValueError
        If ``name`` is unknown (the message lists the valid names) or the
        ratio or profile is invalid.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}.")
    if name == "mnist1d":
        bunch = load_long_tailed_mnist1d(
            imbalance_ratio, profile, random_state=DATA_SEED, data_home=data_home
        )
        X_train, y_train, X_test, y_test = (
            bunch.data,
            bunch.target,
            bunch.data_test,
            bunch.target_test,
        )
    else:
        X, y = _balanced_source(name)
        X_pool, X_test, y_pool, y_test = _stratified_split(X, y, test_size)
        X_train, y_train = make_long_tailed(
            X_pool, y_pool, imbalance_ratio, profile, random_state=DATA_SEED
        )
    return ComparisonData(
        name=name,
        description=(
            f"{name}, long-tailed training set (imbalance ratio {imbalance_ratio:g}, "
            f"{profile} profile), balanced test set"
        ),
        X_train=X_train,
        y_train=np.asarray(y_train),
        X_test=X_test,
        y_test=np.asarray(y_test),
        preprocessor=StandardScaler(),
        config={
            "source": "generated",
            "dataset": name,
            "imbalance_ratio": imbalance_ratio,
            "profile": profile,
            "test_size": None if name == "mnist1d" else test_size,
            "data_seed": DATA_SEED,
        },
    )


def _check_labels(y, what: str) -> np.ndarray:
    """Reject targets that cannot be compared: continuous, one class, singleton classes."""
    y = np.asarray(y)
    kind = type_of_target(y)
    if kind not in ("binary", "multiclass"):
        raise ValueError(
            f"{what} holds {kind} values, not class labels; choose a column of class labels."
        )
    labels, counts = np.unique(y, return_counts=True)
    if labels.size < 2:
        raise ValueError(
            f"{what} has a single class ({labels[0]!r}); a comparison needs at least two classes."
        )
    rare = labels[counts < 2]
    if rare.size:
        raise ValueError(
            f"{what}: classes {rare.tolist()} have a single row, too few for a stratified "
            "train/test split; drop or merge them."
        )
    return y


def _stratified_split(X, y, test_size: float):
    return train_test_split(X, y, test_size=test_size, stratify=y, random_state=DATA_SEED)


def _require_column(frame: pd.DataFrame, column: str, option: str, path: Path) -> None:
    if column not in frame.columns:
        shown = ", ".join(map(repr, frame.columns[:20])) + (", ..." if frame.shape[1] > 20 else "")
        raise ValueError(
            f"{option} {column!r} is not a column of {path}; its columns are: {shown}."
        )


def load_csv(
    path: str | Path,
    target: str,
    *,
    text_column: str | None = None,
    test_size: float = 0.25,
) -> ComparisonData:
    """Tabular or text data from a CSV file, with a stratified held-out test set.

    Parameters
    ----------
    path : str or path
        CSV file with a header row.
    target : str
        Column of class labels. Rows with a missing label are dropped.
    text_column : str, default=None
        If given, the features are this column's text only, turned into a
        sparse TF-IDF matrix. Otherwise every other column is a feature:
        numeric columns are median-imputed and standardised, the others
        one-hot encoded (unseen categories ignored), in a ``ColumnTransformer``.
    test_size : float, default=0.25
        Fraction of rows held out, stratified by class.

    Returns
    -------
    data : ComparisonData

    Raises
    ------
    FileNotFoundError
        If ``path`` is not a file.
    ValueError
        If a column is missing (the message lists the columns), the target
        is continuous or has one class, or a class has a single row.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--csv {path}: no such file; give the path of a CSV file.")
    frame = pd.read_csv(path)
    _require_column(frame, target, "--target", path)
    if text_column is not None:
        _require_column(frame, text_column, "--text-column", path)
        if text_column == target:
            raise ValueError("--text-column and --target name the same column; give two columns.")
    n_rows = len(frame)
    frame = frame.dropna(subset=[target])
    y = _check_labels(frame[target].to_numpy(), f"target column {target!r} of {path}")
    if text_column is not None:
        X = frame[text_column].fillna("").astype(str)
        # sublinear tf and a capped vocabulary: the usual text-classification
        # TF-IDF, and a bounded input width for the network's first layer.
        preprocessor = TfidfVectorizer(sublinear_tf=True, max_features=20_000, dtype=np.float32)
        features = {"text": text_column}
    else:
        X = frame.drop(columns=[target])
        if X.shape[1] == 0:
            raise ValueError(f"{path} has no column besides the target {target!r}.")
        numeric = X.select_dtypes(include="number").columns.tolist()
        categorical = [column for column in X.columns if column not in numeric]
        preprocessor = ColumnTransformer(
            [
                (
                    "numeric",
                    make_pipeline(SimpleImputer(strategy="median"), StandardScaler()),
                    numeric,
                ),
                ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
            ],
            # Dense output: every method (gradient boosting included) takes it.
            sparse_threshold=0.0,
        )
        features = {"numeric": numeric, "categorical": categorical}
    X_train, X_test, y_train, y_test = _stratified_split(X, y, test_size)
    kind = "text" if text_column is not None else "tabular"
    return ComparisonData(
        name=path.stem,
        description=f"{path.name} ({kind}, target {target!r}), stratified test split",
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        preprocessor=preprocessor,
        sparse=text_column is not None,
        config={
            "source": f"csv-{kind}",
            "path": str(path.resolve()),
            "target": target,
            "features": features,
            "rows_dropped_missing_target": n_rows - len(frame),
            "test_size": test_size,
            "data_seed": DATA_SEED,
        },
    )


def load_imblearn(
    name: str, *, test_size: float = 0.25, data_home: str | Path | None = None
) -> ComparisonData:
    """A benchmark of :func:`imblearn.datasets.fetch_datasets`, offline.

    Parameters
    ----------
    name : str
        Data set name, e.g. ``"ecoli"`` or ``"abalone_19"``.
    test_size : float, default=0.25
        Fraction held out, stratified by class.
    data_home : str or path, default=None
        imbalanced-learn's data folder (default: scikit-learn's data home).

    Returns
    -------
    data : ComparisonData

    Raises
    ------
    FileNotFoundError
        If the data set is not cached; the message gives the expected file.
    ValueError
        If ``name`` is not one of imbalanced-learn's data sets.
    """
    from imblearn.datasets import fetch_datasets
    from sklearn.datasets import get_data_home

    data_home = None if data_home is None else str(data_home)  # imblearn takes str only
    try:
        found = fetch_datasets(filter_data=(name,), download_if_missing=False, data_home=data_home)
    except OSError as exc:
        # fetch_datasets says only "Data not found"; name the file it looks for.
        from imblearn.datasets import _zenodo  # the name -> file number map is private

        number = getattr(_zenodo, "MAP_NAME_ID", {}).get(name, "{ID}")
        expected = Path(get_data_home(data_home)) / "zenodo" / f"x{number}data.npz"
        raise FileNotFoundError(
            f"imbalanced-learn data set {name!r} is not cached: expected {expected}. Fetch it "
            'once with network access (python -c "from imblearn.datasets import '
            f"fetch_datasets; fetch_datasets(filter_data=('{name}',))\"), or point --data-home "
            "at the folder that holds zenodo/."
        ) from exc
    bunch = found[name]
    y = _check_labels(bunch.target, f"imbalanced-learn data set {name!r}")
    X_train, X_test, y_train, y_test = _stratified_split(bunch.data, y, test_size)
    return ComparisonData(
        name=name,
        description=f"imbalanced-learn {name!r}, stratified test split",
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        preprocessor=StandardScaler(),
        config={
            "source": "imblearn",
            "dataset": name,
            "test_size": test_size,
            "data_seed": DATA_SEED,
        },
    )


# -- methods ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    """One contender: how to build its pipeline steps after the preprocessing.

    Attributes
    ----------
    label : str
        Name shown in the table and the plot.
    build : callable
        ``build(settings, seed, class_counts) -> list of steps``: an optional
        imbalanced-learn sampler followed by the classifier.
    neural : bool
        Whether the classifier is a network trained with ``settings``.
    skip : callable or None
        ``skip(data, class_counts) -> reason or None``: why the method cannot
        run on this data.
    """

    label: str
    build: Callable[[NetSettings, int, np.ndarray], list]
    neural: bool = True
    skip: Callable[[ComparisonData, np.ndarray], str | None] | None = None


def _net(loss: str, schedule: str, settings: NetSettings, seed: int) -> LDAMDRWClassifier:
    return LDAMDRWClassifier(loss=loss, schedule=schedule, **settings.estimator_params(seed))


def _ldam(loss: str, schedule: str) -> Callable[[NetSettings, int, np.ndarray], list]:
    def build(settings: NetSettings, seed: int, class_counts: np.ndarray) -> list:
        return [_net(loss, schedule, settings, seed)]

    return build


def _erm_after(sampler: Callable[[int, np.ndarray], Any]):
    def build(settings: NetSettings, seed: int, class_counts: np.ndarray) -> list:
        return [sampler(seed, class_counts), _net("ce", "none", settings, seed)]

    return build


def _ros(seed: int, class_counts: np.ndarray) -> RandomOverSampler:
    return RandomOverSampler(random_state=seed)


def _smote(seed: int, class_counts: np.ndarray) -> SMOTE:
    # SMOTE interpolates between a sample and its k nearest same-class
    # neighbours; the rarest long-tailed classes have fewer than the default 5.
    return SMOTE(k_neighbors=min(5, int(class_counts.min()) - 1), random_state=seed)


def _smote_skip(data: ComparisonData, class_counts: np.ndarray) -> str | None:
    if class_counts.min() < 2:
        return "SMOTE needs at least 2 training samples of every class"
    return None


def _l2rw(settings: NetSettings, seed: int, class_counts: np.ndarray) -> list:
    # Imported when used: the estimator lives in its own module, and the other
    # methods must keep working where it is unavailable.
    from .l2rw import L2RWClassifier

    return [L2RWClassifier(meta_size=10, **settings.estimator_params(seed))]


def _logreg(settings: NetSettings, seed: int, class_counts: np.ndarray) -> list:
    return [LogisticRegression(class_weight="balanced", max_iter=1000, random_state=seed)]


def _hgb(settings: NetSettings, seed: int, class_counts: np.ndarray) -> list:
    return [HistGradientBoostingClassifier(class_weight="balanced", random_state=seed)]


def _hgb_skip(data: ComparisonData, class_counts: np.ndarray) -> str | None:
    # Densifying a TF-IDF matrix can take more memory than the machine has;
    # skipping is predictable, and the linear reference covers text well.
    if data.sparse:
        return "HistGradientBoosting needs dense input; skipped on sparse TF-IDF features"
    return None


#: Method name -> :class:`Method`, in the order of the table.
METHODS: dict[str, Method] = {
    "erm": Method("ERM", _ldam("ce", "none")),
    "class_weighted": Method("Class-weighted CE", _ldam("ce", "reweight")),
    "ros": Method("ERM + RandomOverSampler", _erm_after(_ros)),
    "smote": Method("ERM + SMOTE", _erm_after(_smote), skip=_smote_skip),
    "focal": Method("Focal", _ldam("focal", "none")),
    "logit_adjusted": Method("Logit-adjusted", _ldam("logit_adjusted", "none")),
    "ldam": Method("LDAM", _ldam("ldam", "none")),
    "ce_drw": Method("CE-DRW", _ldam("ce", "drw")),
    "ce_drs": Method("CE-DRS", _ldam("ce", "drs")),
    "ldam_drw": Method("LDAM-DRW", _ldam("ldam", "drw")),
    "l2rw": Method("L2RW", _l2rw),
    "logreg": Method("LogReg (balanced)", _logreg, neural=False),
    "hgb": Method("HistGB (balanced)", _hgb, neural=False, skip=_hgb_skip),
}


# -- scoring -----------------------------------------------------------------------------


def shot_groups(class_counts: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks of the many-, medium- and few-shot classes.

    Examples
    --------
    >>> {k: v.tolist() for k, v in shot_groups(np.array([389, 50, 3])).items()}
    {'many_shot': [True, False, False], 'medium_shot': [False, True, False], \
'few_shot': [False, False, True]}
    """
    counts = np.asarray(class_counts)
    return {
        "many_shot": counts > MANY_SHOT_MIN,
        "medium_shot": (counts >= FEW_SHOT_MAX) & (counts <= MANY_SHOT_MIN),
        "few_shot": counts < FEW_SHOT_MAX,
    }


def score(y_true, y_pred, classes: np.ndarray, class_counts: np.ndarray) -> dict[str, Any]:
    """Test-set scores of one fitted model.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Test labels and predictions.
    classes : ndarray of shape (n_classes,)
        The training classes, in the order of ``per_class_recall``.
    class_counts : ndarray of shape (n_classes,)
        Training samples per class, which decide the shot groups.

    Returns
    -------
    scores : dict
        ``balanced_accuracy``, ``macro_f1``, ``g_mean`` (geometric mean of the
        per-class recalls), ``many_shot`` / ``medium_shot`` / ``few_shot``
        (mean recall of those classes, None when there are none) and
        ``per_class_recall`` (in the order of ``classes``).
    """
    recall = recall_score(y_true, y_pred, labels=classes, average=None, zero_division=0.0)
    scores = {
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0.0)
        ),
        "g_mean": float(geometric_mean_score(y_true, y_pred, labels=classes)),
    }
    for group, mask in shot_groups(class_counts).items():
        scores[group] = float(recall[mask].mean()) if mask.any() else None
    scores["per_class_recall"] = recall.tolist()
    return scores


# -- running ------------------------------------------------------------------------------


class _EpochTicker(Callback):
    """skorch callback calling ``tick()`` after every epoch (drives a progress bar)."""

    def __init__(self, tick: Callable[[], Any]):
        self.tick = tick

    def on_epoch_end(self, net, **kwargs):
        self.tick()


class _Progress:
    """A bar over runs and one over epochs on a terminal; one line per run otherwise."""

    def __init__(self, total: int, enabled: bool, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.live = enabled and self.stream.isatty()
        self.total, self.done = total, 0
        self.runs = tqdm(
            total=total, desc="runs", unit="run", file=self.stream, disable=not self.live
        )
        self.epochs = None

    def start(self, label: str, seed: int, epochs: int | None) -> Callable[[], Any] | None:
        self.runs.set_postfix_str(f"{label}, seed {seed}")
        if not (self.live and epochs):
            return None
        self.epochs = tqdm(total=epochs, desc=label, unit="epoch", leave=False, file=self.stream)
        return self.epochs.update

    def finish(self, label: str, seed: int, outcome: str) -> None:
        if self.epochs is not None:
            self.epochs.close()
            self.epochs = None
        self.done += 1
        self.runs.update()
        if self.enabled and not self.live:
            width = len(str(self.total))
            print(
                f"[{self.done:>{width}}/{self.total}] {label} (seed {seed}): {outcome}",
                file=self.stream,
            )

    def close(self) -> None:
        self.runs.close()


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


def _fit_and_score(pipeline, data: ComparisonData, classes, class_counts) -> dict[str, Any]:
    # Warnings (e.g. LogisticRegression convergence) go to the report, not
    # between the progress bars.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        pipeline.fit(data.X_train, data.y_train)
        fit_seconds = time.perf_counter() - start
        y_pred = pipeline.predict(data.X_test)
    run = {"fit_seconds": fit_seconds, **score(data.y_test, y_pred, classes, class_counts)}
    run["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
    return run


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


def _versions() -> dict[str, str]:
    import imblearn
    import sklearn
    import skorch
    import torch

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


def _run_method(
    method: Method,
    skip_reason: str | None,
    data: ComparisonData,
    settings: NetSettings,
    seeds: int,
    class_counts: np.ndarray,
    bar: _Progress,
) -> dict[str, Any]:
    """Fit and score one method for every seed: its entry of the report."""
    entry = {"label": method.label, "status": "ok", "note": None, "runs": []}
    if skip_reason is not None:
        return {**entry, "status": "skipped", "note": skip_reason}
    classes = np.unique(data.y_train)
    for seed in range(seeds):
        tick = bar.start(method.label, seed, settings.epochs if method.neural else None)
        try:
            steps = method.build(settings, seed, class_counts)
            if tick is not None:
                steps[-1].set_params(callbacks=[("progress", _EpochTicker(tick))])
            pipeline = make_pipeline(clone(data.preprocessor), *steps)
            entry["pipeline"] = _describe(pipeline)
            run = _fit_and_score(pipeline, data, classes, class_counts)
        except Exception as exc:  # one broken method must not sink the others
            note = f"{type(exc).__name__}: {exc}"
            bar.finish(method.label, seed, f"failed ({note})")
            return {**entry, "status": "failed", "note": note}
        entry["runs"].append({"seed": seed, **run})
        outcome = f"balanced accuracy {run['balanced_accuracy']:.3f}, {run['fit_seconds']:.1f} s"
        bar.finish(method.label, seed, outcome)
    entry["summary"] = _summary(entry["runs"])
    return entry


@contextmanager
def _thread_limit(n_threads: int | None) -> Iterator[None]:
    """Cap torch's and the native (OpenMP, BLAS) thread pools, then restore them."""
    if n_threads is None:
        yield
        return
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        with threadpool_limits(n_threads):
            yield
    finally:
        torch.set_num_threads(previous)


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
    imbalanced-learn pipeline on the training set and scores it on the test
    set. A method that cannot run on this data (SMOTE with a one-sample class,
    gradient boosting on sparse text) is reported as skipped; one whose fit
    raises is reported as failed with the error, and the others still run.

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
        ``runs`` (scores of each seed) and ``summary`` (mean and std).

    Raises
    ------
    ValueError
        If a method name is unknown (the message lists the valid ones) or
        ``seeds < 1``.
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
                    METHODS[name], skip_reasons[name], data, settings, seeds, class_counts, bar
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


# -- output --------------------------------------------------------------------------------


_COLUMNS = (
    ("balanced_accuracy", "bal. acc"),
    ("macro_f1", "macro-F1"),
    ("g_mean", "G-mean"),
    ("many_shot", "many"),
    ("medium_shot", "medium"),
    ("few_shot", "few"),
    ("fit_seconds", "fit s"),
)


def _cell(stat: dict[str, float] | None, key: str, with_std: bool) -> str:
    if stat is None:
        return "-"
    if key == "fit_seconds":
        return f"{stat['mean']:.1f}"
    return f"{stat['mean']:.3f}" + (f" ± {stat['std']:.3f}" if with_std else "")


def format_table(report: dict[str, Any]) -> str:
    """The terminal table of a report: one row per method, mean (± std over seeds).

    Skipped and failed methods are listed under the table with the reason.
    """
    with_std = len(report["config"]["seeds"]) > 1
    data = report["data"]
    n_groups = {group: len(labels) for group, labels in data["shot_groups"].items()}
    header = ["method"] + [
        f"{title} ({n_groups[key]})" if key in n_groups else title for key, title in _COLUMNS
    ]
    rows, notes = [], []
    for entry in report["methods"].values():
        if entry["status"] != "ok":
            notes.append(f"  {entry['label']}: {entry['status']} - {entry['note']}")
            continue
        rows.append(
            [entry["label"]] + [_cell(entry["summary"][key], key, with_std) for key, _ in _COLUMNS]
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        )

    config = report["config"]
    seeds = config["seeds"]
    title = (
        f"{config['data']['description']}: {config['data']['n_train']} training rows, "
        f"{config['data']['n_test']} test rows, {len(data['classes'])} classes; "
        f"seed{'s' if len(seeds) > 1 else ''} {seeds[0]}"
        + (f"..{seeds[-1]}" if len(seeds) > 1 else "")
    )
    legend = (
        f"many/medium/few: mean recall of the classes with > {MANY_SHOT_MIN}, "
        f"{FEW_SHOT_MAX}-{MANY_SHOT_MIN}, < {FEW_SHOT_MAX} training samples (number of classes)"
    )
    parts = [title, "", line(header), line(["-" * w for w in widths])]
    parts += [line(row) for row in rows] + ["", legend]
    if notes:
        parts += ["Not in the table:", *notes]
    return "\n".join(parts)


def save_report(report: dict[str, Any], path: str | Path) -> Path:
    """Write the report as indented JSON (strict: no NaN), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return path


def plot_per_class_recall(report: dict[str, Any], path: str | Path) -> Path:
    """Plot each method's per-class test recall against the training class count.

    One line per method that ran, classes sorted by training count on a log
    x axis, so the tail is on the left.

    Parameters
    ----------
    report : dict
        From :func:`run_comparison` (or read back from its JSON file).
    path : str or path
        Where to write the PNG; its folder is created.

    Returns
    -------
    path : pathlib.Path
    """
    # The object-oriented API with the Agg canvas: no display needed, and the
    # caller's pyplot backend and figures are left alone.
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    counts = np.asarray(report["data"]["class_counts_train"])
    order = np.argsort(counts, kind="stable")
    fig = Figure(figsize=(9.5, 5.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colors = matplotlib.colormaps["tab10"].colors
    ran = [entry for entry in report["methods"].values() if entry["status"] == "ok"]
    for i, entry in enumerate(ran):
        recall = np.asarray(entry["summary"]["per_class_recall"])[order]
        # Ten colours, then the same colours dashed: 13 methods stay apart.
        ax.plot(
            counts[order],
            recall,
            marker="os^vD<>phX*P"[i % 12],
            color=colors[i % len(colors)],
            linestyle="-" if i < len(colors) else "--",
            linewidth=2.5 if entry["label"] == "LDAM-DRW" else 1.2,
            label=entry["label"],
        )
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("training samples of the class (log scale)")
    ax.set_ylabel("test recall of the class")
    ax.set_title(f"Per-class recall: {report['config']['data']['description']}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    return path
