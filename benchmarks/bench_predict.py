"""Prediction throughput: ``predict_proba`` against the module's own forward pass.

A fitted ``LDAMDRWClassifier`` (the default LDAM-DRW, MLP n_features-256-256-
n_classes; the weights do not matter for speed, so it is fitted on a few rows
for one epoch) predicts 1,000,000 dense rows. The reference is the module's
forward pass in a loop over slices of a tensor made beforehand, under
``torch.inference_mode()``, at the same batch size, its outputs gathered into
one tensor. ``predict_proba`` also validates X (finite check, float32),
applies the head's scale, takes a float64 softmax and returns a NumPy array.

Both are measured at the estimator's training ``batch_size`` (256: what
``predict_proba`` uses today) and at 4,096 rows per batch, interleaved over
rounds; medians are reported as rows per second.

Run ``python benchmarks/bench_predict.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from bench_fit import HIDDEN, make_data

from ldam_sklearn import LDAMDRWClassifier


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def forward_loop(module, Xt, batch_size) -> float:
    """Seconds for the module's forward pass over ``Xt`` (already on the device) in slices."""
    start = time.perf_counter()
    with torch.inference_mode():
        module.eval()
        outputs = [module(Xt[i : i + batch_size]) for i in range(0, len(Xt), batch_size)]
        torch.cat(outputs)
    _sync(Xt.device)
    return time.perf_counter() - start


def predict_proba(clf, X, batch_size) -> float:
    clf.set_params(batch_size=batch_size)
    start = time.perf_counter()
    clf.predict_proba(X)
    return time.perf_counter() - start


def run(
    n_rows=1_000_000, n_features=50, n_classes=10, batch_sizes=(256, 4096), rounds=3, device="cpu"
):
    """Median rows per second of ``predict_proba`` and the forward loop per batch size."""
    X, y = make_data(n_rows, n_features, n_classes)
    clf = LDAMDRWClassifier(
        max_epochs=1,
        batch_size=batch_sizes[0],
        module__hidden_layer_sizes=HIDDEN,
        device=device,
        random_state=0,
        n_threads=torch.get_num_threads(),  # the forward loop's, like for like
        recipe="paper",  # one fit; speed does not depend on the weights
    ).fit(X[:2000], y[:2000])
    Xt = torch.from_numpy(X).to(clf.device_)
    times = {(kind, bs): [] for bs in batch_sizes for kind in ("predict_proba", "forward")}
    for _ in range(rounds):
        for bs in batch_sizes:
            times["forward", bs].append(forward_loop(clf.module_, Xt, bs))
            times["predict_proba", bs].append(predict_proba(clf, X, bs))
    out = {
        "n_rows": n_rows,
        "n_features": n_features,
        "n_classes": n_classes,
        "rounds": rounds,
        "threads": torch.get_num_threads(),
        "device": str(clf.device_),
        "by_batch_size": {},
    }
    for bs in batch_sizes:
        fwd = statistics.median(times["forward", bs])
        proba = statistics.median(times["predict_proba", bs])
        out["by_batch_size"][str(bs)] = {
            "forward_rows_per_s": n_rows / fwd,
            "predict_proba_rows_per_s": n_rows / proba,
            "predict_proba_over_forward": proba / fwd,
            "seconds": {
                "forward": times["forward", bs],
                "predict_proba": times["predict_proba", bs],
            },
        }
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20,000 rows, one round")
    args = parser.parse_args()
    result = run(n_rows=20_000, rounds=1) if args.quick else run()
    print(json.dumps(result, indent=2))
    for bs, block in result["by_batch_size"].items():
        print(
            f"batch {bs:>5}: predict_proba {block['predict_proba_rows_per_s']:,.0f} rows/s, "
            f"forward loop {block['forward_rows_per_s']:,.0f} rows/s, "
            f"ratio {block['predict_proba_over_forward']:.2f}x"
        )


if __name__ == "__main__":
    main()
