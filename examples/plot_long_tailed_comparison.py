"""
================================================================
Long-tailed comparison: per-class recall against class frequency
================================================================

The main job of the package, as ``ldam-sklearn compare`` runs it, here from
Python with :func:`ldam_sklearn.compare.run_comparison`.

The data are MNIST-1D (generated locally, nothing is downloaded) made
long-tailed the way Cao et al. (2019) build CIFAR-10-LT: class ``i`` of 10
keeps ``n_max * 100 ** (-i / 9)`` training samples, so the most frequent
class has 100 times the samples of the rarest. The test set stays (roughly)
balanced, so every class counts alike in the scores.

Every neural method trains the same MLP for the same number of epochs; only
the loss, the schedule or the sampler in front of it differs. A method that
favours the frequent classes shows as a recall curve that climbs from left
(rare classes) to right (frequent ones); a remedy for the imbalance flattens
it.

Set ``LDAM_SKLEARN_QUICK=1`` for a smoke run (5 epochs).
"""

# %%
# The data
# --------
# :func:`~ldam_sklearn.compare.load_generated` returns the long-tailed
# training set, the test set and the preprocessing (a ``StandardScaler``)
# that every method's pipeline fits on the training rows only.
import os

import matplotlib.pyplot as plt
import numpy as np

from ldam_sklearn.compare import (
    METHODS,
    NetSettings,
    format_table,
    load_generated,
    run_comparison,
)

QUICK = os.environ.get("LDAM_SKLEARN_QUICK") == "1"
EPOCHS = 5 if QUICK else 100

data = load_generated("mnist1d", imbalance_ratio=100)
train_counts = np.bincount(data.y_train)
print(data.description)
print("training samples per class:", train_counts.tolist())
print("test samples per class:    ", np.bincount(data.y_test).tolist())

# %%
# The methods
# -----------
# The names are keys of :data:`ldam_sklearn.compare.METHODS`: plain ERM
# (cross-entropy), class-weighted cross-entropy, random over-sampling from
# imbalanced-learn, the focal, logit-adjusted and LDAM losses, the deferred
# schedules (DRW, DRS) and, as non-neural references, a class-weighted
# logistic regression.
methods = [
    "erm",
    "class_weighted",
    "ros",
    "focal",
    "logit_adjusted",
    "ldam",
    "ce_drw",
    "ce_drs",
    "ldam_drw",
    "logreg",
]
for name in methods:
    print(f"{name:>15}: {METHODS[name].label}")

# %%
# Fit and score
# -------------
# ``run_comparison`` fits ``preprocessing -> [sampler] -> classifier`` for
# each method and returns a JSON-ready report; ``format_table`` prints it.
# The MLP has two hidden layers of 256 units; one seed here (``seeds=3``
# gives mean and standard deviation).
settings = NetSettings(epochs=EPOCHS)
report = run_comparison(data, methods, settings=settings, seeds=1, progress=False)
print(format_table(report))

# %%
# Recall against training frequency
# ---------------------------------
# One line per method, classes sorted by their number of training samples on
# a log axis, so the tail is on the left. Balanced accuracy is the mean
# height of a line.
ran = {name: entry for name, entry in report["methods"].items() if entry["status"] == "ok"}
counts = np.asarray(report["data"]["class_counts_train"])
order = np.argsort(counts, kind="stable")
highlight = {"erm", "ros", "logit_adjusted", "ldam_drw"}

fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
for i, (name, entry) in enumerate(ran.items()):
    recall = np.asarray(entry["summary"]["per_class_recall"])[order]
    ax.plot(
        counts[order],
        recall,
        marker="os^vD<>phX"[i % 10],
        linewidth=2.5 if name in highlight else 1.0,
        alpha=1.0 if name in highlight else 0.45,
        label=entry["label"],
    )
ax.set_xscale("log")
ax.set_ylim(-0.03, 1.03)
ax.set_xlabel("training samples of the class (log scale)")
ax.set_ylabel("test recall of the class")
ax.set_title("Per-class recall on long-tailed MNIST-1D (imbalance ratio 100)")
ax.grid(True, which="both", alpha=0.3)
ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)

# %%
# Head, middle and tail
# ---------------------
# The same numbers grouped: mean recall of the many-shot (more than 100
# training samples), medium-shot (20 to 100) and few-shot (fewer than 20)
# classes. Re-balancing methods trade a little head recall for tail recall.
groups = ["many_shot", "medium_shot", "few_shot"]
labels = [entry["label"] for entry in ran.values()]
values = np.array([[entry["summary"][g]["mean"] for g in groups] for entry in ran.values()])

fig, ax = plt.subplots(figsize=(8, 4), layout="constrained")
width = 0.27
positions = np.arange(len(labels))
for j, group in enumerate(groups):
    ax.bar(positions + (j - 1) * width, values[:, j], width, label=group.replace("_", "-"))
ax.set_xticks(positions, labels, rotation=35, ha="right", fontsize=8)
ax.set_ylabel("mean test recall")
ax.set_ylim(0, 1)
ax.legend(title="classes")
ax.set_title("Recall by class frequency group")

# %%
# Why LDAM-DRW can tie LDAM: read the history
# -------------------------------------------
# Deferred re-weighting can only change what the loss still sees. Fit the
# LDAM-DRW network of the comparison once more, directly, and plot its
# training history: ``train_loss`` and ``train_bacc`` (balanced accuracy of
# the epoch's batches) per epoch, with the epoch where the class-balanced
# weights switch on (``balancing`` turns from ``"none"`` to ``"reweight"``).
# If the network has already fitted every training sample by then -- loss
# near zero, training balanced accuracy 1.0 -- the weights multiply
# near-zero losses and the DRW phase changes little. Less epochs before the
# switch, a smaller network, weight decay or more data leave it something to
# do (see :ref:`sphx_glr_auto_examples_plot_ablation.py`, where it does).
import torch  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402

from ldam_sklearn import LDAMDRWClassifier  # noqa: E402

pipe = make_pipeline(
    clone(data.preprocessor),
    LDAMDRWClassifier(
        loss="ldam", schedule="drw", recipe="paper", **settings.estimator_params(seed=0)
    ),
)
threads = torch.get_num_threads()
torch.set_num_threads(1)  # as run_comparison does: small networks, one thread
pipe.fit(data.X_train, data.y_train)
torch.set_num_threads(threads)
history = pipe[-1].history
balancing = history[:, "balancing"]
switch = balancing.index("reweight") + 1 if "reweight" in balancing else None
epochs = np.arange(1, len(history) + 1)

fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
ax.plot(epochs, history[:, "train_loss"], color="tab:blue", label="train_loss")
ax.set_yscale("log")
ax.set_xlabel("epoch")
ax.set_ylabel("training loss (log scale)")
ax2 = ax.twinx()
ax2.plot(epochs, history[:, "train_bacc"], color="tab:orange", label="train_bacc")
ax2.set_ylim(0, 1.05)
ax2.set_ylabel("training balanced accuracy")
if switch is not None:
    ax.axvline(switch, color="black", linestyle=":", label="DRW switches on")
fig.legend(loc="center right", bbox_to_anchor=(0.85, 0.5), fontsize=8)
ax.set_title("LDAM-DRW training history")
if switch is not None:
    print(
        f"DRW switches on at epoch {switch}; there the training loss is "
        f"{history[switch - 2, 'train_loss']:.4f} and the training balanced accuracy "
        f"{history[switch - 2, 'train_bacc']:.3f}"
    )

# %%
# From the command line
# ---------------------
# ``ldam-sklearn compare --methods erm,ldam_drw,logreg --epochs 100`` runs
# the same comparison, prints the same table and writes the report and its
# picture (:func:`~ldam_sklearn.compare.plot_per_class_recall`: the methods
# ranked by balanced accuracy, and the best ones' recall of each class) to
# ``./ldam_sklearn_results/``. ``--csv``, ``--imblearn`` and
# ``--text-column`` run it on your own data.
