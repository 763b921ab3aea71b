"""Cost of one L2RW training step relative to a plain ERM step.

Times, side by side in one process, a plain ERM step (forward, cross-entropy,
backward, SGD step) and a full Learning-to-Reweight step (example weights from
a meta batch, then the weighted update) for each weight method of
``ldam_sklearn.meta_reweighting``. Repeats are interleaved across variants so
that machine-load drift hits all of them alike; medians are reported.

Run ``python benchmarks/bench_meta_weights.py --help`` for the options.
"""

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn

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
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    template = make_mlp(args.features, args.hidden, args.classes)
    n_batches = 8
    batches = [
        (
            torch.randn(args.batch, args.features),
            torch.randint(0, args.classes, (args.batch,)),
            torch.randn(args.meta_batch, args.features),
            torch.randint(0, args.classes, (args.meta_batch,)),
        )
        for _ in range(n_batches)
    ]

    # Sanity check before timing: all routes give the same weights.
    reference = l2rw_example_weights(template, *batches[0], method="lookahead")
    for method in ("layerwise", "jvp"):
        weights = l2rw_example_weights(template, *batches[0], method=method)
        print(f"max |w_{method} - w_lookahead| = {(weights - reference).abs().max().item():.2e}")

    variants = {"erm": erm_step} | {method: l2rw_step(method) for method in METHODS}
    # A separate network and optimizer per variant, so their updates do not mix.
    state = {}
    for name in variants:
        net = copy.deepcopy(template)
        state[name] = (net, torch.optim.SGD(net.parameters(), lr=1e-3, momentum=0.9))
    times = {name: [] for name in variants}
    for round_ in range(args.repeats + 1):
        for name, step in variants.items():
            net, optimizer = state[name]
            start = time.perf_counter()
            for i in range(args.steps):
                step(net, optimizer, *batches[i % n_batches])
            elapsed = (time.perf_counter() - start) / args.steps
            if round_ > 0:  # round 0 warms up allocators and lazy initialisation
                times[name].append(elapsed)

    print(
        f"\nMLP {args.features}-{args.hidden}-{args.hidden}-{args.classes}, batch {args.batch}, "
        f"meta batch {args.meta_batch}, {args.threads} threads, "
        f"{args.repeats} interleaved rounds x {args.steps} steps, median"
    )
    erm = statistics.median(times["erm"])
    print(f"{'step':<16}{'ms/step':>10}{'x ERM':>8}")
    for name in variants:
        median = statistics.median(times[name])
        label = name if name == "erm" else f"l2rw {name}"
        print(f"{label:<16}{1e3 * median:>10.3f}{median / erm:>8.2f}")


if __name__ == "__main__":
    main()
