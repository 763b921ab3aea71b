"""Sparse input: time per epoch against n_features and nnz, and peak memory on TF-IDF.

Two measurements of ``LDAMDRWClassifier`` with its defaults on sparse input
(``"shipped"``: the default MLP's first layer is a
:class:`ldam_sklearn.modules.SparseLinear`, an ``nn.EmbeddingBag(mode="sum",
sparse=True)`` read from the batch's non-zeros, and the default
:class:`ldam_sklearn.optim.SGD` updates the rows of its sparse gradient
lazily):

1. **Scaling** on synthetic CSR matrices with a fixed number of non-zeros per
   row: time per epoch of 20,000 rows (measured on 40 batches and scaled; 5 rounds) at
   10,000, 100,000 and 1,000,000 features with equal non-zeros (it should
   not grow with the number of features), and at 2x the non-zeros (it should
   grow with them).
2. **Memory** on TF-IDF of 20,000 synthetic documents (about 147,000
   features), with ``bench_text_memory``'s corpus and meter, in a fresh
   process so that what earlier benchmarks allocated does not count: peak
   resident set size of the whole process and its growth during ``fit``,
   against the size the dense float32 matrix would have.

``--variants shipped linear`` adds ``"linear"``, the same estimator with
``module__sparse_input=False``: ``nn.Linear`` on sparse COO batches, whose
weight gradient is a dense ``n_features x hidden`` matrix (the path before
``SparseLinear``; optimizers without sparse gradients still take it), for a
before/after comparison. It takes minutes at 1,000,000 features.

Run ``python benchmarks/bench_sparse.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

import numpy as np
import scipy.sparse as sp
from _ratios import paired_ratio

from ldam_sklearn import LDAMDRWClassifier

HERE = os.path.dirname(os.path.abspath(__file__))
HIDDEN = (16,)  # as in bench_text_memory: a wide sparse first layer, a narrow network
BATCH = 128
VARIANTS = ("shipped",)
#: Every variant :func:`_estimator` knows; ``"linear"`` is opt-in.
ALL_VARIANTS = ("shipped", "linear")


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


def _estimator(variant, epochs):
    """The package's defaults on sparse input; ``"linear"`` opts out of SparseLinear."""
    common = {
        "max_epochs": epochs,
        "batch_size": BATCH,
        "module__hidden_layer_sizes": HIDDEN,
        "device": "cpu",
        "random_state": 0,
    }
    if variant == "shipped":  # SparseLinear first layer, lazy SGD with momentum
        return LDAMDRWClassifier(**common)
    if variant == "linear":  # nn.Linear on sparse COO batches, dense weight gradient
        return LDAMDRWClassifier(module__sparse_input=False, **common)
    raise ValueError(f"unknown variant {variant!r}; choose from {ALL_VARIANTS}")


def epoch_seconds(X, y, variant, epochs=1):
    """Mean training time per epoch (skorch's EpochTimer), validation and set-up excluded."""
    clf = _estimator(variant, epochs)
    clf.fit(X, y)
    assert type(clf.module_.body[0]).__name__ == (
        "SparseLinear" if variant == "shipped" else "Linear"
    )
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
    steps, and the ``"linear"`` variant at 10^6 features takes minutes per
    full epoch. Rounds are interleaved; times are medians over rounds, and
    ratios medians of the ratios within a round.
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
        "optimizer": "ldam_sklearn.optim.SGD(momentum=0.9, weight_decay=2e-4), lr=0.1",
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
        case_times = [times[variant, case] for case in cases]
        out[variant] = {
            "rows": rows,
            # equal nnz, 10x and 100x the features: should stay near 1
            "features_10x_ratio": paired_ratio(case_times[1], case_times[0]),
            "features_100x_ratio": paired_ratio(case_times[2], case_times[0]),
            # equal features, 2x the nnz: near 2 where the non-zeros dominate
            "nnz_2x_ratio": paired_ratio(case_times[3], case_times[1]),
        }
    return out


def _text_memory(variant, n_docs, epochs, hidden, repeats):
    """Memory of fitting on TF-IDF text, with ``bench_text_memory``'s corpus and meter.

    Repeats ``bench_text_memory.run``'s protocol (same corpus, warm-up fit on
    512 rows, resident set size sampled during each fit) with the package's
    default optimizer: ``bench_text_memory`` itself fits with
    ``torch.optim.Adam``, which takes no sparse gradients and so keeps
    ``nn.Linear``.
    """
    import resource

    import bench_text_memory
    from sklearn.base import clone
    from sklearn.feature_extraction.text import TfidfVectorizer

    read, _ = bench_text_memory._rss_reader()
    docs, y = bench_text_memory.make_corpus(n_docs)
    X = TfidfVectorizer(dtype=np.float32).fit_transform(docs)
    del docs
    clf = _estimator(variant, epochs).set_params(module__hidden_layer_sizes=(hidden,))
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
    seconds = np.atleast_1d(result["fit_seconds"])
    growth = np.atleast_1d(result["fit_peak_rss_growth_MB"])
    dense = result["dense_float32_MB"]
    result["variant"] = variant
    result["seconds_per_epoch_incl_validation"] = float(np.median(seconds)) / epochs
    result["max_fit_growth_over_dense"] = float(growth.max()) / dense
    result["process_peak_over_dense"] = result["process_max_rss_MB"] / dense
    return result


def run(quick=False, variants=VARIANTS):
    if quick:
        return {
            "memory": {
                variant: run_memory(
                    n_docs=1_000, epochs=1, repeats=1, variant=variant, fresh_process=False
                )
                for variant in variants
            },
            "scaling": run_scaling(
                n_rows=1_000,
                measured_rows=256,
                features=(1_000, 10_000, 100_000),
                nnz_per_row=10,
                variants=variants,
            ),
        }
    return {
        "memory": {variant: run_memory(variant=variant) for variant in variants},
        "scaling": run_scaling(variants=variants, rounds=5),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=ALL_VARIANTS,
        default=list(VARIANTS),
        help="estimators to measure (default: shipped)",
    )
    args = parser.parse_args()
    result = run(quick=args.quick, variants=tuple(args.variants))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
