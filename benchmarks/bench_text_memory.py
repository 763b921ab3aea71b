"""Peak memory of fitting on sparse TF-IDF text, against the dense matrix's size.

Builds TF-IDF features of a synthetic corpus (20,000 documents of 30 words
drawn from a 150,000-word vocabulary: about 147,000 features), then fits
``LDAMDRWClassifier`` on the sparse matrix while a thread samples the
process's resident set size every millisecond. Reports the peak RSS growth
during ``fit`` (``--repeats`` fits: the figure varies from run to run with
the C allocator's state, see below) and ``predict_proba``, the peak of Python-level allocations
(``tracemalloc``: NumPy and SciPy arrays, not PyTorch's), the size of the
CSR matrix and of the dense float32 matrix that is never built. A warm-up fit
on 512 rows comes first, so that the one-off cost of loading PyTorch's
kernels is reported apart.

The live memory of a fit is small (the model, its gradient and Adam's two
moments: 4 x 9.4 MB here), but glibc's allocator can keep freed blocks
resident while small allocations that live for a whole epoch sit above them:
the ``BalancedAccuracy`` callback keeps two small tensors per batch until the
epoch ends, and the RSS then grows by up to one weight-gradient per batch,
dropping back at each epoch's end. Runs measured 10 MB to 1.2 GB on 20,000
documents; with the callback accumulating a confusion matrix instead, 0 to
66 MB. ``MALLOC_ARENA_MAX=2`` also curbs it.

Run ``python benchmarks/bench_text_memory.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import sys
import threading
import time
import tracemalloc

import numpy as np
import torch
from sklearn.base import clone
from sklearn.feature_extraction.text import TfidfVectorizer

from ldam_sklearn import LDAMDRWClassifier


def make_corpus(n_docs: int, vocabulary: int = 150_000, length: int = 30, seed: int = 0):
    """Random words; 15 % "spam" documents also carry a few cue words."""
    rng = np.random.RandomState(seed)
    spam = rng.rand(n_docs) < 0.15
    words = np.char.add("w", rng.randint(0, vocabulary, size=(n_docs, length)).astype(str))
    cues = np.char.add("cue", rng.randint(0, 20, size=(n_docs, 3)).astype(str))
    docs = [
        " ".join(doc) + (" " + " ".join(cue) if is_spam else "")
        for doc, cue, is_spam in zip(words, cues, spam, strict=True)
    ]
    return docs, spam.astype(int)


def _rss_reader():
    try:
        import psutil
    except ImportError:
        page = os.sysconf("SC_PAGE_SIZE")

        def read():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * page

        return read, "/proc/self/statm"
    process = psutil.Process()
    return (lambda: process.memory_info().rss), "psutil"


class PeakRSS:
    """Peak growth of the resident set size inside a ``with`` block."""

    def __init__(self, read):
        self.read = read

    def __enter__(self):
        gc.collect()
        self.start = self.peak = self.read()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        tracemalloc.start()
        self._t0 = time.perf_counter()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.read())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self._t0
        self.traced_peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.read())
        self.growth = self.peak - self.start


def run(n_docs=20_000, epochs=2, hidden=16, batch_size=128, repeats=3):
    read, rss_source = _rss_reader()
    docs, y = make_corpus(n_docs)
    X = TfidfVectorizer(dtype=np.float32).fit_transform(docs)
    del docs
    clf = LDAMDRWClassifier(
        max_epochs=epochs,
        batch_size=batch_size,
        module__hidden_layer_sizes=(hidden,),
        optimizer=torch.optim.Adam,
        lr=1e-3,
        device="cpu",
        random_state=0,
    )
    # A first fit loads PyTorch's kernels and lazily imported modules (over
    # 100 MB of RSS on its own, whatever the data); take that out of the
    # measurement with a warm-up fit on 512 rows of the same width.
    with PeakRSS(read) as warmup:
        clone(clf).set_params(max_epochs=1).fit(X[:512], y[:512]).predict_proba(X[:512])
    fits = []
    for _ in range(repeats):
        with PeakRSS(read) as fit:
            clf = clone(clf).fit(X, y)
        fits.append(fit)
    with PeakRSS(read) as predict:
        clf.predict_proba(X)
    growth = [fit.growth for fit in fits]

    mb = 1e6
    dense = X.shape[0] * X.shape[1] * 4
    sparse = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    weights = sum(p.numel() for p in clf.module_.parameters()) * 4
    return {
        "shape": list(X.shape),
        "nnz": int(X.nnz),
        "epochs": epochs,
        "hidden": hidden,
        "threads": torch.get_num_threads(),
        "rss_source": rss_source,
        "dense_float32_MB": dense / mb,
        "csr_MB": sparse / mb,
        "model_parameters_MB": weights / mb,
        "warmup_peak_rss_growth_MB": warmup.growth / mb,
        "fit_peak_rss_growth_MB": [g / mb for g in growth],
        "fit_tracemalloc_peak_MB": max(fit.traced_peak for fit in fits) / mb,
        "fit_seconds": [fit.seconds for fit in fits],
        "predict_peak_rss_growth_MB": predict.growth / mb,
        "predict_seconds": predict.seconds,
        "process_max_rss_MB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / mb
        if sys.platform.startswith("linux")
        else None,
        "max_fit_growth_over_dense": max(growth) / dense,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2,000 documents, one epoch")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="fits measured")
    args = parser.parse_args()
    if args.quick:
        result = run(n_docs=2_000, epochs=1, repeats=1)
    else:
        result = run(epochs=args.epochs, repeats=args.repeats)
    print(json.dumps(result, indent=2))
    growth = ", ".join(f"{g:.0f}" for g in result["fit_peak_rss_growth_MB"])
    print(
        f"peak RSS growth during fit: {growth} MB; the largest is "
        f"{100 * result['max_fit_growth_over_dense']:.2f} % of the "
        f"{result['dense_float32_MB']:,.0f} MB dense matrix (target: well below 10 %)"
    )


if __name__ == "__main__":
    main()
