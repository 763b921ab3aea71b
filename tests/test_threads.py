"""Tests for ldam_sklearn.utils.threads and the estimators' ``n_threads``."""

import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from torch import nn

from ldam_sklearn import L2RWClassifier, LDAMDRWClassifier
from ldam_sklearn.modules import MLP
from ldam_sklearn.utils import threads
from ldam_sklearn.utils.threads import (
    SMALL_STEP_MACS,
    busy_cores,
    resolve_n_threads,
    step_macs,
    torch_threads,
)

LARGE = 10 * SMALL_STEP_MACS


@pytest.fixture
def two_torch_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def test_step_macs_counts_dense_weights_times_batch():
    net = nn.Sequential(nn.Linear(10, 4), nn.ReLU(), nn.Linear(4, 2))
    assert step_macs(net, batch_size=8) == 8 * (10 * 4 + 4 + 4 * 2 + 2)


def test_step_macs_leaves_out_the_sparse_first_layer():
    dense = MLP(n_features=1000, n_classes=2, hidden_layer_sizes=(16,))
    sparse = MLP(n_features=1000, n_classes=2, hidden_layer_sizes=(16,), sparse_input=True)
    # The embedding table (1000 x 16) is read row by row, not multiplied.
    assert step_macs(sparse, 1) < step_macs(dense, 1) - 1000 * 16 + 100


def test_auto_uses_one_thread_for_a_small_step():
    assert resolve_n_threads("auto", SMALL_STEP_MACS - 1, ceiling=8) == 1


def test_auto_uses_the_idle_cores_for_a_large_step(monkeypatch):
    monkeypatch.setattr(threads, "_usable_cores", lambda: 4)
    monkeypatch.setattr(threads, "busy_cores", lambda: 0)
    assert resolve_n_threads("auto", LARGE, ceiling=8) == 4
    assert resolve_n_threads("auto", LARGE, ceiling=2) == 2  # never above torch's setting
    monkeypatch.setattr(threads, "busy_cores", lambda: 3)
    assert resolve_n_threads("auto", LARGE, ceiling=8) == 1
    monkeypatch.setattr(threads, "busy_cores", lambda: 7)
    assert resolve_n_threads("auto", LARGE, ceiling=8) == 1


def test_fixed_counts_are_taken_as_given(monkeypatch):
    monkeypatch.setattr(threads, "_usable_cores", lambda: 6)
    assert resolve_n_threads(3, 0, ceiling=1) == 3
    assert resolve_n_threads(-1, 0, ceiling=1) == 6


def test_busy_cores_sees_another_cpu_bound_process():
    if not threads.os.path.exists("/proc/loadavg"):
        pytest.skip("the run queue is read from /proc (Linux)")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        during = max(busy_cores() for _ in range(5))
    finally:
        spinner.kill()
        spinner.wait()
    assert during >= 1


def test_this_process_own_running_threads_are_not_other_work():
    if not threads.os.path.exists("/proc/self/task"):
        pytest.skip("threads are read from /proc (Linux)")
    stop = threading.Event()

    def work():  # torch releases the GIL inside the product, so the thread runs
        a = torch.randn(256, 256)
        while not stop.is_set():
            a @ a

    worker = threading.Thread(target=work)
    worker.start()
    try:
        time.sleep(0.2)
        here = max(threads._running_here() for _ in range(50))
    finally:
        stop.set()
        worker.join()
    assert here >= 2  # this thread, reading, and the worker


def test_torch_threads_restores_the_setting_even_after_an_error(two_torch_threads):
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError
    assert torch.get_num_threads() == 2


@pytest.mark.parametrize(
    "Estimator, one_network",
    [(LDAMDRWClassifier, {"n_members": 1}), (L2RWClassifier, {})],
)
def test_fit_and_predict_use_the_policy_and_restore_torch_setting(
    Estimator, one_network, imbalanced_data, two_torch_threads, monkeypatch
):
    X, y = imbalanced_data
    seen = []
    original = Estimator.train_step

    def spy(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Estimator, "train_step", spy)
    clf = Estimator(max_epochs=1, random_state=0, **one_network).fit(X, y)
    assert clf.n_threads_ == 1 and set(seen) == {1}  # one default network is small
    assert torch.get_num_threads() == 2
    seen.clear()
    clf.set_params(n_threads=2).fit(X, y)
    assert clf.n_threads_ == 2 and set(seen) == {2}
    assert torch.get_num_threads() == 2


def test_packed_default_members_count_as_a_large_step(
    imbalanced_data, two_torch_threads, monkeypatch
):
    X, y = imbalanced_data
    monkeypatch.setattr(threads, "_usable_cores", lambda: 2)
    monkeypatch.setattr(threads, "busy_cores", lambda: 0)
    one = LDAMDRWClassifier(max_epochs=1, random_state=0, n_members=1).fit(X, y)
    packed = LDAMDRWClassifier(max_epochs=1, random_state=0).fit(X, y)
    assert step_macs(one.module_, one.batch_size) < SMALL_STEP_MACS
    assert step_macs(packed.module_, packed.batch_size) >= SMALL_STEP_MACS
    # On an idle machine the five members' steps get both cores, one network one.
    assert (one.n_threads_, packed.n_members_, packed.n_threads_) == (1, 5, 2)


def test_predict_proba_runs_with_the_policy(imbalanced_data, two_torch_threads, monkeypatch):
    X, y = imbalanced_data
    clf = LDAMDRWClassifier(max_epochs=1, random_state=0, n_members=1).fit(X, y)
    seen = []
    original = LDAMDRWClassifier.evaluation_step

    def spy(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LDAMDRWClassifier, "evaluation_step", spy)
    clf.predict_proba(X)
    assert set(seen) == {1}
    assert torch.get_num_threads() == 2


def test_thread_count_does_not_change_the_model(imbalanced_data):
    X, y = imbalanced_data
    one = LDAMDRWClassifier(max_epochs=2, random_state=0, n_threads=1).fit(X, y)
    two = LDAMDRWClassifier(max_epochs=2, random_state=0, n_threads=2).fit(X, y)
    np.testing.assert_allclose(one.predict_proba(X), two.predict_proba(X), rtol=0, atol=1e-6)


@pytest.mark.parametrize("bad", [0, -2, 1.5, "all", True, None])
def test_bad_n_threads_is_rejected_at_fit_with_the_choices(bad, imbalanced_data):
    X, y = imbalanced_data
    with pytest.raises(ValueError, match=r"n_threads must be 'auto', -1 or an integer >= 1"):
        LDAMDRWClassifier(n_threads=bad, max_epochs=1).fit(X, y)
