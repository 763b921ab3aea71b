"""
======================================================
Spreading a hyper-parameter search over a Dask cluster
======================================================

scikit-learn's searches parallelise with joblib, and joblib can hand its work
to a Dask cluster: inside ``joblib.parallel_backend("dask")`` every
cross-validation fit of a :class:`~sklearn.model_selection.GridSearchCV`
becomes a task on the cluster's workers. Nothing in the estimator changes.

Here the cluster is a :class:`distributed.LocalCluster` of two worker
processes on this machine; set ``DASK_SCHEDULER_ADDRESS`` (for example
``tcp://10.0.0.1:8786``) to use an existing cluster instead. The seeded fits
are deterministic, so the distributed search reproduces the sequential one
exactly -- the example checks it.

On GPU machines, run one Dask worker per GPU, each pinned to its device with
``CUDA_VISIBLE_DEVICES`` and training with ``device="cuda"``; the recipe is
at the end and in ``docs/scaling.md``.

Set ``LDAM_SKLEARN_QUICK=1`` for a smoke run (fewer epochs and candidates).
"""

# %%
# Data and search
# ---------------
import os
import time

import joblib
import numpy as np
import torch
from distributed import Client, LocalCluster
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV, StratifiedKFold

from ldam_sklearn import LDAMDRWClassifier

QUICK = os.environ.get("LDAM_SKLEARN_QUICK") == "1"
EPOCHS = 3 if QUICK else 20

X, y = make_classification(
    n_samples=600 if QUICK else 1500,
    n_features=20,
    n_informative=10,
    n_classes=4,
    weights=[0.7, 0.2, 0.07, 0.03],
    class_sep=1.0,
    random_state=0,
)


def make_search():
    grid = {"loss": ["ce", "ldam"], "schedule": ["none", "drw"]}
    if not QUICK:
        grid["lr"] = [0.05, 0.2]
    return GridSearchCV(
        LDAMDRWClassifier(max_epochs=EPOCHS, module__hidden_layer_sizes=(32,), random_state=0),
        grid,
        scoring="balanced_accuracy",
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
    )


# %%
# The cluster
# -----------
# ``threads_per_worker=1``: a worker runs one fit at a time, and Dask starts
# its worker processes with ``OMP_NUM_THREADS=1``, so PyTorch in two workers
# does not fight over two cores. Use as many workers as cores (or GPUs).


def connect():
    address = os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        return Client(address), None
    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    return Client(cluster), cluster


# %%
# Search on the cluster, then sequentially
# ----------------------------------------
# ``scatter=[X, y]`` ships the data to the workers once instead of with
# every task.


def main():
    client, cluster = connect()
    try:
        print(f"{len(client.scheduler_info()['workers'])} Dask workers")
        distributed = make_search()
        start = time.perf_counter()
        with joblib.parallel_backend("dask", scatter=[X, y]):
            distributed.fit(X, y)
        print(f"on Dask:    {time.perf_counter() - start:5.1f} s")
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

    # Sequentially in this process, with one PyTorch thread like a worker:
    # for networks this small, more threads only add synchronisation.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        sequential = make_search()
        start = time.perf_counter()
        sequential.fit(X, y)
        print(f"sequential: {time.perf_counter() - start:5.1f} s")
    finally:
        torch.set_num_threads(threads)

    scores = distributed.cv_results_["mean_test_score"]
    for params, score in zip(distributed.cv_results_["params"], scores, strict=True):
        print(f"{score:.3f}  {params}")
    same = np.array_equal(scores, sequential.cv_results_["mean_test_score"])
    print("best:", distributed.best_params_, "| identical to the sequential search:", same)
    assert same


# %%
# Worker processes start by re-importing this script, so a script that starts
# a ``LocalCluster`` keeps its work under the ``__main__`` guard.
if __name__ == "__main__":
    main()

# %%
# Several GPUs
# ------------
# One device limits how many fits run at once. With several GPUs -- on one
# machine or many -- start one single-threaded worker per GPU and pin each to
# its device with ``CUDA_VISIBLE_DEVICES``; inside a worker that GPU is then
# ``cuda:0``, so ``device="cuda"`` (or the default ``"auto"``) trains on it:
#
# .. code-block:: bash
#
#     dask scheduler --host 10.0.0.1 &                # once
#     for gpu in 0 1 2 3; do                          # on every GPU machine
#         CUDA_VISIBLE_DEVICES=$gpu dask worker tcp://10.0.0.1:8786 \
#             --nworkers 1 --nthreads 1 --name "$(hostname)-gpu$gpu" &
#     done
#
# then run this script with ``DASK_SCHEDULER_ADDRESS=tcp://10.0.0.1:8786`` and
# ``LDAMDRWClassifier(device="cuda", ...)``. ``dask_cuda.LocalCUDACluster``
# does the same on a single machine. See ``docs/scaling.md``.
