"""The estimator core: validation, labels, devices, seeds, data path, persistence."""

import functools
import pickle

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.preprocessing import StandardScaler
from torch import nn

from ldam_sklearn import L2RWClassifier, LDAMDRWClassifier, MetaWeightNetClassifier, base, optim
from ldam_sklearn.base import resolve_device
from ldam_sklearn.modules import SparseLinear, sparse_input_scale

FAST = {"max_epochs": 5, "random_state": 0, "module__hidden_layer_sizes": (32,)}


def test_string_and_noncontiguous_labels_round_trip(imbalanced_data):
    X, y = imbalanced_data
    labels = np.array(["cat", "dog", "emu"])[y]
    clf = LDAMDRWClassifier(**FAST).fit(X, labels)
    assert clf.classes_.tolist() == ["cat", "dog", "emu"]
    assert set(clf.predict(X)) <= set(clf.classes_)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])

    ints = np.array([-7, 10, 1000])[y]
    clf = LDAMDRWClassifier(**FAST).fit(X, ints)
    assert clf.classes_.tolist() == [-7, 10, 1000]
    assert clf.class_counts_.tolist() == np.bincount(y).tolist()


def test_pandas_categorical_and_feature_names(imbalanced_data):
    X, y = imbalanced_data
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    target = pd.Series(pd.Categorical(np.array(["a", "b", "c"])[y]))
    clf = LDAMDRWClassifier(**FAST).fit(df, target)
    assert clf.feature_names_in_.tolist() == list(df.columns)
    assert clf.n_features_in_ == X.shape[1]
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(df.rename(columns={"f0": "other"}))


@pytest.mark.parametrize(
    "X_bad, message",
    [
        (np.full((10, 3), np.nan), "NaN"),
        (np.full((10, 3), np.inf), "infinity"),
        (np.empty((0, 3)), "0 sample"),
        (np.array([["a", "b"]] * 10, dtype=object), "could not convert"),
        (np.arange(10.0), "Expected 2D array"),
    ],
)
def test_bad_X_raises_clear_error(X_bad, message):
    y = np.arange(len(X_bad)) % 2
    with pytest.raises(ValueError, match=message):
        LDAMDRWClassifier(**FAST).fit(X_bad, y)


@pytest.mark.parametrize(
    "y_bad, message",
    [
        (np.ones(20), "only one class"),
        (np.linspace(0, 1, 20), "Unknown label type"),
        (np.eye(20)[:, :3].astype(int), "Multilabel and multioutput targets are not supported"),
    ],
)
def test_bad_y_raises_clear_error(y_bad, message):
    X = np.random.RandomState(0).randn(20, 3)
    with pytest.raises(ValueError, match=message):
        LDAMDRWClassifier(**FAST).fit(X, y_bad)


def test_wrong_feature_count_at_predict(imbalanced_data):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(**FAST).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :5])
    with pytest.raises(ValueError, match="NaN"):
        clf.predict(np.full_like(X, np.nan))


def test_predict_before_fit_raises_not_fitted():
    with pytest.raises(NotFittedError):
        LDAMDRWClassifier().predict(np.zeros((2, 3)))


def test_float64_and_int_input_are_cast(imbalanced_data):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(**FAST).fit(X.astype(np.float64), y)
    assert clf.module_.body[0].weight.dtype == torch.float32
    clf.fit(np.rint(X * 10).astype(np.int64), y)
    assert clf.predict(np.rint(X * 10).astype(np.int32)).shape == y.shape


def test_default_module_is_sized_from_data(imbalanced_data):
    X, y = imbalanced_data
    params = {**FAST, "module__hidden_layer_sizes": (7, 5), "n_members": 1}
    clf = LDAMDRWClassifier(**params).fit(X, y)
    linears = [m for m in clf.module_.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(20, 7), (7, 5)]
    assert clf.module_.head.weight.shape == (5, 3)  # cosine head for LDAM: (in, out)


class TinyNet(nn.Module):
    def __init__(self, n_in=20, n_out=3):
        super().__init__()
        self.lin = nn.Linear(n_in, n_out)

    def forward(self, X):
        return self.lin(X)


def test_user_module_class_still_works(imbalanced_data):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(
        module=TinyNet, module__n_out=3, loss="ce", max_epochs=3, random_state=0
    ).fit(X, y)
    assert isinstance(clf.module_, TinyNet)
    assert clf.predict_proba(X).shape == (len(X), 3)


def test_same_seed_same_predictions_different_seed_different_init(imbalanced_data):
    X, y = imbalanced_data
    a = LDAMDRWClassifier(**FAST).fit(X, y).predict_proba(X)
    b = LDAMDRWClassifier(**FAST).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)
    c = LDAMDRWClassifier(**{**FAST, "random_state": 1}).fit(X, y).predict_proba(X)
    assert not np.allclose(a, c)
    d = clone(LDAMDRWClassifier(**FAST)).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, d)


def test_random_state_does_not_touch_global_torch_rng(imbalanced_data):
    X, y = imbalanced_data
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    LDAMDRWClassifier(**FAST).fit(X, y)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_device_auto_resolves_and_stays_auto_in_params(imbalanced_data):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(**FAST).fit(X, y)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert clf.device_.type == expected
    assert clf.get_params()["device"] == "auto"
    assert next(clf.module_.parameters()).device.type == expected
    assert clone(clf).get_params()["device"] == "auto"


def test_invalid_device_is_rejected_at_fit(imbalanced_data):
    X, y = imbalanced_data
    with pytest.raises(ValueError, match="device='tpu' is not valid"):
        LDAMDRWClassifier(device="tpu").fit(X, y)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            LDAMDRWClassifier(device="cuda").fit(X, y)


def test_no_internal_validation_split_by_default(imbalanced_data):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(**FAST).fit(X, y)
    assert clf.train_split is None
    assert "valid_loss" not in clf.history[-1]
    # every row is trained on: batches of an epoch add up to the data size
    assert sum(clf.history[-1, "batches", :, "train_batch_size"]) == len(X)


def test_early_stopping_holds_out_stratified_fraction(imbalanced_data):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(
        early_stopping=True,
        validation_fraction=0.2,
        n_iter_no_change=2,
        max_epochs=200,
        random_state=0,
        lr_schedule=None,
    ).fit(X, y)
    assert len(clf.history) < 200
    assert sum(clf.history[-1, "batches", :, "train_batch_size"]) == int(len(X) * 0.8)
    assert "valid_bacc" in clf.history[-1]


def test_early_stopping_needs_two_samples_per_class():
    X = np.random.RandomState(0).randn(11, 2)
    y = np.array([0] * 10 + [1])
    with pytest.raises(ValueError, match="at least 2 samples of every class"):
        LDAMDRWClassifier(early_stopping=True, max_epochs=2).fit(X, y)


@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csr_array, sp.csc_matrix])
def test_sparse_input_is_never_densified(imbalanced_data, container, monkeypatch):
    X, y = imbalanced_data
    Xs = container(np.where(np.abs(X) > 1, X, 0))

    def no_toarray(*args, **kwargs):
        raise AssertionError("X was densified")

    X_dense = Xs.toarray()
    # Sparse input is scaled, not centred (centring would densify it): the
    # dense reference gets the same statistics.
    # The paper's recipe: the default one mixes dense rows only.
    stats = {f"module__{name}": value for name, value in sparse_input_scale(Xs).items()}
    dense = LDAMDRWClassifier(**FAST, **stats, recipe="paper").fit(X_dense, y)
    for cls in (sp.csr_matrix, sp.csr_array, sp.csc_matrix, sp.csc_array):
        monkeypatch.setattr(cls, "toarray", no_toarray)
        monkeypatch.setattr(cls, "todense", no_toarray)
    # nn.Linear on sparse batches trains as on the dense matrix.
    linear = LDAMDRWClassifier(**FAST, module__sparse_input=False, recipe="paper").fit(Xs, y)
    linear_proba = linear.predict_proba(Xs)
    # The default: a SparseLinear first layer, updated lazily.
    lazy = LDAMDRWClassifier(**FAST, recipe="paper").fit(Xs, y)
    lazy_predicted = lazy.predict(Xs)
    monkeypatch.undo()
    assert isinstance(lazy.module_.body[0], SparseLinear)
    assert isinstance(linear.module_.body[0], nn.Linear)
    np.testing.assert_allclose(linear_proba, dense.predict_proba(X_dense), atol=1e-4)
    # Another initialisation and lazy updates: other numbers, as good a fit.
    dense_accuracy = np.mean(dense.predict(X_dense) == y)
    assert np.mean(lazy_predicted == y) > dense_accuracy - 0.05


def _sparse_problem(n_samples=400, n_features=300, seed=0):
    """Bag-of-words-like CSR data whose class shows in a few columns."""
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 3, n_samples)
    X = sp.random(n_samples, n_features, density=0.03, format="lil", random_state=rng)
    for label in range(3):
        rows = np.flatnonzero(y == label)
        X[rows, label] = 1.0
    return sp.csr_matrix(X, dtype=np.float32), y


@pytest.mark.parametrize(
    "Estimator, params, first_layer",
    [
        (LDAMDRWClassifier, {}, SparseLinear),
        (LDAMDRWClassifier, {"optimizer": optim.SGD}, SparseLinear),
        (
            LDAMDRWClassifier,
            {"optimizer": functools.partial(optim.SGD, momentum=0.5)},
            SparseLinear,
        ),
        (LDAMDRWClassifier, {"optimizer": torch.optim.Adam, "lr": 1e-2}, nn.Linear),
        (
            LDAMDRWClassifier,
            {"optimizer": functools.partial(torch.optim.Adam, weight_decay=1e-4), "lr": 1e-2},
            nn.Linear,
        ),
        (LDAMDRWClassifier, {"module__sparse_input": False}, nn.Linear),
        (L2RWClassifier, {}, SparseLinear),
        (MetaWeightNetClassifier, {}, SparseLinear),
        (L2RWClassifier, {"weight_method": "jvp"}, nn.Linear),
        (L2RWClassifier, {"base_loss": "ldam"}, nn.Linear),
    ],
    ids=[
        "default",
        "sgd",
        "sgd-partial",
        "adam",
        "adam-partial",
        "opt-out",
        "l2rw",
        "mwnet",
        "jvp",
        "l2rw-ldam",
    ],
)
def test_sparse_training_data_chooses_the_first_layer(Estimator, params, first_layer):
    X, y = _sparse_problem()
    clf = Estimator(**FAST, **params).fit(X, y)
    assert type(clf.module_.body[0]) is first_layer
    assert np.isfinite(clf.history[:, "train_loss"]).all()
    assert np.mean(clf.predict(X) == y) > 0.6  # chance is 1/3
    # Dense training data keeps nn.Linear whatever the optimizer.
    dense = Estimator(**FAST, **params).fit(X.toarray(), y)
    assert type(dense.module_.body[0]) is nn.Linear


def test_sparse_first_layer_predicts_sparse_and_dense_input_and_pickles():
    X, y = _sparse_problem()
    clf = LDAMDRWClassifier(**FAST).fit(X, y)
    assert isinstance(clf.module_.body[0], SparseLinear)
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(clf.predict_proba(X.toarray()), proba, atol=1e-5)
    np.testing.assert_allclose(clf.predict_proba(X.tocsc()), proba, atol=1e-6)
    restored = pickle.loads(pickle.dumps(clf))
    assert isinstance(restored.module_.body[0], SparseLinear)
    np.testing.assert_array_equal(restored.predict_proba(X), proba)
    # Training goes on with the restored optimizer's dense momentum buffer.
    restored.partial_fit(X, y)
    assert len(restored.history) == 2 * FAST["max_epochs"]


def test_default_optimizer_is_torch_sgd_on_dense_data(imbalanced_data):
    X, y = imbalanced_data
    # The paper's recipe trains with the optimizer exactly as configured.
    ours = LDAMDRWClassifier(**FAST, recipe="paper").fit(X, y)
    torch_sgd = functools.partial(torch.optim.SGD, momentum=0.9, weight_decay=2e-4)
    theirs = LDAMDRWClassifier(**FAST, optimizer=torch_sgd, recipe="paper").fit(X, y)
    np.testing.assert_array_equal(ours.predict_proba(X), theirs.predict_proba(X))
    assert isinstance(ours.optimizer_, optim.SGD)


def test_sample_weight_is_used(imbalanced_data):
    X, y = imbalanced_data
    heavy = np.where(y == 2, 50.0, 1.0)
    plain = LDAMDRWClassifier(loss="ce", schedule="none", **FAST).fit(X, y)
    weighted = LDAMDRWClassifier(loss="ce", schedule="none", **FAST).fit(X, y, sample_weight=heavy)
    assert (weighted.predict(X) == 2).sum() > (plain.predict(X) == 2).sum()
    with pytest.raises(ValueError, match="sample_weight"):
        LDAMDRWClassifier(**FAST).fit(X, y, sample_weight=np.ones(3))


def test_zero_weight_batches_add_nothing():
    # the rare class has weight 0; a batch of only zero-weight rows must not
    # turn the loss into 0/0 = NaN.
    X = np.random.RandomState(0).randn(40, 3)
    y = np.array([0, 1] * 20)
    w = np.r_[np.zeros(8), np.ones(32)]
    clf = LDAMDRWClassifier(batch_size=4, max_epochs=3, random_state=0).fit(X, y, sample_weight=w)
    assert np.isfinite(clf.history[:, "train_loss"]).all()


def test_pickle_round_trip_keeps_predictions(imbalanced_data):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(**FAST).fit(X, y)
    restored = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(restored.predict_proba(X), clf.predict_proba(X))
    assert restored.get_params()["device"] == "auto"
    assert restored.device_ == clf.device_


def test_cuda_pickle_is_mapped_to_cpu(imbalanced_data):
    # skorch maps CUDA tensors to the CPU on a machine without CUDA; check
    # that our device handling hands it the saved device (not "auto").
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(**FAST).fit(X, y)
    state = clf.__getstate__()
    state["device_"] = torch.device("cuda") if not torch.cuda.is_available() else clf.device_
    restored = LDAMDRWClassifier.__new__(LDAMDRWClassifier)
    if torch.cuda.is_available():
        restored.__setstate__(state)
    else:
        with pytest.warns(UserWarning, match="cuda"):
            restored.__setstate__(state)
    assert restored.get_params()["device"] == "auto"
    np.testing.assert_allclose(restored.predict_proba(X), clf.predict_proba(X))


def test_save_and_load_params(imbalanced_data, tmp_path):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(**FAST).fit(X, y)
    clf.save_params(f_params=tmp_path / "params.pt")
    other = LDAMDRWClassifier(**{**FAST, "random_state": 5}).fit(X, y)
    other.load_params(f_params=tmp_path / "params.pt")
    np.testing.assert_array_equal(other.predict_proba(X), clf.predict_proba(X))


def test_warm_start_and_partial_fit_continue_training(imbalanced_data):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(**FAST, n_members=1, warm_start=True).fit(X, y)
    clf.fit(X, y)
    assert len(clf.history) == 10
    clf.partial_fit(X, y)
    assert len(clf.history) == 15
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:, :3], y)
    with pytest.raises(ValueError, match="not seen in the first fit"):
        clf.partial_fit(X, y + 10)


def test_partial_fit_with_classes_argument(imbalanced_data):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(loss="ce", schedule="none", **FAST)
    clf.partial_fit(X, y, classes=[2, 0, 1])
    assert clf.classes_.tolist() == [0, 1, 2]
    keep = y < 2
    clf.partial_fit(X[keep], y[keep])
    assert clf.predict_proba(X).shape == (len(X), 3)
    with pytest.raises(ValueError, match=r"classes \[2\] have no training samples"):
        clone(clf).partial_fit(X[keep], y[keep], classes=[0, 1, 2])


def test_set_params_on_fitted_estimator_reinitialises_on_device(imbalanced_data):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(**FAST).fit(X, y)
    clf.set_params(module__hidden_layer_sizes=(8,))
    assert clf.module_.body[0].out_features == 8 * clf.n_members_
    clf.set_params(optimizer__momentum=0.5, callbacks__print_log__sink=print)
    assert clf.optimizer_.param_groups[0]["momentum"] == 0.5


def test_predictions_do_not_depend_on_batch_composition(imbalanced_data):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(**FAST).fit(X, y)
    full = clf.predict_proba(X)
    one_by_one = np.vstack([clf.predict_proba(X[i : i + 1]) for i in range(0, 50)])
    np.testing.assert_array_equal(full[:50], one_by_one)


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda")


def test_initialize_before_fit_needs_the_labels():
    with pytest.raises(ValueError, match="classes="):
        LDAMDRWClassifier(module__n_features=3).initialize()
    clf = LDAMDRWClassifier(module__n_features=3, module__n_classes=2).initialize()
    assert clf.classes_.tolist() == [0, 1]
    assert clf.predict_proba(np.zeros((2, 3))).shape == (2, 2)


@pytest.mark.parametrize("block_elements", [1 << 19, 7])
def test_input_statistics_match_standard_scaler(block_elements, monkeypatch):
    # Several blocks (7 elements: 2 rows of 3 features) must give the same
    # statistics as one; a constant feature keeps scale 1, as in StandardScaler.
    monkeypatch.setattr(base, "_STATS_ELEMENTS", block_elements)
    rng = np.random.default_rng(0)
    X = np.column_stack(
        [rng.normal(100.0, 3.0, 501), rng.normal(0.0, 1e-3, 501), np.full(501, 5.0)]
    ).astype(np.float32)
    y = np.arange(501) % 2
    clf = LDAMDRWClassifier(max_epochs=0).fit(X, y)
    scaler = StandardScaler().fit(X.astype(np.float64))
    np.testing.assert_allclose(clf.module_.input_mean.numpy(), scaler.mean_, rtol=1e-6)
    np.testing.assert_allclose(clf.module_.input_scale.numpy(), scaler.scale_, rtol=1e-4)


def test_input_statistics_are_exact_far_from_zero():
    # float32 features with a large offset and a small spread: a naive
    # float32 sum over 200,000 rows loses the spread (its error in the mean
    # is larger than the standard deviation).
    rng = np.random.default_rng(0)
    X = (1e5 + rng.standard_normal((200_000, 2))).astype(np.float32)
    stats = base._standardization(torch.from_numpy(X))
    scaler = StandardScaler().fit(X)
    np.testing.assert_allclose(stats["input_mean"].numpy(), scaler.mean_, rtol=1e-7)
    np.testing.assert_allclose(stats["input_scale"].numpy(), scaler.scale_, rtol=1e-2)


@pytest.mark.parametrize("Estimator", [LDAMDRWClassifier, L2RWClassifier])
def test_bf16_precision_runs_the_module_under_autocast(Estimator, imbalanced_data):
    X, y = imbalanced_data
    seen = []

    def record_dtype(module, inputs, output):
        seen.append(output.dtype)

    clf = Estimator(**FAST, precision="bf16").fit(X, y)
    clf.module_.body[0].register_forward_hook(record_dtype)
    clf.partial_fit(X, y)
    proba = clf.predict_proba(X)
    # The hidden layer ran in bfloat16, in training and in prediction ...
    assert seen and set(seen) == {torch.bfloat16}
    # ... while what leaves the network stays float32 / float64.
    assert clf.infer(torch.as_tensor(X[:4], dtype=torch.float32)).dtype == torch.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    full = Estimator(**FAST).fit(X, y)
    assert (clf.predict(X) == full.predict(X)).mean() > 0.8


def test_unknown_precision_lists_the_choices(imbalanced_data):
    X, y = imbalanced_data
    with pytest.raises(
        ValueError, match=r"precision='fp16' is not valid; choose one of \['bf16', 'fp32'\]"
    ):
        LDAMDRWClassifier(precision="fp16").fit(X, y)


def test_new_optimizer_class_on_a_fitted_estimator(imbalanced_data):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(**FAST).fit(X, y)
    clf.set_params(optimizer=torch.optim.Adam, lr=1e-3)
    assert isinstance(clf.optimizer_, torch.optim.Adam)
    assert clf.optimizer_.param_groups[0]["lr"] == 1e-3
    clf.partial_fit(X, y)
    assert np.isfinite(clf.history[-1, "train_loss"])


def test_optimizer_without_sparse_gradients_rejected_for_a_sparse_first_layer(imbalanced_data):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(**FAST).fit(sp.csr_matrix(np.where(X > 0.5, X, 0)), y)
    with pytest.raises(ValueError, match="SparseLinear layer .* optimizer=Adam cannot take"):
        clf.set_params(optimizer=torch.optim.Adam)


@pytest.mark.parametrize("verbose, has_bar", [(0, False), (1, False), (2, True)])
def test_verbose_two_adds_a_progress_bar_over_the_batches(
    imbalanced_data, verbose, has_bar, capsys
):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(max_epochs=2, verbose=verbose, random_state=0).fit(X, y)
    names = [name for name, _ in clf.callbacks_]
    assert ("progress_bar" in names) is has_bar
    err = capsys.readouterr().err
    if has_bar:
        bar = dict(clf.callbacks_)["progress_bar"]
        assert bar.pbar_.total == -(-len(X) // clf.batch_size)  # batches in an epoch
        assert bar.pbar_.n == bar.pbar_.total
        assert f"/{bar.pbar_.total}" in err
    else:
        assert err == ""
