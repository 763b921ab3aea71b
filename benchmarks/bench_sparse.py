"""Sparse input: time per epoch against n_features and nnz, and peak memory on TF-IDF.

Two measurements:

1. **Scaling** on synthetic CSR matrices with a fixed number of non-zeros per
   row: time per epoch of 20,000 rows (measured on 40 batches and scaled) of
   ``LDAMDRWClassifier`` at 10,000, 100,000 and 1,000,000 features with
   equal non-zeros (it should not grow with the number of features), and at
   2x the non-zeros (it should grow with them). The estimator as shipped
   (each batch becomes a torch sparse COO tensor fed to ``nn.Linear``, whose
   weight gradient is a dense ``n_features x hidden`` matrix) is measured
   next to a prototype first layer, :class:`EmbeddingBagMLP`
   (``nn.EmbeddingBag(mode="sum", per_sample_weights=..., sparse=True)``:
   sparse gradient, and a lazy Adam update of the touched rows only by
   :class:`SparseAwareAdam`), plugged in through the estimator's ordinary
   ``module=`` and ``optimizer=`` parameters.
2. **Memory** on TF-IDF of 20,000 synthetic documents (about 147,000
   features), measured by ``bench_text_memory.run`` in a fresh process so
   that what earlier benchmarks allocated does not count: peak resident set
   size of the whole process and its growth during ``fit``, against the size
   the dense float32 matrix would have.

Run ``python benchmarks/bench_sparse.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ldam_sklearn import LDAMDRWClassifier
from ldam_sklearn.modules import CosineLinear

HERE = os.path.dirname(os.path.abspath(__file__))
HIDDEN = (16,)  # as in bench_text_memory: a wide sparse first layer, a narrow network
BATCH = 128
VARIANTS = ("shipped", "embedding_bag")


def make_sparse(n_rows, n_features, nnz_per_row, n_classes=10, seed=0):
    """CSR float32 matrix with ``nnz_per_row`` non-zeros per row (TF-IDF-like, L2 rows)."""
    rng = np.random.default_rng(seed)
    cols = np.sort(rng.integers(0, n_features, size=(n_rows, nnz_per_row)), axis=1)
    data = rng.random((n_rows, nnz_per_row), dtype=np.float32) + 0.1
    data /= np.linalg.norm(data, axis=1, keepdims=True)
    indptr = np.arange(0, n_rows * nnz_per_row + 1, nnz_per_row)
    X = sp.csr_matrix((data.ravel(), cols.ravel(), indptr), shape=(n_rows, n_features))
    X.sum_duplicates()  # a few repeated columns per row merge
    y = rng.integers(0, n_classes, n_rows)
    return X, y


class EmbeddingBagMLP(nn.Module):
    """Prototype of a sparse-aware default network (a proposal, not package code).

    Same function as :class:`ldam_sklearn.modules.MLP` (``relu(X W + b)``
    then the remaining layers), but the first layer is an
    ``nn.EmbeddingBag(mode="sum")`` that reads a batch's non-zeros as
    ``(column indices, offsets, per_sample_weights=values)``: forward and
    backward cost O(nnz x hidden), and with ``sparse=True`` the weight
    gradient holds only the touched rows instead of a dense
    ``n_features x hidden`` matrix. Dense batches take ``X @ W``.
    """

    def __init__(
        self, n_features, n_classes, hidden_layer_sizes=(256, 256), cosine_head=False, sparse=True
    ):
        super().__init__()
        width = hidden_layer_sizes[0]
        self.first = nn.EmbeddingBag(n_features, width, mode="sum", sparse=sparse)
        bound = 1 / math.sqrt(n_features)  # nn.Linear's initialisation
        nn.init.uniform_(self.first.weight, -bound, bound)
        self.first_bias = nn.Parameter(torch.empty(width).uniform_(-bound, bound))
        layers: list[nn.Module] = [nn.ReLU()]
        for size in hidden_layer_sizes[1:]:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.body = nn.Sequential(*layers)
        self.head = CosineLinear(width, n_classes) if cosine_head else nn.Linear(width, n_classes)

    def forward(self, X):
        if X.layout == torch.sparse_coo:
            # The data path delivers coalesced COO batches: row indices sorted.
            rows, cols = X._indices()
            offsets = torch.searchsorted(rows, torch.arange(X.shape[0], device=rows.device))
            h = self.first(cols, offsets, per_sample_weights=X._values())
        else:
            h = X @ self.first.weight
        return self.head(self.body(h + self.first_bias))


class SparseAwareAdam(torch.optim.Optimizer):
    """Adam for dense gradients, SparseAdam's lazy update for sparse ones.

    A sparse gradient updates the moments and the values of its rows only
    (``torch.optim.SparseAdam``'s semantics), so a step costs
    O(touched rows x width) instead of O(n_features x width).
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                m, v = state["exp_avg"], state["exp_avg_sq"]
                correction1 = 1 - beta1 ** state["step"]
                correction2 = 1 - beta2 ** state["step"]
                grad = p.grad
                if grad.is_sparse:
                    grad = grad.coalesce()
                    rows, values = grad._indices()[0], grad._values()
                    m_rows = m[rows].mul_(beta1).add_(values, alpha=1 - beta1)
                    v_rows = v[rows].mul_(beta2).addcmul_(values, values, value=1 - beta2)
                    m[rows], v[rows] = m_rows, v_rows
                    denom = (v_rows / correction2).sqrt_().add_(eps)
                    p.index_add_(0, rows, m_rows / denom, alpha=-lr / correction1)
                else:
                    m.mul_(beta1).add_(grad, alpha=1 - beta1)
                    v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                    denom = (v / correction2).sqrt_().add_(eps)
                    p.addcdiv_(m, denom, value=-lr / correction1)
        return loss


def _estimator(variant, n_features, n_classes, epochs):
    common = {
        "max_epochs": epochs,
        "batch_size": BATCH,
        "lr": 1e-3,
        "device": "cpu",
        "random_state": 0,
    }
    if variant == "shipped":  # the package as it is: nn.Linear on sparse COO batches
        return LDAMDRWClassifier(
            module__hidden_layer_sizes=HIDDEN, optimizer=torch.optim.Adam, **common
        )
    if variant == "embedding_bag":
        return LDAMDRWClassifier(
            module=EmbeddingBagMLP,
            module__n_features=n_features,
            module__n_classes=n_classes,
            module__hidden_layer_sizes=HIDDEN,
            module__cosine_head=True,  # what the default LDAM loss gets
            optimizer=SparseAwareAdam,
            **common,
        )
    raise ValueError(variant)


def epoch_seconds(X, y, variant, epochs=1):
    """Mean training time per epoch (skorch's EpochTimer), validation and set-up excluded."""
    clf = _estimator(variant, X.shape[1], int(y.max()) + 1, epochs)
    clf.fit(X, y)
    return float(np.mean(clf.history[:, "dur"]))


def run_scaling(
    n_rows=20_000,
    measured_rows=40 * BATCH,
    features=(10_000, 100_000, 1_000_000),
    nnz_per_row=50,
    variants=VARIANTS,
    epochs=1,
    rounds=1,
):
    """Seconds per epoch of ``n_rows`` rows per (variant, n_features, nnz per row).

    Every case trains on ``measured_rows`` rows (whole batches) and the time
    is scaled by ``n_rows / measured_rows``: an epoch is that many identical
    steps, and the shipped layer at 10^6 features takes minutes per full
    epoch. Rounds are interleaved; medians are reported.
    """
    measured_rows = min(n_rows, measured_rows)
    scale = n_rows / measured_rows
    cases = [(f, nnz_per_row) for f in features] + [(features[1], 2 * nnz_per_row)]
    data = {case: make_sparse(measured_rows, *case) for case in cases}
    times = {(v, c): [] for v in variants for c in cases}
    for _ in range(rounds):
        for case in cases:
            for variant in variants:
                times[variant, case].append(scale * epoch_seconds(*data[case], variant, epochs))
    out = {
        "n_rows": n_rows,
        "measured_rows": measured_rows,
        "nnz_per_row": nnz_per_row,
        "hidden": list(HIDDEN),
        "batch_size": BATCH,
        "optimizer": "Adam (shipped) / SparseAwareAdam (embedding_bag), lr=1e-3",
    }
    for variant in variants:
        rows = [
            {
                "n_features": f,
                "nnz_per_row": k,
                "nnz_per_epoch": round(data[f, k][0].nnz * scale),
                "seconds_per_epoch": statistics.median(times[variant, (f, k)]),
            }
            for f, k in cases
        ]
        base = rows[0]["seconds_per_epoch"]
        out[variant] = {
            "rows": rows,
            # equal nnz, 10x and 100x the features: should stay near 1
            "features_10x_ratio": rows[1]["seconds_per_epoch"] / base,
            "features_100x_ratio": rows[2]["seconds_per_epoch"] / base,
            # equal features, 2x the nnz: near 2 where the non-zeros dominate
            "nnz_2x_ratio": rows[3]["seconds_per_epoch"] / rows[1]["seconds_per_epoch"],
        }
    return out


def _text_memory(variant, n_docs, epochs, hidden, repeats):
    """Memory of fitting on TF-IDF text, with ``bench_text_memory``'s corpus and meter.

    ``"shipped"`` is ``bench_text_memory.run`` itself (the arguments its
    current version takes); ``"embedding_bag"`` repeats its protocol (same
    corpus, warm-up fit on 512 rows, resident set size sampled during each
    fit) with the prototype first layer.
    """
    import inspect
    import resource

    import bench_text_memory
    from sklearn.base import clone
    from sklearn.feature_extraction.text import TfidfVectorizer

    if variant == "shipped":
        kwargs = {"n_docs": n_docs, "epochs": epochs, "hidden": hidden, "repeats": repeats}
        accepted = inspect.signature(bench_text_memory.run).parameters
        return bench_text_memory.run(**{k: v for k, v in kwargs.items() if k in accepted})
    read, _ = bench_text_memory._rss_reader()
    docs, y = bench_text_memory.make_corpus(n_docs)
    X = TfidfVectorizer(dtype=np.float32).fit_transform(docs)
    del docs
    clf = _estimator(variant, X.shape[1], int(y.max()) + 1, epochs)
    with bench_text_memory.PeakRSS(read):
        clone(clf).set_params(max_epochs=1).fit(X[:512], y[:512]).predict_proba(X[:512])
    fits = []
    for _ in range(repeats):
        with bench_text_memory.PeakRSS(read) as fit:
            clone(clf).fit(X, y)
        fits.append(fit)
    return {
        "shape": list(X.shape),
        "nnz": int(X.nnz),
        "epochs": epochs,
        "hidden": hidden,
        "dense_float32_MB": X.shape[0] * X.shape[1] * 4 / 1e6,
        "fit_peak_rss_growth_MB": [fit.growth / 1e6 for fit in fits],
        "fit_seconds": [fit.seconds for fit in fits],
        "process_max_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6,
    }


def run_memory(
    n_docs=20_000, epochs=2, hidden=HIDDEN[0], repeats=2, variant="shipped", fresh_process=True
):
    """Peak memory of fitting on TF-IDF (see :func:`_text_memory`).

    In a fresh interpreter by default, so that the process's peak resident
    set size is this fit's own and not what earlier benchmarks allocated.
    """
    args = (n_docs, epochs, hidden, repeats)
    if fresh_process:
        code = (
            "import json, sys; sys.path.insert(0, sys.argv[1]); import bench_sparse; "
            "print(json.dumps(bench_sparse._text_memory(sys.argv[2], *map(int, sys.argv[3:]))))"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code, HERE, variant, *map(str, args)],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(proc.stdout.strip().splitlines()[-1])
    else:
        result = _text_memory(variant, *args)
    # bench_text_memory reports one fit or, in newer versions, a list of repeats.
    seconds = np.atleast_1d(result["fit_seconds"])
    growth = np.atleast_1d(result["fit_peak_rss_growth_MB"])
    dense = result["dense_float32_MB"]
    result["variant"] = variant
    result["seconds_per_epoch_incl_validation"] = float(np.median(seconds)) / epochs
    result["max_fit_growth_over_dense"] = float(growth.max()) / dense
    result["process_peak_over_dense"] = result["process_max_rss_MB"] / dense
    return result


def run(quick=False):
    if quick:
        return {
            "memory": {
                variant: run_memory(
                    n_docs=1_000, epochs=1, repeats=1, variant=variant, fresh_process=False
                )
                for variant in VARIANTS
            },
            "scaling": run_scaling(
                n_rows=1_000, measured_rows=256, features=(1_000, 10_000, 100_000), nnz_per_row=10
            ),
        }
    return {
        "memory": {variant: run_memory(variant=variant) for variant in VARIANTS},
        "scaling": run_scaling(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    args = parser.parse_args()
    result = run(quick=args.quick)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
