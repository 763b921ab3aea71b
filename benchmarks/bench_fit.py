"""Training throughput: the estimator against a hand-written loop and plain skorch.

All three train the same MLP (n_features-256-256-n_classes, ReLU, input
standardised with the training mean and scale) with the same loss, SGD
settings and batch size on the same pre-made data; each is timed for the same
number of epochs, one after the other in each of several rounds (each taking
the first, second and third place in turn, with garbage collected before each),
and a ratio is the median over rounds of the ratio within a round (robust to
the machine's speed drifting between rounds).
Two losses are measured: ``"ce"`` (``LDAMDRWClassifier(loss="ce",
schedule="none")``, plain cross-entropy and a linear head) and ``"ldam"``
(the default LDAM-DRW: :class:`~ldam_sklearn.losses.LDAMLoss`, a cosine head
and the DRW switch), each against a loop and a plain skorch net using the
same module and loss.

Time per epoch is the throughput of training, measured alike for all three:
the loop's is its training loop over tensors made beforehand; the estimator's
and plain skorch's run from the ``on_train_begin`` event to the end of the last
epoch's callbacks (skorch's loop, every callback and, for plain skorch, its
default ``Dataset`` + ``DataLoader`` data path included). What ``fit`` spends
before that (validating X and y, input statistics, initialising the network)
is reported on its own as ``setup_seconds``: it is paid once per ``fit``,
not per epoch, and the loop does the same work before its clock starts.
Minor page faults per epoch are counted over the same span
(``page_faults_per_epoch``): unlike time, the count does not move with the
machine's load.

``precision="bf16"`` runs the forward pass and the loss under
``torch.autocast(dtype=torch.bfloat16)`` in all three (CUDA rows of the suite;
the estimator through its ``precision`` parameter).

Run ``python benchmarks/bench_fit.py`` (``--quick`` for a smoke run;
``--profile ldam_sklearn --epochs 1`` runs one contender once, for a
profiler).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import resource
import statistics
import time

import numpy as np
import torch
from _ratios import paired_ratio
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from torch import nn

from ldam_sklearn import LDAMDRWClassifier
from ldam_sklearn.losses import LDAMLoss
from ldam_sklearn.modules import MLP

HIDDEN = (256, 256)
SGD = {"lr": 0.05, "momentum": 0.9, "weight_decay": 2e-4}
LOSSES = ("ce", "ldam")


def make_data(n_samples: int, n_features: int, n_classes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features), dtype=np.float32)
    y = rng.integers(0, n_classes, n_samples)
    return X, y


def input_statistics(X) -> dict:
    """The per-feature mean and scale the estimator's MLP standardises with.

    Given to the loop's and plain skorch's MLP too, so that all three train
    the same network; computed before the clock starts.
    """
    return {"input_mean": X.mean(axis=0), "input_scale": X.std(axis=0)}


def _autocast(device, precision):
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)


def _criterion(loss: str, y):
    if loss == "ldam":
        return LDAMLoss(np.bincount(y))
    return nn.CrossEntropyLoss()


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _page_faults() -> int:
    """Minor page faults of this process so far.

    Counted next to the time: unlike it, the count does not move with the
    machine's load, and each fault costs several microseconds in a VM (a
    fragmented heap once cost LDAM-DRW a fifth of its epoch this way).
    """
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def hand_written_loop(
    X, y, epochs: int, batch_size: int, loss: str = "ce", device="cpu", precision="fp32"
) -> dict:
    """The reference: tensors made once, a permutation per epoch, no framework."""
    torch.manual_seed(0)
    Xt, yt = torch.from_numpy(X).to(device), torch.from_numpy(y).to(device)
    model = MLP(
        X.shape[1], int(y.max()) + 1, HIDDEN, cosine_head=loss == "ldam", **input_statistics(X)
    ).to(device)
    opt = torch.optim.SGD(model.parameters(), **SGD)
    loss_fn = _criterion(loss, y).to(device)
    _sync(device)
    faults, start = _page_faults(), time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(Xt), device=device)
        for i in range(0, len(Xt), batch_size):
            idx = order[i : i + batch_size]
            opt.zero_grad()
            with _autocast(device, precision):
                out = model(Xt[idx])
                value = loss_fn(out if loss == "ce" else out.float(), yt[idx])
            value.backward()
            opt.step()
            value.item()  # skorch records every batch loss; pay the same sync
    return {
        "epoch": (time.perf_counter() - start) / epochs,
        "setup": 0.0,
        "faults": (_page_faults() - faults) / epochs,
    }


class Stopwatch(Callback):
    """Clock from the start of training to the end of each epoch's callbacks.

    Given as a user callback, it runs after every default one but skorch's
    ``PrintLog``, which skorch always moves to the end (and which prints
    nothing at ``verbose=0``).
    """

    def on_train_begin(self, net, **kwargs):
        self.faults_start_, self.start_ = _page_faults(), time.perf_counter()

    def on_epoch_end(self, net, **kwargs):
        self.end_, self.faults_end_ = time.perf_counter(), _page_faults()


def _timed_fit(net, X, y, epochs: int, device) -> dict:
    """Fit ``net`` (which has a :class:`Stopwatch` named "stopwatch"); its times."""
    start = time.perf_counter()
    net.fit(X, y)
    _sync(device)
    end = time.perf_counter()
    watch = dict(net.callbacks_)["stopwatch"]
    training = watch.end_ - watch.start_
    return {
        "epoch": training / epochs,
        "setup": end - start - training,
        "faults": (watch.faults_end_ - watch.faults_start_) / epochs,
    }


def estimator(loss: str = "ce", precision: str = "fp32", **params):
    """The estimator as benchmarked: ``loss="ce"`` is ERM, ``"ldam"`` the default LDAM-DRW."""
    return LDAMDRWClassifier(
        loss=loss,
        schedule="none" if loss == "ce" else "drw",
        precision=precision,
        lr=SGD["lr"],
        module__hidden_layer_sizes=HIDDEN,
        random_state=0,
        # Like for like: the loop and plain skorch run at torch's setting and
        # train plainly (the default recipe adds mixup, clipping and a hold-out fit).
        n_threads=torch.get_num_threads(),
        recipe="paper",
        **params,
    )


def ours(
    X, y, epochs: int, batch_size: int, loss: str = "ce", device="cpu", precision="fp32"
) -> dict:
    clf = estimator(
        loss,
        precision,
        lr_schedule=None,  # the loop keeps lr constant; the schedule costs nothing per step
        max_epochs=epochs,
        batch_size=batch_size,
        device=device,
        callbacks=[("stopwatch", Stopwatch())],
    )
    return _timed_fit(clf, X, y, epochs, device)


class _SkorchMLP(MLP):
    def __init__(self, n_features=50, n_classes=10, cosine_head=False, input_statistics=None):
        super().__init__(
            n_features, n_classes, HIDDEN, cosine_head=cosine_head, **(input_statistics or {})
        )


class _AutocastSkorch(NeuralNetClassifier):
    def infer(self, x, **fit_params):
        with torch.autocast(torch.device(self.device).type, dtype=torch.bfloat16):
            out = super().infer(x, **fit_params)
        return out.float()


def plain_skorch(
    X, y, epochs: int, batch_size: int, loss: str = "ce", device="cpu", precision="fp32"
) -> dict:
    torch.manual_seed(0)
    criterion = {"criterion": nn.CrossEntropyLoss}
    if loss == "ldam":
        criterion = {"criterion": LDAMLoss, "criterion__class_counts": np.bincount(y)}
    cls = _AutocastSkorch if precision == "bf16" else NeuralNetClassifier
    net = cls(
        _SkorchMLP,
        module__n_features=X.shape[1],
        module__n_classes=int(y.max()) + 1,
        module__cosine_head=loss == "ldam",
        module__input_statistics=input_statistics(X),
        optimizer=torch.optim.SGD,
        lr=SGD["lr"],
        optimizer__momentum=SGD["momentum"],
        optimizer__weight_decay=SGD["weight_decay"],
        max_epochs=epochs,
        batch_size=batch_size,
        train_split=None,
        iterator_train__shuffle=True,
        verbose=0,
        device=device,
        callbacks=[("stopwatch", Stopwatch())],
        **criterion,
    )
    return _timed_fit(net, X, y, epochs, device)


CONTENDERS = {"hand_written": hand_written_loop, "ldam_sklearn": ours, "skorch": plain_skorch}


def run(
    n_samples=50_000,
    n_features=50,
    n_classes=10,
    batch_size=256,
    epochs=2,
    rounds=3,
    losses=("ce",),
    device="cpu",
    precision="fp32",
):
    """Median seconds per epoch of each contender and the ratios to the loop.

    With one loss the result has the flat layout of earlier versions; with
    several, one such block per loss under ``"by_loss"``.
    """
    X, y = make_data(n_samples, n_features, n_classes)
    times = {(loss, name): [] for loss in losses for name in CONTENDERS}
    setup = {(loss, name): [] for loss in losses for name in CONTENDERS}
    faults = {(loss, name): [] for loss in losses for name in CONTENDERS}
    names = list(CONTENDERS)
    for round_ in range(rounds):
        # Each contender takes each place in the order in turn: the machine's
        # speed drifts within a round too, and whoever always ran second
        # would always pay that drift.
        shift = round_ % len(names)
        for loss in losses:
            for name in names[shift:] + names[:shift]:
                # Garbage left by the previous contender (or by the imports,
                # before the first) is collected outside every clock: a full
                # collection took 0.16 s here, a tenth of an epoch at 200000 rows.
                gc.collect()
                timed = CONTENDERS[name](X, y, epochs, batch_size, loss, device, precision)
                times[loss, name].append(timed["epoch"])
                setup[loss, name].append(timed["setup"])
                faults[loss, name].append(timed["faults"])
    blocks = {}
    for loss in losses:
        medians = {name: statistics.median(times[loss, name]) for name in CONTENDERS}

        def paired(a, b, loss=loss):
            return paired_ratio(times[loss, a], times[loss, b])

        blocks[loss] = {
            "seconds_per_epoch": medians,
            "setup_seconds": {name: statistics.median(setup[loss, name]) for name in CONTENDERS},
            "page_faults_per_epoch": {
                name: statistics.median(faults[loss, name]) for name in CONTENDERS
            },
            "ratio_to_hand_written": {name: paired(name, "hand_written") for name in CONTENDERS},
            "skorch_over_ours": paired("skorch", "ldam_sklearn"),
            # The best any data path can do against plain skorch with the same compute.
            "skorch_over_hand_written": paired("skorch", "hand_written"),
            "all_seconds": {name: times[loss, name] for name in CONTENDERS},
        }
    meta = {
        "shape": [n_samples, n_features],
        "n_classes": n_classes,
        "batch_size": batch_size,
        "epochs": epochs,
        "rounds": rounds,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "precision": precision,
    }
    if len(losses) == 1:
        return meta | blocks[losses[0]]
    return meta | {"by_loss": blocks}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small data, one round")
    parser.add_argument("--loss", choices=LOSSES, nargs="+", default=["ce"])
    parser.add_argument(
        "--profile",
        choices=list(CONTENDERS),
        help="run this contender once (first --loss), for a profiler such as valgrind",
    )
    parser.add_argument("--epochs", type=int, default=2, help="with --profile")
    parser.add_argument("--n-samples", type=int, default=50_000, help="with --profile")
    args = parser.parse_args()
    if args.profile:
        X, y = make_data(args.n_samples, 50, 10)
        print(CONTENDERS[args.profile](X, y, args.epochs, 256, args.loss[0]))
        return
    kwargs = {"losses": tuple(args.loss)}
    result = run(n_samples=5_000, rounds=1, **kwargs) if args.quick else run(**kwargs)
    print(json.dumps(result, indent=2))
    blocks = result.get("by_loss", {args.loss[0]: result})
    for loss, block in blocks.items():
        ratio = block["ratio_to_hand_written"]["ldam_sklearn"]
        print(f"[{loss}] ldam_sklearn / hand-written loop: {ratio:.2f}x (target <= 1.15x)")
        print(
            f"[{loss}] plain skorch / ldam_sklearn:      {block['skorch_over_ours']:.2f}x "
            "(target >= 2x)"
        )


if __name__ == "__main__":
    main()
