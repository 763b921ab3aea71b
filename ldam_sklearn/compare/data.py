"""The data of a comparison: generated long-tailed, CSV (tabular or text) or imblearn.

Every loader returns a :class:`ComparisonData`: a training set, a held-out
test set and one unfitted preprocessing transformer shared by every method.
The split is fixed by :data:`DATA_SEED`, so that model seeds vary the models
only.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from imblearn.datasets import _zenodo, fetch_datasets
from imblearn.pipeline import make_pipeline
from sklearn.compose import ColumnTransformer
from sklearn.datasets import get_data_home, load_digits, make_classification
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.multiclass import type_of_target

from ..datasets import load_long_tailed_mnist1d, make_long_tailed

__all__ = [
    "DATASETS",
    "DATA_SEED",
    "IMBLEARN_DATASETS",
    "ComparisonData",
    "load_csv",
    "load_generated",
    "load_imblearn",
]

#: The data splits are fixed across seeds so that seeds measure model variance.
DATA_SEED = 0

#: Generated data sets: name -> description.
DATASETS = {
    "mnist1d": "MNIST-1D (Greydanus 2020), generated locally; its own test split",
    "digits": "scikit-learn's 8x8 digits; stratified test split",
    "synthetic": "make_classification, 10 classes, 20 features; stratified test split",
}

#: The names of imbalanced-learn's benchmark data sets, in its order. The
#: name -> Zenodo file number map is private to imbalanced-learn, and the
#: only listing of the names short of downloading them.
IMBLEARN_DATASETS: tuple[str, ...] = tuple(_zenodo.MAP_NAME_ID)


@dataclass
class ComparisonData:
    """A training set, a held-out test set and the preprocessing of a run.

    The preprocessor is fitted inside each method's pipeline, on the training
    rows only, as scikit-learn's pipelines [1]_ and imbalanced-learn's [2]_
    (with a sampler) do.

    Parameters
    ----------
    name : str
        Short name of the data set, used in titles.
    description : str
        One line on how the data was built.
    X_train, y_train, X_test, y_test : array-like
        Raw features (array or DataFrame/Series) and labels of the training
        and test sets.
    preprocessor : estimator
        Unfitted transformer turning the features into the network's input.
    sparse : bool, default=False
        Whether ``preprocessor`` outputs a sparse matrix (TF-IDF).
    config : dict, default={}
        How the data was made, for the report.

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

    References
    ----------
    .. [1] F. Pedregosa et al., "Scikit-learn: Machine Learning in Python",
       JMLR 12, pp. 2825-2830, 2011.
    .. [2] G. Lemaître, F. Nogueira and C. K. Aridas, "Imbalanced-learn: A
       Python Toolbox to Tackle the Curse of Imbalanced Datasets in Machine
       Learning", JMLR 18(17), 2017.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.preprocessing import StandardScaler
    >>> from ldam_sklearn.compare import ComparisonData
    >>> data = ComparisonData(
    ...     name="toy",
    ...     description="four training rows, two test rows",
    ...     X_train=np.arange(8.0).reshape(4, 2),
    ...     y_train=np.array([0, 0, 0, 1]),
    ...     X_test=np.arange(4.0).reshape(2, 2),
    ...     y_test=np.array([0, 1]),
    ...     preprocessor=StandardScaler(),
    ... )
    >>> data.sparse, data.config
    (False, {})
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


def _stratified_split(X, y, test_size: float) -> list:
    return train_test_split(X, y, test_size=test_size, stratify=y, random_state=DATA_SEED)


def _stratified_data(
    X,
    y,
    test_size: float,
    *,
    name: str,
    description: str,
    preprocessor: Any,
    config: dict[str, Any],
    sparse: bool = False,
) -> ComparisonData:
    """The :class:`ComparisonData` of a stratified train/test split of ``X, y``."""
    X_train, X_test, y_train, y_test = _stratified_split(X, y, test_size)
    return ComparisonData(
        name=name,
        description=description,
        X_train=X_train,
        y_train=y_train,
        X_test=X_test,
        y_test=y_test,
        preprocessor=preprocessor,
        sparse=sparse,
        config={**config, "test_size": test_size, "data_seed": DATA_SEED},
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


def _balanced_source(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "digits":
        return load_digits(return_X_y=True)
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


def load_generated(
    name: str = "mnist1d",
    imbalance_ratio: float = 100.0,
    profile: str = "exp",
    *,
    test_size: float = 0.25,
    data_home: str | Path | None = None,
) -> ComparisonData:
    """Long-tailed training set from a balanced data set, with a balanced test set.

    The training set follows the construction of Cao et al. [1]_, see
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

    References
    ----------
    .. [1] K. Cao, C. Wei, A. Gaidon, N. Arechiga and T. Ma, "Learning
       Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
       NeurIPS 2019, arXiv:1906.07413.
    .. [2] S. Greydanus, "Scaling down Deep Learning", 2020,
       arXiv:2011.14439 (MNIST-1D).

    Examples
    --------
    >>> import numpy as np
    >>> from ldam_sklearn.compare import load_generated
    >>> data = load_generated("digits", imbalance_ratio=10)
    >>> counts = np.bincount(data.y_train)
    >>> bool(counts[0] > counts[-1]), np.unique(data.y_test).size
    (True, 10)
    >>> data.config["profile"], type(data.preprocessor).__name__
    ('exp', 'StandardScaler')
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}.")
    if name == "mnist1d":
        bunch = load_long_tailed_mnist1d(
            imbalance_ratio, profile, random_state=DATA_SEED, data_home=data_home
        )
        X_train, y_train = bunch.data, bunch.target
        X_test, y_test = bunch.data_test, bunch.target_test
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


def _require_column(frame: pd.DataFrame, column: str, option: str, path: Path) -> None:
    if column not in frame.columns:
        shown = ", ".join(map(repr, frame.columns[:20])) + (", ..." if frame.shape[1] > 20 else "")
        raise ValueError(
            f"{option} {column!r} is not a column of {path}; its columns are: {shown}."
        )


def _tabular_preprocessor(X: pd.DataFrame) -> tuple[ColumnTransformer, dict[str, list]]:
    """Median imputation and scaling of the numeric columns, one-hot encoding of the others."""
    numeric = X.select_dtypes(include="number").columns.tolist()
    categorical = [column for column in X.columns if column not in numeric]
    preprocessor = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            ("categorical", OneHotEncoder(handle_unknown="ignore"), categorical),
        ],
        # Dense output: every method (gradient boosting included) takes it.
        sparse_threshold=0.0,
    )
    return preprocessor, {"numeric": numeric, "categorical": categorical}


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

    Notes
    -----
    The preprocessing uses scikit-learn's ``SimpleImputer``,
    ``StandardScaler``, ``OneHotEncoder``, ``ColumnTransformer`` and
    ``TfidfVectorizer`` [1]_.

    References
    ----------
    .. [1] F. Pedregosa et al., "Scikit-learn: Machine Learning in Python",
       JMLR 12, pp. 2825-2830, 2011.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import pandas as pd
    >>> from ldam_sklearn.compare import load_csv
    >>> frame = pd.DataFrame(
    ...     {"size": [1.0, 2.0, None, 4.0, 5.0, 6.0, 7.0, 8.0],
    ...      "colour": ["red", "blue"] * 4,
    ...      "label": ["a"] * 6 + ["b"] * 2}
    ... )
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     path = Path(tmp) / "toy.csv"
    ...     frame.to_csv(path, index=False)
    ...     data = load_csv(path, "label", test_size=0.25)
    >>> data.name, data.X_train.shape, data.X_test.shape
    ('toy', (6, 2), (2, 2))
    >>> data.config["features"]
    {'numeric': ['size'], 'categorical': ['colour']}
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
        kind = "text"
        X = frame[text_column].fillna("").astype(str)
        # sublinear tf and a capped vocabulary: the usual text-classification
        # TF-IDF, and a bounded input width for the network's first layer.
        preprocessor = TfidfVectorizer(sublinear_tf=True, max_features=20_000, dtype=np.float32)
        features = {"text": text_column}
    else:
        kind = "tabular"
        X = frame.drop(columns=[target])
        if X.shape[1] == 0:
            raise ValueError(f"{path} has no column besides the target {target!r}.")
        preprocessor, features = _tabular_preprocessor(X)
    return _stratified_data(
        X,
        y,
        test_size,
        name=path.stem,
        description=f"{path.name} ({kind}, target {target!r}), stratified test split",
        preprocessor=preprocessor,
        sparse=text_column is not None,
        config={
            "source": f"csv-{kind}",
            "path": str(path.resolve()),
            "target": target,
            "features": features,
            "rows_dropped_missing_target": n_rows - len(frame),
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
        If ``name`` is not one of :data:`IMBLEARN_DATASETS`; the message
        gives the closest names.

    Notes
    -----
    The 27 benchmark data sets of imbalanced-learn [1]_, hosted on Zenodo;
    they are read from the local cache only, never downloaded.

    References
    ----------
    .. [1] G. Lemaître, F. Nogueira and C. K. Aridas, "Imbalanced-learn: A
       Python Toolbox to Tackle the Curse of Imbalanced Datasets in Machine
       Learning", JMLR 18(17), 2017.

    Examples
    --------
    Without a cached copy the error names the file to provide (with the
    data cached, ``load_imblearn("ecoli")`` returns a
    :class:`ComparisonData`):

    >>> import tempfile
    >>> from ldam_sklearn.compare import load_imblearn
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     try:
    ...         load_imblearn("ecoli", data_home=tmp)
    ...     except FileNotFoundError as exc:
    ...         print("is not cached" in str(exc), "x1data.npz" in str(exc))
    True True
    """
    if name not in IMBLEARN_DATASETS:
        close = difflib.get_close_matches(name, IMBLEARN_DATASETS, n=3, cutoff=0.5)
        hint = f"did you mean {' or '.join(map(repr, close))}? " if close else ""
        raise ValueError(
            f"{name!r} is not an imbalanced-learn data set; {hint}"
            f"the names are: {', '.join(IMBLEARN_DATASETS)}."
        )
    data_home = None if data_home is None else str(data_home)  # imblearn takes str only
    try:
        found = fetch_datasets(filter_data=(name,), download_if_missing=False, data_home=data_home)
    except OSError as exc:
        # fetch_datasets says only "Data not found"; name the file it looks for.
        number = _zenodo.MAP_NAME_ID[name]
        expected = Path(get_data_home(data_home)) / "zenodo" / f"x{number}data.npz"
        raise FileNotFoundError(
            f"imbalanced-learn data set {name!r} is not cached: expected {expected}. Fetch it "
            'once with network access (python -c "from imblearn.datasets import '
            f"fetch_datasets; fetch_datasets(filter_data=('{name}',))\"), or point --data-home "
            "at the folder that holds zenodo/."
        ) from exc
    bunch = found[name]
    y = _check_labels(bunch.target, f"imbalanced-learn data set {name!r}")
    return _stratified_data(
        bunch.data,
        y,
        test_size,
        name=name,
        description=f"imbalanced-learn {name!r}, stratified test split",
        preprocessor=StandardScaler(),
        config={"source": "imblearn", "dataset": name},
    )
