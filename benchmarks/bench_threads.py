"""Thread policy: the default ``n_threads="auto"`` against one thread and all threads.

A default ``LDAMDRWClassifier`` with one network (MLP n_features-256-256-2;
``--members 5``: the five packed members of the dense default) is fitted on
random data of (3000, 10), (50000, 50) and (200000, 100) rows x features,
once on an otherwise idle machine and once beside one CPU-bound process (a
Python busy loop started before the clock), with ``n_threads="auto"`` (the
default), ``n_threads=1`` and ``n_threads=-1`` (every core). Each round fits
the three in a rotated order; the reported ratio is the median over rounds
of the default's time over the better of the two fixed choices in the same
round (target: at most 1.2x in every row).

The fixed cost of a fit, a default ``fit`` on 1,000 rows for one epoch,
is reported as the median of ``--fixed-rounds`` fits after one warm-up
(aim: under 50 ms).

Run ``python benchmarks/bench_threads.py`` (``--quick`` for a smoke run);
writes ``threads.json`` (``threads_members5.json``) to ``--out``. Idle rows
mean something only when nothing else runs: the benchmark prints the load
average it started at.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from bench_fit import make_data

from ldam_sklearn import LDAMDRWClassifier

#: (rows, features, epochs): epochs keep each idle fit near a second or two.
ROWS = ((3000, 10, 20), (50000, 50, 2), (200000, 100, 1))
QUICK_ROWS = ((600, 10, 2), (2000, 20, 1))
POLICIES = {"auto": "auto", "1 thread": 1, "all threads": -1}


@contextmanager
def cpu_bound_neighbour(active: bool):
    """A busy-looping Python process for the duration of the block."""
    if not active:
        yield
        return
    neighbour = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)  # let it reach the run queue before the clock starts
        yield
    finally:
        neighbour.kill()
        neighbour.wait()


def time_fit(X, y, epochs: int, n_threads, n_members: int = 1) -> tuple[float, int]:
    gc.collect()
    clf = LDAMDRWClassifier(
        max_epochs=epochs, random_state=0, n_threads=n_threads, n_members=n_members
    )
    start = time.perf_counter()
    clf.fit(X, y)
    return time.perf_counter() - start, clf.n_threads_


def measure_row(n_rows, n_features, epochs, rounds, loaded, n_members=1) -> dict:
    X, y = make_data(n_rows, n_features, 2)
    names = list(POLICIES)
    times = {name: [] for name in names}
    chosen = []
    with cpu_bound_neighbour(loaded):
        for r in range(rounds):
            order = names[r % len(names) :] + names[: r % len(names)]
            for name in order:
                seconds, used = time_fit(X, y, epochs, POLICIES[name], n_members)
                times[name].append(seconds)
                if name == "auto":
                    chosen.append(used)
    ratios = [
        a / min(one, every)
        for a, one, every in zip(
            times["auto"], times["1 thread"], times["all threads"], strict=True
        )
    ]
    return {
        "rows": n_rows,
        "features": n_features,
        "epochs": epochs,
        "loaded": loaded,
        "seconds": {name: statistics.median(t) for name, t in times.items()},
        "auto_threads": chosen,
        "auto_over_best": statistics.median(ratios),
    }


def fixed_cost(rounds: int) -> float:
    X, y = make_data(1000, 10, 2)
    time_fit(X, y, 1, "auto")  # warm-up: first-call costs of torch and skorch
    return statistics.median(time_fit(X, y, 1, "auto")[0] for _ in range(rounds))


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fixed-rounds", type=int, default=20)
    parser.add_argument(
        "--members", type=int, default=1, help="n_members of the network (5: the dense default)"
    )
    parser.add_argument("--out", type=Path, default=Path("results/benchmarks"))
    args = parser.parse_args(argv)
    rows = QUICK_ROWS if args.quick else ROWS
    rounds = 1 if args.quick else args.rounds
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores", flush=True)
    results = {"fixed_cost_s": fixed_cost(3 if args.quick else args.fixed_rounds), "rows": []}
    print(
        f"fixed cost, default fit on 1,000 rows for 1 epoch: {results['fixed_cost_s'] * 1e3:.1f} ms"
    )
    print(f"{'X':>14} {'machine':>9} {'auto':>8} {'1 thr':>8} {'all':>8} {'auto/best':>10}")
    for n_rows, n_features, epochs in rows:
        for loaded in (False, True):
            row = measure_row(n_rows, n_features, epochs, rounds, loaded, args.members)
            results["rows"].append(row)
            s = row["seconds"]
            print(
                f"{n_rows:>7} x {n_features:<4} {'loaded' if loaded else 'idle':>9} "
                f"{s['auto']:>7.2f}s {s['1 thread']:>7.2f}s {s['all threads']:>7.2f}s "
                f"{row['auto_over_best']:>9.2f}x",
                flush=True,
            )
    args.out.mkdir(parents=True, exist_ok=True)
    name = "threads.json" if args.members == 1 else f"threads_members{args.members}.json"
    (args.out / name).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
