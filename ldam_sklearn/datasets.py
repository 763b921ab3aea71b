"""Long-tailed benchmark data sets.

:func:`make_long_tailed` turns a roughly balanced labelled set into the
long-tailed training sets of Cao et al. (2019); :func:`load_mnist1d` generates
the MNIST-1D data set locally (never downloading) and caches it; and
:func:`load_long_tailed_mnist1d` combines the two into a long-tailed training
set with a (roughly) balanced test set.
"""

from __future__ import annotations

import importlib.metadata
import numbers
import os
import random
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
from imblearn.datasets import make_imbalance
from sklearn.utils import Bunch, _safe_indexing, indexable
from sklearn.utils.multiclass import type_of_target

__all__ = [
    "get_data_home",
    "load_long_tailed_mnist1d",
    "load_mnist1d",
    "long_tailed_counts",
    "make_long_tailed",
]

_PROFILES = ("exp", "step")
_MNIST1D_KEYS = ("data", "target", "data_test", "target_test")


def _check_int(name: str, value: int, low: int, high: int | None = None) -> int:
    # bool is a numbers.Integral, but True/False are never meant as counts.
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < low
        or (high is not None and value > high)
    ):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be an integer {bounds}, got {value!r}.")
    return int(value)


def _check_profile(imbalance_ratio: float, profile: str) -> float:
    # bool is a numbers.Real; True would silently mean "balanced".
    if (
        isinstance(imbalance_ratio, bool)
        or not isinstance(imbalance_ratio, numbers.Real)
        or not np.isfinite(imbalance_ratio)
        or imbalance_ratio < 1
    ):
        raise ValueError(
            f"imbalance_ratio must be a finite real number >= 1, got {imbalance_ratio!r}."
        )
    if profile not in _PROFILES:
        raise ValueError(f"profile must be one of {_PROFILES}, got {profile!r}.")
    return float(imbalance_ratio)


def long_tailed_counts(
    n_max: int, n_classes: int, imbalance_ratio: float, profile: str = "exp"
) -> np.ndarray:
    """Per-class sample counts of a long-tailed profile.

    Class ``i`` of ``C`` gets ``int(n_max * imbalance_ratio ** (-i / (C - 1)))``
    samples with the exponential profile. With the step profile the first
    ``C // 2`` classes get ``n_max`` samples and the others
    ``int(n_max / imbalance_ratio)``. Every class gets at least one sample, so
    the realised ratio is below ``imbalance_ratio`` when that exceeds ``n_max``.

    Parameters
    ----------
    n_max : int
        Count of the most frequent class (class 0), at least 1.
    n_classes : int
        Number of classes ``C``, at least 2.
    imbalance_ratio : float
        Ratio ``rho`` between the most and the least frequent class, at least 1.
    profile : {"exp", "step"}, default="exp"
        Exponential decay or a two-level step.

    Returns
    -------
    counts : ndarray of shape (n_classes,), dtype int64
        Number of samples of each class, non-increasing.

    Raises
    ------
    ValueError
        If an argument is out of range or ``profile`` is unknown.

    References
    ----------
    .. [1] K. Cao, C. Wei, A. Gaidon, N. Arechiga and T. Ma, "Learning
       Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
       NeurIPS 2019, arXiv:1906.07413.

    Examples
    --------
    The CIFAR-10-LT training counts of the paper (imbalance ratio 100):

    >>> from ldam_sklearn.datasets import long_tailed_counts
    >>> long_tailed_counts(5000, 10, 100).tolist()
    [5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50]
    >>> long_tailed_counts(5000, 10, 100, profile="step").tolist()
    [5000, 5000, 5000, 5000, 5000, 50, 50, 50, 50, 50]
    """
    imbalance_ratio = _check_profile(imbalance_ratio, profile)
    n_max = _check_int("n_max", n_max, 1)
    n_classes = _check_int("n_classes", n_classes, 2)

    if profile == "exp":
        # Plain Python floats and int() truncation, exactly as the paper's
        # formula; this reproduces the official CIFAR-LT counts.
        counts = [int(n_max * imbalance_ratio ** (-i / (n_classes - 1))) for i in range(n_classes)]
    else:
        n_head = n_classes // 2
        n_tail = int(n_max / imbalance_ratio)
        counts = [n_max] * n_head + [n_tail] * (n_classes - n_head)
    return np.maximum(np.asarray(counts, dtype=np.int64), 1)


def make_long_tailed(
    X,
    y,
    imbalance_ratio: float = 100.0,
    profile: str = "exp",
    *,
    n_max: int | None = None,
    class_order=None,
    random_state=None,
):
    """Subsample a labelled set into a long-tailed one.

    Classes are ranked by label order (class ``i`` is the ``i``-th value of
    ``np.unique(y)``, or of ``class_order``) and class ``i`` keeps
    ``long_tailed_counts(n_max, C, imbalance_ratio, profile)[i]`` samples
    drawn at random without replacement, or all of its samples when it has
    fewer. By default ``n_max`` is the smallest class count of the input, so
    that every class meets its target. The kept rows stay in their input
    order.

    Parameters
    ----------
    X : {array-like, sparse matrix} of shape (n_samples, n_features)
        Samples. Sparse matrices are returned in CSR format, pandas objects
        stay pandas objects.
    y : array-like of shape (n_samples,)
        Binary or multiclass labels (numbers or strings).
    imbalance_ratio : float, default=100.0
        Ratio ``rho`` between the largest and the smallest class, at least 1.
    profile : {"exp", "step"}, default="exp"
        Exponential decay of the class counts, or a step where the first half
        of the classes keep ``n_max`` samples and the rest ``n_max / rho``.
    n_max : int or None, default=None
        Target count of the first class. ``None`` takes the smallest class
        count of the input. A larger value keeps more rows of the head
        classes (as the CIFAR-LT sets keep the largest class whole) at the
        price of an inexact profile: a class with fewer rows than its
        target keeps all of them.
    class_order : array-like of shape (n_classes,), default=None
        Every label of ``y`` once, the head class first. ``None`` is the
        sorted label order; a shuffled order (e.g. from a fixed seed)
        keeps the profile from following whatever the label names encode.
    random_state : int, RandomState instance or None, default=None
        Controls which samples are kept.

    Returns
    -------
    X_lt : {ndarray, sparse matrix, DataFrame} of shape (n_kept, n_features)
        The kept rows of ``X``, in the container type of ``X`` (sparse input
        comes back as CSR).
    y_lt : {ndarray, Series} of shape (n_kept,)
        Their labels, in the container type of ``y``.

    Raises
    ------
    ValueError
        If ``imbalance_ratio < 1``, ``profile`` is unknown, ``y`` is not
        binary or multiclass, has fewer than two classes, ``n_max < 1``, or
        ``class_order`` is not a permutation of the labels.

    See Also
    --------
    long_tailed_counts : The per-class counts used here.
    imblearn.datasets.make_imbalance : The subsampler used here.

    References
    ----------
    .. [1] K. Cao, C. Wei, A. Gaidon, N. Arechiga and T. Ma, "Learning
       Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
       NeurIPS 2019, arXiv:1906.07413.

    Examples
    --------
    >>> import numpy as np
    >>> from ldam_sklearn.datasets import make_long_tailed
    >>> X = np.arange(200).reshape(100, 2)
    >>> y = np.repeat(np.arange(5), 20)
    >>> X_lt, y_lt = make_long_tailed(X, y, imbalance_ratio=10, random_state=0)
    >>> np.bincount(y_lt).tolist()
    [20, 11, 6, 3, 2]
    >>> _, y_lt = make_long_tailed(
    ...     X, y, imbalance_ratio=10, n_max=40, class_order=[4, 3, 2, 1, 0], random_state=0
    ... )
    >>> np.bincount(y_lt).tolist()
    [4, 7, 12, 20, 20]
    """
    # Validate the cheap scalar arguments before touching the data.
    imbalance_ratio = _check_profile(imbalance_ratio, profile)
    # indexable checks consistent lengths and turns COO/other sparse formats
    # into CSR, which supports the row indexing below.
    X, y = indexable(X, y)
    y_arr = np.asarray(y)
    target_type = type_of_target(y_arr, input_name="y")
    if target_type not in ("binary", "multiclass"):
        raise ValueError(f"y must be binary or multiclass labels, got target type {target_type!r}.")
    classes, class_counts = np.unique(y_arr, return_counts=True)
    if classes.size < 2:
        raise ValueError(f"y must contain at least 2 classes, got {classes.size}.")

    if class_order is not None:
        order = np.asarray(class_order)
        if order.shape != classes.shape or not np.array_equal(np.sort(order), classes):
            raise ValueError(
                f"class_order must hold every label of y once, got {class_order!r} for the "
                f"labels {classes.tolist()}."
            )
        # The i-th class of the profile is class_order[i].
        class_counts = class_counts[np.searchsorted(classes, order)]
        classes = order
    n_max = int(class_counts.min()) if n_max is None else _check_int("n_max", n_max, 1)
    counts = long_tailed_counts(n_max, classes.size, imbalance_ratio, profile)
    counts = np.minimum(counts, class_counts)
    # make_imbalance picks the rows; running it on row indices rather than on
    # X lets any X that _safe_indexing supports through and keeps input order
    # (make_imbalance itself returns the rows grouped by class).
    kept, _ = make_imbalance(
        np.arange(y_arr.shape[0]).reshape(-1, 1),
        y_arr,
        sampling_strategy=dict(zip(classes, counts.tolist(), strict=True)),
        random_state=random_state,
    )
    kept = np.sort(kept.ravel())
    return _safe_indexing(X, kept), _safe_indexing(y, kept)


def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
    """Return the folder where ldam_sklearn caches data sets, creating it.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The folder to use. If None, the environment variable
        ``LDAM_SKLEARN_DATA`` is used when set and non-empty, otherwise
        ``~/.cache/ldam_sklearn``. ``~`` is expanded.

    Returns
    -------
    data_home : pathlib.Path
        The (existing) cache folder.

    See Also
    --------
    sklearn.datasets.get_data_home : scikit-learn's counterpart [1]_, which
        imbalanced-learn's data sets use.

    References
    ----------
    .. [1] scikit-learn documentation, "sklearn.datasets.get_data_home",
       https://scikit-learn.org/stable/modules/generated/sklearn.datasets.get_data_home.html;
       F. Pedregosa et al., "Scikit-learn: Machine Learning in Python",
       JMLR 12, pp. 2825-2830, 2011.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from ldam_sklearn.datasets import get_data_home
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     get_data_home(Path(tmp) / "cache").is_dir()
    True
    """
    if data_home is None:
        data_home = os.environ.get("LDAM_SKLEARN_DATA") or "~/.cache/ldam_sklearn"
    path = Path(data_home).expanduser()
    path.mkdir(parents=True, exist_ok=True)
    return path


def _generate_mnist1d(n_samples: int, seed: int) -> dict[str, np.ndarray]:
    # Imported here: mnist1d pulls in matplotlib (~0.6 s), which users of the
    # rest of the package should not pay for, and it is an optional dependency.
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("load_mnist1d needs the 'mnist1d' package: pip install mnist1d") from exc
    args = get_dataset_args()
    args.num_samples = n_samples
    args.seed = seed
    # make_dataset reseeds the global `random` and NumPy generators; restore
    # them so that loading data does not change the caller's random stream.
    # (NPY002: the legacy global generator is exactly what must be restored.)
    np_state, py_state = np.random.get_state(), random.getstate()  # noqa: NPY002
    try:
        raw = make_dataset(args)
    finally:
        np.random.set_state(np_state)  # noqa: NPY002
        random.setstate(py_state)
    return {
        "data": raw["x"].astype(np.float32),
        "target": raw["y"].astype(np.int64),
        "data_test": raw["x_test"].astype(np.float32),
        "target_test": raw["y_test"].astype(np.int64),
    }


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    # Anything unreadable or incomplete counts as a cache miss, so a damaged
    # file is regenerated rather than reported.
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in _MNIST1D_KEYS}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None
    n_features = arrays["data"].shape[1:]
    consistent = (
        arrays["data"].ndim == 2
        and arrays["data_test"].shape[1:] == n_features
        and arrays["target"].shape == arrays["data"].shape[:1]
        and arrays["target_test"].shape == arrays["data_test"].shape[:1]
    )
    return arrays if consistent else None


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    # Write to a temporary file in the same folder, then rename: os.replace is
    # atomic, so readers never see a half-written cache file.
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **arrays)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def load_mnist1d(
    *,
    n_samples: int = 5000,
    random_state: int = 0,
    cache: bool = True,
    data_home: str | os.PathLike | None = None,
) -> Bunch:
    """Generate (or load from the cache) the MNIST-1D data set.

    MNIST-1D [1]_ has 10 classes of 1-D signals with 40 features. It is
    generated locally by ``mnist1d.data.make_dataset`` (nothing is
    downloaded), which takes about one second for the default size, and is
    then cached as a compressed ``.npz`` file keyed by the mnist1d version,
    ``n_samples`` and ``random_state``.

    Parameters
    ----------
    n_samples : int, default=5000
        Total number of samples, a positive multiple of 10. mnist1d draws
        ``n_samples / 10`` per class, shuffles them and puts the first 80% in
        the training split, the rest in the test split.
    random_state : int, default=0
        Seed of the generator, an integer in ``[0, 2**32 - 1]`` (it is part
        of the cache key, hence no RandomState instance or None). The global
        NumPy and ``random`` generators are left untouched.
    cache : bool, default=True
        Whether to read and write the cache. An unreadable cache file is
        regenerated; if the cache cannot be written, a warning is issued and
        the generated data is returned anyway.
    data_home : str or path-like, default=None
        Cache folder; see :func:`get_data_home`.

    Returns
    -------
    data : sklearn.utils.Bunch
        With ``data`` (float32, shape ``(0.8 * n_samples, 40)``), ``target``
        (int64 labels 0..9), ``data_test`` and ``target_test`` (the fixed test
        split) and ``DESCR``. The classes are balanced over both splits
        together, only roughly within each split.

    Raises
    ------
    ValueError
        If ``n_samples`` or ``random_state`` is out of range.

    References
    ----------
    .. [1] S. Greydanus, "Scaling down Deep Learning", 2020,
       arXiv:2011.14439.

    Examples
    --------
    >>> import tempfile
    >>> from ldam_sklearn.datasets import load_mnist1d
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     mnist = load_mnist1d(data_home=tmp)
    >>> mnist.data.shape, mnist.data.dtype, mnist.data_test.shape
    ((4000, 40), dtype('float32'), (1000, 40))
    >>> sorted(set(mnist.target.tolist())) == list(range(10))
    True
    """
    n_samples = _check_int("n_samples", n_samples, 10)
    if n_samples % 10:
        # mnist1d draws n_samples // 10 per class and would silently drop
        # the remainder.
        raise ValueError(f"n_samples must be a multiple of 10, got {n_samples}.")
    random_state = _check_int("random_state", random_state, 0, 2**32 - 1)

    arrays = None
    if cache:
        # The mnist1d version is in the key because another version may
        # generate different data from the same seed.
        version = importlib.metadata.version("mnist1d")
        path = get_data_home(data_home) / f"mnist1d-{version}-n{n_samples}-seed{random_state}.npz"
        arrays = _read_cache(path)
    if arrays is None:
        arrays = _generate_mnist1d(n_samples, random_state)
        if cache:
            try:
                _write_cache(path, arrays)
            except OSError as exc:
                warnings.warn(
                    f"Could not cache MNIST-1D in {path.parent}: {exc}",
                    RuntimeWarning,
                    stacklevel=2,
                )

    train_counts = np.bincount(arrays["target"], minlength=10).tolist()
    test_counts = np.bincount(arrays["target_test"], minlength=10).tolist()
    descr = (
        "MNIST-1D (Greydanus 2020), generated locally with mnist1d "
        f"(n_samples={n_samples}, seed={random_state}).\n"
        f"{sum(train_counts)} training and {sum(test_counts)} test samples, "
        f"{arrays['data'].shape[1]} features, 10 classes (labels 0..9).\n"
        f"Training class counts: {train_counts}\n"
        f"Test class counts: {test_counts}\n"
    )
    return Bunch(**arrays, DESCR=descr)


def load_long_tailed_mnist1d(
    imbalance_ratio: float = 100.0,
    profile: str = "exp",
    *,
    n_samples: int = 5000,
    random_state: int = 0,
    data_home: str | os.PathLike | None = None,
) -> Bunch:
    """Load MNIST-1D with a long-tailed training set and its usual test set.

    The training split of :func:`load_mnist1d` is subsampled by
    :func:`make_long_tailed`; the test split is returned unchanged. That test
    split is only roughly balanced (mnist1d balances the classes before its
    shuffled 80/20 split; with the defaults the test classes have 89 to 111
    samples), so report class-balanced metrics such as balanced accuracy.

    Parameters
    ----------
    imbalance_ratio : float, default=100.0
        Ratio between the largest and the smallest training class, at least 1.
    profile : {"exp", "step"}, default="exp"
        Long-tailed profile; see :func:`make_long_tailed`.
    n_samples : int, default=5000
        Total MNIST-1D size before the 80/20 split; see :func:`load_mnist1d`.
        The largest training class has the smallest class count of the full
        training split (about ``0.08 * n_samples``), the rarest one
        ``1 / imbalance_ratio`` of that, so raise it for less tiny tails.
    random_state : int, default=0
        Seed of both the MNIST-1D generator and the subsampling.
    data_home : str or path-like, default=None
        Cache folder; see :func:`get_data_home`.

    Returns
    -------
    data : sklearn.utils.Bunch
        With ``data`` (float32) and ``target`` (int64) for the long-tailed
        training set, ``data_test`` and ``target_test`` for the test set,
        ``class_counts`` (training count of each class 0..9) and ``DESCR``.

    Raises
    ------
    ValueError
        If an argument is out of range or ``profile`` is unknown.

    References
    ----------
    .. [1] K. Cao, C. Wei, A. Gaidon, N. Arechiga and T. Ma, "Learning
       Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
       NeurIPS 2019, arXiv:1906.07413.
    .. [2] S. Greydanus, "Scaling down Deep Learning", 2020,
       arXiv:2011.14439.

    Examples
    --------
    >>> import tempfile
    >>> from ldam_sklearn.datasets import load_long_tailed_mnist1d
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     lt = load_long_tailed_mnist1d(imbalance_ratio=10, data_home=tmp)
    >>> lt.class_counts.tolist()
    [389, 301, 233, 180, 139, 108, 83, 64, 50, 38]
    >>> lt.data.shape, lt.data_test.shape
    ((1585, 40), (1000, 40))
    """
    # Fail fast, before the (possibly uncached) generation.
    imbalance_ratio = _check_profile(imbalance_ratio, profile)
    full = load_mnist1d(n_samples=n_samples, random_state=random_state, data_home=data_home)
    X, y = make_long_tailed(
        full.data, full.target, imbalance_ratio, profile, random_state=random_state
    )
    class_counts = np.bincount(y, minlength=10)
    descr = (
        f"Long-tailed MNIST-1D: training set subsampled with the {profile!r} "
        f"profile, imbalance ratio {imbalance_ratio:g} (Cao et al. 2019).\n"
        f"Training class counts: {class_counts.tolist()}\n"
        "The test set is MNIST-1D's own test split, unchanged and only roughly "
        f"balanced: {np.bincount(full.target_test, minlength=10).tolist()}\n\n" + full.DESCR
    )
    return Bunch(
        data=X,
        target=y,
        data_test=full.data_test,
        target_test=full.target_test,
        class_counts=class_counts,
        DESCR=descr,
    )
