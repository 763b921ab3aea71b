"""Scaling out: a hyper-parameter search spread over a real Dask cluster.

Starts a ``distributed.LocalCluster`` of two worker processes on 127.0.0.1,
runs a small ``GridSearchCV`` under ``joblib.parallel_backend("dask")`` and
checks that it gives exactly the sequential result. Needs the ``test`` extra
(``dask[distributed]``).
"""

import concurrent.futures
import os

import joblib
import numpy as np
import pytest
import torch
from _shared import FAST, per_estimator
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV

distributed = pytest.importorskip("distributed")

#: Seconds the whole search may take on the cluster before the test fails.
TIMEOUT = 240


def _worker_state():
    return os.getpid(), torch.get_num_threads()


def _search(Estimator):
    grid = {"lr": [0.02, 0.2], "module__hidden_layer_sizes": [(4,), (16,)]}
    return GridSearchCV(
        Estimator(**FAST), grid, scoring="balanced_accuracy", cv=2, error_score="raise"
    )


def _fit_on_dask(client, search, X, y):
    # The backend is thread-local in joblib: enter it in the thread that fits.
    with distributed.get_task_stream(client) as tasks:
        with joblib.parallel_backend("dask"):
            search.fit(X, y)
    return tasks.data


@pytest.fixture(scope="module")
def dask_client():
    """Two worker processes with one thread each, on the loopback interface only."""
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster, timeout="60s") as client,
    ):
        client.wait_for_workers(2, timeout=120)
        yield client


@pytest.mark.slow
@per_estimator
def test_grid_search_on_local_dask_cluster_matches_sequential(Estimator, dask_client):
    X, y = make_classification(
        n_samples=300,
        n_features=8,
        n_informative=5,
        n_redundant=0,
        n_classes=3,
        weights=[0.7, 0.2, 0.1],
        class_sep=2.0,
        random_state=0,
    )
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as on the workers; tiny nets gain nothing from more
    try:
        sequential = _search(Estimator).fit(X, y)
    finally:
        torch.set_num_threads(threads)

    distributed_search = _search(Estimator)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        future = pool.submit(_fit_on_dask, dask_client, distributed_search, X, y)
        tasks = future.result(timeout=TIMEOUT)
    finally:
        pool.shutdown(wait=False)
    workers = dask_client.run(_worker_state)

    # The fits ran as tasks on the cluster's two worker processes ...
    assert len(workers) == 2
    assert all(pid != os.getpid() for pid, _ in workers.values())
    # (joblib batches calls into tasks: 8 fits make at least two tasks)
    assert sum("_fit_and_score" in str(task["key"]) for task in tasks) >= 2
    assert {task["worker"] for task in tasks} <= set(workers)
    # ... with one torch thread each, so two workers do not oversubscribe two cores.
    assert all(n_threads == 1 for _, n_threads in workers.values())

    # Seeded fits are deterministic: the cluster reproduces n_jobs=1 exactly.
    for key in ("mean_test_score", "split0_test_score", "rank_test_score"):
        np.testing.assert_array_equal(
            distributed_search.cv_results_[key], sequential.cv_results_[key]
        )
    assert distributed_search.best_params_ == sequential.best_params_
    np.testing.assert_array_equal(
        distributed_search.best_estimator_.predict_proba(X),
        sequential.best_estimator_.predict_proba(X),
    )
