"""Training throughput: the estimator against a hand-written loop and plain skorch.

All three train the same MLP (n_features-256-256-n_classes, ReLU) with the
same SGD settings and batch size on the same pre-made data; each is timed for
the same number of epochs, interleaved over several rounds so that machine
noise hits all of them alike, and the medians are compared as ratios.

Run ``python benchmarks/bench_fit.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch
from skorch import NeuralNetClassifier
from torch import nn

from ldam_sklearn import LDAMDRWClassifier
from ldam_sklearn.modules import MLP

HIDDEN = (256, 256)
SGD = {"lr": 0.05, "momentum": 0.9, "weight_decay": 2e-4}


def make_data(n_samples: int, n_features: int, n_classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features), dtype=np.float32)
    y = rng.integers(0, n_classes, n_samples)
    return X, y


def hand_written_loop(X, y, epochs: int, batch_size: int) -> float:
    """The reference: tensors made once, a permutation per epoch, no framework."""
    torch.manual_seed(0)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    model = MLP(X.shape[1], int(y.max()) + 1, HIDDEN)
    opt = torch.optim.SGD(model.parameters(), **SGD)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(Xt))
        for i in range(0, len(Xt), batch_size):
            idx = order[i : i + batch_size]
            opt.zero_grad()
            loss = loss_fn(model(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            loss.item()  # skorch records every batch loss; pay the same sync
    return (time.perf_counter() - start) / epochs


def ours(X, y, epochs: int, batch_size: int) -> float:
    clf = LDAMDRWClassifier(
        loss="ce",
        schedule="none",
        lr_schedule=None,
        max_epochs=epochs,
        batch_size=batch_size,
        lr=SGD["lr"],
        module__hidden_layer_sizes=HIDDEN,
        device="cpu",
        random_state=0,
    )
    start = time.perf_counter()
    clf.fit(X, y)
    return (time.perf_counter() - start) / epochs


class _SkorchMLP(MLP):
    def __init__(self, n_features=50, n_classes=10):
        super().__init__(n_features, n_classes, HIDDEN)


def plain_skorch(X, y, epochs: int, batch_size: int) -> float:
    torch.manual_seed(0)
    net = NeuralNetClassifier(
        _SkorchMLP,
        module__n_features=X.shape[1],
        module__n_classes=int(y.max()) + 1,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        lr=SGD["lr"],
        optimizer__momentum=SGD["momentum"],
        optimizer__weight_decay=SGD["weight_decay"],
        max_epochs=epochs,
        batch_size=batch_size,
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
    )
    start = time.perf_counter()
    net.fit(X, y)
    return (time.perf_counter() - start) / epochs


def run(n_samples=50_000, n_features=50, n_classes=10, batch_size=256, epochs=2, rounds=3):
    """Median seconds per epoch of each contender and the ratios to the loop."""
    X, y = make_data(n_samples, n_features, n_classes)
    contenders = {"hand_written": hand_written_loop, "ldam_sklearn": ours, "skorch": plain_skorch}
    times = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, fn in contenders.items():
            times[name].append(fn(X, y, epochs, batch_size))
    medians = {name: statistics.median(ts) for name, ts in times.items()}
    base = medians["hand_written"]
    return {
        "shape": [n_samples, n_features],
        "n_classes": n_classes,
        "batch_size": batch_size,
        "threads": torch.get_num_threads(),
        "seconds_per_epoch": medians,
        "ratio_to_hand_written": {name: t / base for name, t in medians.items()},
        "skorch_over_ours": medians["skorch"] / medians["ldam_sklearn"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small data, one round")
    args = parser.parse_args()
    result = run(n_samples=5_000, rounds=1) if args.quick else run()
    print(json.dumps(result, indent=2))
    ratio = result["ratio_to_hand_written"]["ldam_sklearn"]
    print(f"ldam_sklearn / hand-written loop: {ratio:.2f}x (target <= 1.15x)")
    print(f"plain skorch / ldam_sklearn:      {result['skorch_over_ours']:.2f}x (target >= 2x)")


if __name__ == "__main__":
    main()
