"""Cost of one L2RW training step, and of an L2RW epoch, relative to plain ERM.

Step level (:func:`run`): times, side by side in one process, a plain ERM
step (forward, cross-entropy, backward, SGD step) and a full
Learning-to-Reweight step (example weights from a meta batch, then the
weighted update) for each weight method of ``ldam_sklearn.meta_reweighting``.
``"lookahead"`` is the naive double-backward implementation of the paper's
Algorithm 1, the reference to beat. Repeats are interleaved across variants
so that machine-load drift hits all of them alike; medians are reported.

Estimator level (:func:`run_epochs`): seconds per epoch of
``L2RWClassifier(weight_method=...)`` and of ``MetaWeightNetClassifier()``
(row ``mwnet``, its defaults; ``mwnet updated`` with the paper's
``real_step_weights="updated"``) against ``LDAMDRWClassifier(loss="ce",
schedule="none", recipe="paper")`` (ERM) with the same MLP, optimizer, batch size and
training rows (the meta rows are given with ``meta_mask`` and excluded from
training, so all train on the same rows).

Sparse input (:func:`run_sparse_epochs`, ``--sparse``): seconds per epoch of
both estimators against the same ERM on random sparse rows, at 10,000 and
200,000 features with the same non-zeros, each with the default network for
sparse input (a ``SparseLinear`` first layer).

Run ``python benchmarks/bench_meta_weights.py --help`` for the options.
"""

import argparse
import copy
import statistics
import time

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from _ratios import paired_ratio
from torch import nn

from ldam_sklearn import L2RWClassifier, LDAMDRWClassifier, MetaWeightNetClassifier
from ldam_sklearn.meta_reweighting import l2rw_example_weights, meta_weighted_loss

METHODS = ("layerwise", "jvp", "lookahead")


def make_mlp(n_features, hidden, n_classes):
    return nn.Sequential(
        nn.Linear(n_features, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, n_classes),
    )


def erm_step(net, optimizer, X, y, X_meta, y_meta):
    optimizer.zero_grad()
    F.cross_entropy(net(X), y).backward()
    optimizer.step()


def l2rw_step(method):
    def step(net, optimizer, X, y, X_meta, y_meta):
        optimizer.zero_grad()
        loss, _, _ = meta_weighted_loss(net, X, y, X_meta, y_meta, method=method)
        loss.backward()
        optimizer.step()

    return step


def run(
    features=60,
    hidden=256,
    classes=10,
    batch=256,
    meta_batch=100,
    repeats=9,
    steps=10,
    methods=METHODS,
    verbose=False,
):
    """Median milliseconds per step of ERM and of each L2RW route, and ratios to ERM."""
    torch.manual_seed(0)
    template = make_mlp(features, hidden, classes)
    n_batches = 8
    batches = [
        (
            torch.randn(batch, features),
            torch.randint(0, classes, (batch,)),
            torch.randn(meta_batch, features),
            torch.randint(0, classes, (meta_batch,)),
        )
        for _ in range(n_batches)
    ]

    # Sanity check before timing: all routes give the same weights.
    reference = l2rw_example_weights(template, *batches[0], method="lookahead")
    max_diff = {}
    for method in ("layerwise", "jvp"):
        weights = l2rw_example_weights(template, *batches[0], method=method)
        max_diff[method] = (weights - reference).abs().max().item()
        if verbose:
            print(f"max |w_{method} - w_lookahead| = {max_diff[method]:.2e}")

    variants = {"erm": erm_step} | {method: l2rw_step(method) for method in methods}
    # A separate network and optimizer per variant, so their updates do not mix.
    state = {}
    for name in variants:
        net = copy.deepcopy(template)
        state[name] = (net, torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9))
    times = {name: [] for name in variants}
    for round_ in range(repeats + 1):
        for name, step in variants.items():
            net, optimizer = state[name]
            start = time.perf_counter()
            for i in range(steps):
                step(net, optimizer, *batches[i % n_batches])
            elapsed = (time.perf_counter() - start) / steps
            if round_ > 0:  # round 0 warms up allocators and lazy initialisation
                times[name].append(elapsed)
    ms = {name: 1e3 * statistics.median(ts) for name, ts in times.items()}
    return {
        "mlp": [features, hidden, hidden, classes],
        "batch": batch,
        "meta_batch": meta_batch,
        "threads": torch.get_num_threads(),
        "repeats": repeats,
        "steps": steps,
        "max_weight_diff_to_lookahead": max_diff,
        "ms_per_step": ms,
        "ratio_to_erm": {name: t / ms["erm"] for name, t in ms.items()},
    }


def run_epochs(
    n_samples=20_000,
    n_features=50,
    n_classes=10,
    hidden=256,
    batch_size=256,
    meta_per_class=10,
    epochs=1,
    rounds=3,
    methods=METHODS,
    weighting="sign",
    device="cpu",
):
    """Median seconds per epoch of the L2RW estimator by route, and ratios to ERM.

    A ratio is the median, over rounds, of a contender's epoch over the ERM
    epoch of the same round.

    Every fit's wall-clock time is divided by its epochs; the L2RW fits have
    ``meta_per_class * n_classes`` extra rows marked by ``meta_mask``.
    """
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n_samples, n_features), dtype=np.float32)
    y = rng.integers(0, n_classes, n_samples)
    X_meta = rng.standard_normal((meta_per_class * n_classes, n_features), dtype=np.float32)
    y_meta = np.repeat(np.arange(n_classes), meta_per_class)
    X_all, y_all = np.concatenate([X, X_meta]), np.concatenate([y, y_meta])
    meta_mask = np.arange(len(y_all)) >= n_samples
    common = {
        "max_epochs": epochs,
        "batch_size": batch_size,
        "lr": 0.05,
        "lr_schedule": None,
        "module__hidden_layer_sizes": (hidden, hidden),
        "device": device,
        "random_state": 0,
    }

    def erm():
        # recipe="paper": plain training, nothing added to the step.
        clf = LDAMDRWClassifier(loss="ce", schedule="none", recipe="paper", **common)
        start = time.perf_counter()
        clf.fit(X, y)
        return (time.perf_counter() - start) / epochs

    def l2rw(method):
        def fit():
            clf = L2RWClassifier(weight_method=method, weighting=weighting, **common)
            start = time.perf_counter()
            clf.fit(X_all, y_all, meta_mask=meta_mask)
            return (time.perf_counter() - start) / epochs

        return fit

    def mwnet(real_step_weights):
        def fit():
            clf = MetaWeightNetClassifier(real_step_weights=real_step_weights, **common)
            start = time.perf_counter()
            clf.fit(X_all, y_all, meta_mask=meta_mask)
            return (time.perf_counter() - start) / epochs

        return fit

    contenders = (
        {"erm": erm}
        | {method: l2rw(method) for method in methods}
        | {"mwnet": mwnet("lookahead"), "mwnet updated": mwnet("updated")}
    )
    times = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            times[name].append(fn())
    seconds = {name: statistics.median(ts) for name, ts in times.items()}
    return {
        "shape": [n_samples, n_features],
        "n_classes": n_classes,
        "meta_rows": meta_per_class * n_classes,
        "batch_size": batch_size,
        "weighting": weighting,
        "device": str(device),
        "epochs": epochs,
        "rounds": rounds,
        "threads": torch.get_num_threads(),
        "seconds_per_epoch": seconds,
        "ratio_to_erm": {name: paired_ratio(ts, times["erm"]) for name, ts in times.items()},
        "all_seconds": times,
    }


def run_sparse_epochs(
    feature_counts=(10_000, 200_000), n_samples=4_000, nnz=20, epochs=2, rounds=3
):
    """Seconds per epoch on sparse input, L2RW and MW-Net against ERM, by feature count.

    Random sparse rows with ``nnz`` non-zeros on average and 20 % positives;
    every estimator gets the default network for sparse input (a
    ``SparseLinear`` first layer) and holds out its own meta rows where it
    has them. Ratios are medians of per-round ratios, as in :func:`run_epochs`.
    """
    rng = np.random.default_rng(0)
    y = (rng.random(n_samples) < 0.2).astype(int)
    contenders = {
        "erm": lambda: LDAMDRWClassifier(loss="ce", schedule="none", recipe="paper"),
        "l2rw": L2RWClassifier,
        "mwnet": MetaWeightNetClassifier,
    }
    result = {}
    for n_features in feature_counts:
        X = sp.random(
            n_samples,
            n_features,
            density=nnz / n_features,
            format="csr",
            random_state=0,
            dtype=np.float32,
        )
        times = {name: [] for name in contenders}
        for _ in range(rounds):
            for name, make in contenders.items():
                clf = make().set_params(max_epochs=epochs, random_state=0)
                start = time.perf_counter()
                clf.fit(X, y)
                times[name].append((time.perf_counter() - start) / epochs)
        result[n_features] = {
            "seconds_per_epoch": {name: statistics.median(ts) for name, ts in times.items()},
            "ratio_to_erm": {name: paired_ratio(ts, times["erm"]) for name, ts in times.items()},
        }
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=int, default=60)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--meta-batch", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=9, help="interleaved rounds")
    parser.add_argument("--steps", type=int, default=10, help="steps per variant and round")
    parser.add_argument("--epochs", action="store_true", help="also time estimator epochs")
    parser.add_argument(
        "--sparse", action="store_true", help="also time estimator epochs on sparse input"
    )
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    result = run(
        features=args.features,
        hidden=args.hidden,
        classes=args.classes,
        batch=args.batch,
        meta_batch=args.meta_batch,
        repeats=args.repeats,
        steps=args.steps,
        verbose=True,
    )
    print(
        f"\nMLP {args.features}-{args.hidden}-{args.hidden}-{args.classes}, batch {args.batch}, "
        f"meta batch {args.meta_batch}, {args.threads} threads, "
        f"{args.repeats} interleaved rounds x {args.steps} steps, median"
    )
    print(f"{'step':<16}{'ms/step':>10}{'x ERM':>8}")
    for name, ms in result["ms_per_step"].items():
        label = name if name == "erm" else f"l2rw {name}"
        print(f"{label:<16}{ms:>10.3f}{result['ratio_to_erm'][name]:>8.2f}")
    if args.epochs:
        epochs = run_epochs(hidden=args.hidden, n_classes=args.classes, batch_size=args.batch)
        print(f"\n{'estimator epoch':<16}{'s/epoch':>10}{'x ERM':>8}")
        for name, seconds in epochs["seconds_per_epoch"].items():
            label = name if name.startswith(("erm", "mwnet")) else f"l2rw {name}"
            print(f"{label:<16}{seconds:>10.3f}{epochs['ratio_to_erm'][name]:>8.2f}")

    if args.sparse:
        print(f"\n{'sparse input':<16}{'s/epoch':>10}{'x ERM':>8}")
        for n_features, block in run_sparse_epochs().items():
            for name, seconds in block["seconds_per_epoch"].items():
                label = f"{name} {n_features:,}"
                print(f"{label:<16}{seconds:>10.3f}{block['ratio_to_erm'][name]:>8.2f}")


if __name__ == "__main__":
    main()
