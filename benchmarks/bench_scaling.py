"""Scaling: fit time against the number of rows and the number of classes.

``LDAMDRWClassifier`` (the default LDAM-DRW, MLP n_features-256-256-n_classes,
batch 256, one epoch) is fitted on dense random data of 50 features:

- 10^3, 10^4, 10^5 and 10^6 rows, 10 classes: the cost should be linear,
  i.e. the time per row should not grow (it shrinks at small sizes, where
  the fixed cost of ``fit`` dominates);
- 2, 10, 100, 300 and 1,000 classes, 20,000 rows: the output layer's cost is
  ``256 x n_classes`` per row, so the time should be an affine function of
  the number of classes.

Each point is the median of a few fits (the 10^6-row point: one fit of one
epoch). :func:`plot` draws both curves into one PNG.

Run ``python benchmarks/bench_scaling.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from bench_fit import HIDDEN, make_data

from ldam_sklearn import LDAMDRWClassifier


def fit_seconds(X, y, epochs=1, batch_size=256, device="cpu") -> float:
    clf = LDAMDRWClassifier(
        max_epochs=epochs,
        batch_size=batch_size,
        module__hidden_layer_sizes=HIDDEN,
        device=device,
        random_state=0,
        # One network, as docs/scaling.md measured; the default packs five on
        # dense data, whose steps hold five times the multiply-adds.
        n_members=1,
    )
    start = time.perf_counter()
    clf.fit(X, y)
    return time.perf_counter() - start


def _line(x, t):
    """Least-squares ``t = a + b x`` and its coefficient of determination."""
    x, t = np.asarray(x, dtype=float), np.asarray(t, dtype=float)
    b, a = np.polyfit(x, t, 1)
    residual = t - (a + b * x)
    r2 = 1 - (residual @ residual) / max(((t - t.mean()) ** 2).sum(), 1e-300)
    return float(a), float(b), float(r2)


def run(
    rows=(1_000, 10_000, 100_000, 1_000_000),
    classes=(2, 10, 100, 300, 1_000),
    class_rows=20_000,
    n_features=50,
    rounds=3,
    device="cpu",
):
    """Median fit seconds per point; the largest row count is fitted once."""
    out = {"n_features": n_features, "hidden": list(HIDDEN), "epochs": 1, "rounds": rounds}
    row_times = {n: [] for n in rows}
    data = {n: make_data(n, n_features, 10) for n in rows}
    for round_ in range(rounds):
        for n in rows:
            if n == max(rows) and round_ > 0 and len(rows) > 1:
                continue
            row_times[n].append(fit_seconds(*data[n], device=device))
    del data
    seconds = [statistics.median(row_times[n]) for n in rows]
    a, b, r2 = _line(rows, seconds)
    per_row = [s / n for s, n in zip(seconds, rows, strict=True)]
    out["rows"] = {
        "n_rows": list(rows),
        "seconds": seconds,
        "microseconds_per_row": [1e6 * p for p in per_row],
        # cost per row of the largest size over the next: 1.0 is linear
        "per_row_ratio_largest": per_row[-1] / per_row[-2],
        "fixed_seconds": a,
        "seconds_per_row": b,
        "r2": r2,
    }
    class_times = {c: [] for c in classes}
    data = {c: make_data(class_rows, n_features, c, seed=1) for c in classes}
    for _ in range(rounds):
        for c in classes:
            class_times[c].append(fit_seconds(*data[c], device=device))
    seconds = [statistics.median(class_times[c]) for c in classes]
    a, b, r2 = _line(classes, seconds)
    out["classes"] = {
        "n_rows": class_rows,
        "n_classes": list(classes),
        "seconds": seconds,
        "fixed_seconds": a,
        "seconds_per_class": b,
        "r2": r2,
        "largest_over_smallest": seconds[-1] / seconds[0],
    }
    out["threads"] = torch.get_num_threads()
    out["device"] = str(device)
    return out


def plot(result, path):
    """Write both curves (with the ideal linear growth) to a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    rows = result["rows"]
    n, t = np.asarray(rows["n_rows"], float), np.asarray(rows["seconds"])
    left.loglog(n, t, "o-", label="measured (1 epoch)")
    left.loglog(n, t[-2] * n / n[-2], "k--", lw=1, label=r"linear through $10^5$ rows")
    left.set_xlabel("rows")
    left.set_ylabel("fit seconds")
    left.set_title("fit time vs rows (50 features, 10 classes)")
    left.legend()
    classes = result["classes"]
    c, t = np.asarray(classes["n_classes"], float), np.asarray(classes["seconds"])
    right.plot(c, t, "o-", label="measured (1 epoch)")
    grid = np.linspace(c.min(), c.max(), 50)
    right.plot(
        grid,
        classes["fixed_seconds"] + classes["seconds_per_class"] * grid,
        "k--",
        lw=1,
        label=f"least-squares line, R² = {classes['r2']:.3f}",
    )
    right.set_xlabel("classes")
    right.set_ylabel("fit seconds")
    right.set_title(f"fit time vs classes ({classes['n_rows']:,} rows)")
    right.legend()
    fig.suptitle("LDAMDRWClassifier, MLP 50-256-256-C, batch 256")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round")
    parser.add_argument("--png", default="scaling.png")
    args = parser.parse_args()
    if args.quick:
        result = run(rows=(200, 400, 800), classes=(2, 5, 10), class_rows=400, rounds=1)
    else:
        result = run()
    plot(result, args.png)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
