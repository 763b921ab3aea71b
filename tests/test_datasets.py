"""Tests for ldam_sklearn.datasets."""

import random

import numpy as np
import pytest
import scipy.sparse as sp

from ldam_sklearn import datasets
from ldam_sklearn.datasets import (
    get_data_home,
    load_long_tailed_mnist1d,
    load_mnist1d,
    long_tailed_counts,
    make_long_tailed,
)

# Tiny MNIST-1D (0.02 s to generate) for the cache tests; the default size
# takes about a second, so it is generated once per module (fixture below).
SMALL = 100


def _balanced(n_per_class=60, n_classes=10, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), n_per_class)
    X = rng.normal(size=(y.size, 3))
    # A unique id column makes every row identifiable in the input.
    X[:, 0] = np.arange(y.size)
    perm = rng.permutation(y.size)
    return X[perm], y[perm]


@pytest.fixture(scope="module")
def mnist_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("mnist1d_cache")
    load_mnist1d(data_home=home)
    return home


# --- long_tailed_counts / make_long_tailed ----------------------------------


@pytest.mark.parametrize("n_max", [1, 7, 60, 500, 5000])
@pytest.mark.parametrize("n_classes", [2, 3, 10, 100])
@pytest.mark.parametrize("rho", [1, 2.5, 10, 100, 256])
def test_counts_follow_the_formula(n_max, n_classes, rho):
    # Independent form of the paper's formula: (1/rho) ** (i / (C - 1)).
    i = np.arange(n_classes)
    expected_exp = np.floor(n_max * (1.0 / rho) ** (i / (n_classes - 1)))
    head = i < n_classes // 2
    expected_step = np.where(head, n_max, np.floor(n_max / rho))
    for profile, expected in (("exp", expected_exp), ("step", expected_step)):
        counts = long_tailed_counts(n_max, n_classes, rho, profile)
        assert counts.dtype == np.int64
        np.testing.assert_array_equal(counts, np.maximum(expected, 1))
        assert counts[0] == n_max
        assert counts.min() >= 1
        assert np.all(np.diff(counts) <= 0)


def test_counts_match_cifar_lt():
    # Training counts of CIFAR-10-LT / CIFAR-100-LT in the official LDAM code.
    assert long_tailed_counts(5000, 10, 100).tolist() == [
        5000, 2997, 1796, 1077, 645, 387, 232, 139, 83, 50,
    ]  # fmt: skip
    assert long_tailed_counts(5000, 10, 10).tolist() == [
        5000, 3871, 2997, 2320, 1796, 1391, 1077, 834, 645, 500,
    ]  # fmt: skip
    c100 = long_tailed_counts(500, 100, 100)
    assert (c100[0], c100[-1], c100.sum()) == (500, 5, 10847)


@pytest.mark.parametrize("profile", ["exp", "step"])
@pytest.mark.parametrize("rho", [1, 10, 100])
def test_make_long_tailed_counts_and_ratio(profile, rho):
    X, y = _balanced(n_per_class=500)
    X_lt, y_lt = make_long_tailed(X, y, rho, profile, random_state=0)
    counts = np.bincount(y_lt)
    np.testing.assert_array_equal(counts, long_tailed_counts(500, 10, rho, profile))
    assert counts.max() / counts.min() == pytest.approx(rho)
    assert X_lt.shape == (counts.sum(), X.shape[1])


def test_n_max_is_the_smallest_input_class():
    X, y = _balanced(n_per_class=50, n_classes=4)
    keep = (y != 2) | (np.cumsum(y == 2) <= 20)  # class 2 has only 20 samples
    _, y_lt = make_long_tailed(X[keep], y[keep], 4, random_state=0)
    assert np.bincount(y_lt).tolist() == long_tailed_counts(20, 4, 4).tolist()


def test_larger_n_max_keeps_whole_classes_that_fall_short():
    X, y = _balanced(n_per_class=50, n_classes=4)
    keep = (y != 1) | (np.cumsum(y == 1) <= 20)  # class 1 has only 20 samples
    _, y_lt = make_long_tailed(X[keep], y[keep], 4, n_max=50, random_state=0)
    # Targets 50, 31, 19, 12: class 1 keeps its 20 rows instead of 31.
    assert np.bincount(y_lt).tolist() == [50, 20, 19, 12]


def test_class_order_picks_the_head_and_the_tail():
    X, y = _balanced(n_per_class=40, n_classes=3)
    names = np.array(["cat", "ant", "bee"])[y]
    _, y_lt = make_long_tailed(X, names, 4, class_order=["cat", "ant", "bee"], random_state=0)
    labels, counts = np.unique(y_lt, return_counts=True)
    assert dict(zip(labels.tolist(), counts.tolist(), strict=True)) == {
        "cat": 40,
        "ant": 20,
        "bee": 10,
    }


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"class_order": [0, 1]}, "class_order must hold every label"),
        ({"class_order": [0, 1, 2, 2]}, "class_order must hold every label"),
        ({"class_order": [0, 1, 2, 7]}, "class_order must hold every label"),
        ({"n_max": 0}, "n_max must be an integer >= 1"),
        ({"n_max": 2.5}, "n_max must be an integer >= 1"),
    ],
)
def test_bad_n_max_and_class_order(kwargs, match):
    X, y = _balanced(n_per_class=10, n_classes=4)
    with pytest.raises(ValueError, match=match):
        make_long_tailed(X, y, 4, **kwargs)


def test_rows_are_input_rows_with_their_labels_in_input_order():
    X, y = _balanced()
    X_lt, y_lt = make_long_tailed(X, y, 10, random_state=3)
    # Position in the input of each returned row, found by its id column.
    pos = np.argsort(X[:, 0])[X_lt[:, 0].astype(int)]
    assert np.all(np.diff(pos) > 0)  # input order kept, no duplicates
    np.testing.assert_array_equal(X_lt, X[pos])
    np.testing.assert_array_equal(y_lt, y[pos])


def test_sparse_input_stays_sparse():
    X, y = _balanced()
    for X_sparse in (sp.csr_matrix(X), sp.coo_matrix(X), sp.csc_array(X)):
        X_lt, y_lt = make_long_tailed(X_sparse, y, 10, random_state=0)
        assert sp.issparse(X_lt)
        X_dense, y_dense = make_long_tailed(X, y, 10, random_state=0)
        np.testing.assert_array_equal(X_lt.toarray(), X_dense)
        np.testing.assert_array_equal(y_lt, y_dense)


def test_pandas_stays_pandas():
    pd = pytest.importorskip("pandas")
    X, y = _balanced(n_per_class=20, n_classes=3)
    index = np.arange(100, 100 + y.size)
    X_lt, y_lt = make_long_tailed(
        pd.DataFrame(X, index=index), pd.Series(y, index=index), 4, random_state=0
    )
    assert isinstance(X_lt, pd.DataFrame) and isinstance(y_lt, pd.Series)
    assert X_lt.index.equals(y_lt.index)
    assert y_lt.value_counts().sort_index().tolist() == [20, 10, 5]


def test_string_labels_ranked_by_sorted_label():
    X, y = _balanced(n_per_class=40, n_classes=3)
    names = np.array(["cat", "ant", "bee"])[y]  # sorted: ant, bee, cat
    _, y_lt = make_long_tailed(X, names, 4, random_state=0)
    labels, counts = np.unique(y_lt, return_counts=True)
    assert labels.tolist() == ["ant", "bee", "cat"]
    assert counts.tolist() == long_tailed_counts(40, 3, 4).tolist() == [40, 20, 10]


def test_same_random_state_same_output():
    X, y = _balanced()
    a = make_long_tailed(X, y, 10, random_state=42)
    b = make_long_tailed(X, y, 10, random_state=42)
    c = make_long_tailed(X, y, 10, random_state=43)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"imbalance_ratio": 0.5}, "imbalance_ratio must be .* >= 1"),
        ({"imbalance_ratio": np.inf}, "imbalance_ratio must be .* >= 1"),
        ({"imbalance_ratio": "10"}, "imbalance_ratio must be .* >= 1"),
        ({"profile": "linear"}, r"profile must be one of \('exp', 'step'\)"),
    ],
)
def test_bad_arguments(kwargs, match, tmp_path):
    X, y = _balanced()
    with pytest.raises(ValueError, match=match):
        make_long_tailed(X, y, **kwargs)
    with pytest.raises(ValueError, match=match):
        long_tailed_counts(10, 3, **{"imbalance_ratio": 10, **kwargs})
    # Checked before MNIST-1D is generated: data_home is never created.
    with pytest.raises(ValueError, match=match):
        load_long_tailed_mnist1d(**kwargs, data_home=tmp_path / "never")
    assert not (tmp_path / "never").exists()


def test_bad_labels_and_counts():
    X, y = _balanced()
    with pytest.raises(ValueError, match="at least 2 classes"):
        make_long_tailed(X, np.zeros_like(y))
    with pytest.raises(ValueError, match="binary or multiclass"):
        make_long_tailed(X, y + 0.5)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        make_long_tailed(X[:-1], y)
    with pytest.raises(ValueError, match="n_classes must be an integer >= 2"):
        long_tailed_counts(10, 1, 10)
    with pytest.raises(ValueError, match="n_max must be an integer >= 1"):
        long_tailed_counts(0, 3, 10)


# --- MNIST-1D ---------------------------------------------------------------


def test_get_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("LDAM_SKLEARN_DATA", str(tmp_path / "from_env"))
    assert get_data_home() == tmp_path / "from_env"
    assert (tmp_path / "from_env").is_dir()
    assert get_data_home(tmp_path / "explicit") == tmp_path / "explicit"
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("LDAM_SKLEARN_DATA")
    assert get_data_home() == tmp_path / ".cache" / "ldam_sklearn"


def test_load_mnist1d_shapes_and_dtypes(mnist_home):
    mnist = load_mnist1d(data_home=mnist_home)
    assert mnist.data.shape == (4000, 40) and mnist.data.dtype == np.float32
    assert mnist.data_test.shape == (1000, 40)
    assert mnist.data_test.dtype == np.float32
    assert mnist.target.shape == (4000,) and mnist.target.dtype == np.int64
    assert mnist.target_test.shape == (1000,)
    assert mnist.target_test.dtype == np.int64
    assert set(mnist.target.tolist()) == set(mnist.target_test.tolist()) == set(range(10))
    assert "MNIST-1D" in mnist.DESCR


def test_load_mnist1d_reads_cache(mnist_home, monkeypatch):
    first = load_mnist1d(data_home=mnist_home)

    def fail(*args, **kwargs):
        raise AssertionError("make_dataset called despite the cache")

    monkeypatch.setattr("mnist1d.data.make_dataset", fail)
    second = load_mnist1d(data_home=mnist_home)
    for key in ("data", "target", "data_test", "target_test"):
        np.testing.assert_array_equal(first[key], second[key])
    with pytest.raises(AssertionError, match="despite the cache"):
        load_mnist1d(data_home=mnist_home, cache=False)
    with pytest.raises(AssertionError, match="despite the cache"):
        load_mnist1d(data_home=mnist_home, random_state=1)  # another key


def test_cache_files_and_no_cache(tmp_path):
    load_mnist1d(n_samples=SMALL, data_home=tmp_path / "off", cache=False)
    assert not (tmp_path / "off").exists()
    load_mnist1d(n_samples=SMALL, data_home=tmp_path)
    # One complete file, no leftover temporary file.
    assert [p.suffix for p in tmp_path.iterdir() if p.is_file()] == [".npz"]


@pytest.mark.parametrize("damage", ["garbage", "truncated", "missing_key"])
def test_corrupt_cache_is_regenerated(tmp_path, damage):
    fresh = load_mnist1d(n_samples=SMALL, data_home=tmp_path)
    (path,) = tmp_path.glob("*.npz")
    if damage == "garbage":
        path.write_bytes(b"not an npz file")
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:200])
    else:
        np.savez_compressed(path, data=fresh.data)
    again = load_mnist1d(n_samples=SMALL, data_home=tmp_path)
    np.testing.assert_array_equal(again.data, fresh.data)
    np.testing.assert_array_equal(again.target_test, fresh.target_test)
    with np.load(path) as npz:  # the file was rewritten and is complete
        np.testing.assert_array_equal(npz["target"], fresh.target)


def test_mnist1d_seed_and_global_rng(tmp_path):
    # mnist1d reseeds the legacy global generators; the loader must restore them.
    np.random.seed(123)  # noqa: NPY002
    random.seed(123)
    expected = (np.random.rand(), random.random())  # noqa: NPY002
    np.random.seed(123)  # noqa: NPY002
    random.seed(123)
    a = load_mnist1d(n_samples=SMALL, random_state=5, cache=False)
    assert (np.random.rand(), random.random()) == expected  # noqa: NPY002
    b = load_mnist1d(n_samples=SMALL, random_state=5, data_home=tmp_path)
    c = load_mnist1d(n_samples=SMALL, random_state=6, data_home=tmp_path)
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(a.data, c.data)
    assert a.data.shape == (80, 40) and a.data_test.shape == (20, 40)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_samples": 105}, "multiple of 10"),
        ({"n_samples": 0}, "n_samples must be an integer >= 10"),
        ({"random_state": None}, r"random_state must be an integer in \[0,"),
        ({"random_state": -1}, r"random_state must be an integer in \[0,"),
    ],
)
def test_load_mnist1d_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_mnist1d(data_home=tmp_path, **kwargs)


def test_unwritable_cache_warns_and_returns_data(tmp_path, monkeypatch):
    def fail(path, arrays):
        raise PermissionError("read-only")

    monkeypatch.setattr(datasets, "_write_cache", fail)
    with pytest.warns(RuntimeWarning, match="Could not cache"):
        mnist = load_mnist1d(n_samples=SMALL, data_home=tmp_path)
    assert mnist.data.shape == (80, 40)


@pytest.mark.parametrize("profile", ["exp", "step"])
def test_load_long_tailed_mnist1d(mnist_home, profile):
    full = load_mnist1d(data_home=mnist_home)
    lt = load_long_tailed_mnist1d(100, profile, data_home=mnist_home)
    n_max = np.bincount(full.target).min()
    expected = long_tailed_counts(int(n_max), 10, 100, profile)
    np.testing.assert_array_equal(lt.class_counts, expected)
    np.testing.assert_array_equal(np.bincount(lt.target, minlength=10), expected)
    assert lt.data.shape == (expected.sum(), 40) and lt.data.dtype == np.float32
    assert lt.target.dtype == np.int64
    # The test split is mnist1d's own, unchanged.
    np.testing.assert_array_equal(lt.data_test, full.data_test)
    np.testing.assert_array_equal(lt.target_test, full.target_test)
    assert "roughly" in lt.DESCR and str(expected.tolist()) in lt.DESCR
    again = load_long_tailed_mnist1d(100, profile, data_home=mnist_home)
    np.testing.assert_array_equal(lt.data, again.data)
