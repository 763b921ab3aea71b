"""
=====================================================
Long-tailed intent classification from raw text
=====================================================

Intent detection has many classes, and in real traffic a few intents are
common and most are rare. This example builds a long-tailed training set
the way CIFAR-10-LT is built (class ``i`` of ``C`` keeps
``n_max * rho ** (-i / (C - 1))`` rows, ``rho = 100``), trains
:class:`~ldam_sklearn.LDAMDRWClassifier` at its defaults behind a
:class:`~sklearn.feature_extraction.text.TfidfVectorizer`, and compares it
with a class-balanced logistic regression and with plain training (ERM) on
a balanced test set, class by class.

On sparse input the default recipe trains one hidden layer of 512 units
with dropout for a tenth of ``max_epochs`` and chooses a post-hoc logit
adjustment on held-out rows (see the class's ``recipe`` parameter).

The data are BANKING77 [1]_ (77 banking intents, columns ``text`` and
``category``) when the folder holding ``banking77_train.csv`` and
``banking77_test.csv`` is given as the first argument or in
``LDAM_SKLEARN_BANKING77``; otherwise a generated corpus of 30 intents
(each with its own cue words among shared filler words) stands in.

Set ``LDAM_SKLEARN_QUICK=1`` for a smoke run (a smaller generated corpus
and a short ERM budget).

.. [1] I. Casanueva, T. Temčinas, D. Gerz, M. Henderson and I. Vulić,
   "Efficient Intent Detection with Dual Sentence Encoders", NLP4ConvAI
   workshop, ACL 2020, arXiv:2003.04807.
"""

# %%
# The long-tailed training set
# ----------------------------
import os
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score
from sklearn.pipeline import make_pipeline

from ldam_sklearn import LDAMDRWClassifier
from ldam_sklearn.datasets import make_long_tailed

QUICK = os.environ.get("LDAM_SKLEARN_QUICK") == "1"
RHO = 100
FEW_SHOT = 20  # training rows below which a class counts as few-shot


def generated_intents(n_intents=30, n_per_intent=150, n_test=40, random_state=0):
    """Train and test frames of short utterances: 2 of 6 cue words plus filler."""
    rng = np.random.RandomState(random_state)

    def utterances(n):
        intents = np.repeat([f"intent_{i:02d}" for i in range(n_intents)], n)
        texts = []
        for intent in intents:
            cues = [f"{intent}_cue{j}" for j in rng.choice(6, size=2, replace=False)]
            filler = [f"w{k}" for k in rng.randint(0, 400, size=rng.randint(3, 9))]
            words = cues + filler
            rng.shuffle(words)
            texts.append(" ".join(words))
        return pd.DataFrame({"text": texts, "category": intents})

    return utterances(n_per_intent), utterances(n_test)


folder = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("LDAM_SKLEARN_BANKING77")
if folder:
    train = pd.read_csv(Path(folder) / "banking77_train.csv")
    test = pd.read_csv(Path(folder) / "banking77_test.csv")
else:
    train, test = generated_intents(n_intents=15 if QUICK else 30)

labels = train["category"].to_numpy()
classes, counts = np.unique(labels, return_counts=True)
# Which intents end up rare is drawn once. n_max is the largest class's
# count: a class with fewer rows than its target keeps all of them.
order = np.random.RandomState(0).permutation(classes)
X_train, y_train = make_long_tailed(
    train["text"].to_numpy(),
    labels,
    RHO,
    n_max=int(counts.max()),
    class_order=order,
    random_state=0,
)
X_test, y_test = test["text"].to_numpy(), test["category"].to_numpy()
train_counts = pd.Series(y_train).value_counts()
print(
    f"{len(y_train)} training rows in {len(train_counts)} classes, "
    f"{train_counts.max()} to {train_counts.min()} per class; "
    f"{(train_counts < FEW_SHOT).sum()} few-shot classes (< {FEW_SHOT} rows); "
    f"{len(y_test)} balanced test rows"
)

# %%
# Three pipelines from raw strings
# --------------------------------
# The same vectorizer for everyone. "CE" is the network trained with
# plain cross-entropy and no re-weighting, but in the same default recipe,
# post-hoc adjustment included; "CE, paper recipe" trains it as Cao et al.
# train their baseline, without any adjustment.
pipelines = {
    "LDAM-DRW (default)": LDAMDRWClassifier(random_state=0),
    "LR, class_weight='balanced'": LogisticRegression(class_weight="balanced", max_iter=1000),
    "CE": LDAMDRWClassifier(loss="ce", schedule="none", random_state=0),
    "CE, paper recipe": LDAMDRWClassifier(
        loss="ce", schedule="none", recipe="paper", max_epochs=10 if QUICK else 30, random_state=0
    ),
}
few_shot = np.isin(y_test, train_counts.index[train_counts < FEW_SHOT])
rows, recalls = [], {}
for name, classifier in pipelines.items():
    pipe = make_pipeline(TfidfVectorizer(), classifier)
    start = time.perf_counter()
    pipe.fit(X_train, y_train)
    seconds = time.perf_counter() - start
    y_pred = pipe.predict(X_test)
    recalls[name] = recall_score(y_test, y_pred, labels=train_counts.index, average=None)
    rows.append(
        {
            "pipeline": name,
            "macro-F1": f1_score(y_test, y_pred, average="macro"),
            "balanced accuracy": balanced_accuracy_score(y_test, y_pred),
            "few-shot accuracy": np.mean(y_pred[few_shot] == y_test[few_shot]),
            "fit seconds": seconds,
        }
    )
print(pd.DataFrame(rows).set_index("pipeline").round(3).to_string())

# %%
# Recall of each class, ordered by its training frequency
# -------------------------------------------------------
# The head classes are recognised by every method; the difference is in the
# tail, where the paper's plain training rarely predicts a class it has seen
# a few times. On BANKING77-LT (2,892 rows, about 15 s for the whole script
# on one core) the default LDAM-DRW scores 0.719 macro-F1 against 0.680 for
# the balanced logistic regression and 0.637 for the paper's recipe, and
# cross-entropy in the default recipe 0.728: on text most of the gain comes
# from the recipe (a short training budget and the post-hoc adjustment)
# rather than from the LDAM margins (see the Text section of the quality
# page).
fig, ax = plt.subplots(figsize=(9, 4))
positions = np.arange(len(train_counts))
ax.bar(
    positions,
    train_counts.to_numpy() / train_counts.max(),
    color="0.85",
    label="training rows / largest class",
)
for name, recall in recalls.items():
    smoothed = pd.Series(recall).rolling(5, center=True, min_periods=1).mean()
    ax.plot(positions, smoothed, label=name)
ax.set_xlabel("class, from the most to the least frequent in training")
ax.set_ylabel("test recall (moving mean of 5 classes)")
ax.set_ylim(0, 1.05)
ax.legend(loc="lower left", fontsize=8)
ax.set_title(f"Long-tailed training set (rho={RHO}), balanced test set")
fig.tight_layout()
