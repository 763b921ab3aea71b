"""
===============================================
Spam filtering on sparse TF-IDF and hashed text
===============================================

Text features are wide and sparse: a bag of words and word pairs easily has
more than 100,000 columns, of which a message uses a few dozen.
:class:`~ldam_sklearn.LDAMDRWClassifier` takes SciPy sparse matrices as they
are: the CSR matrix stays on the host and only each mini-batch becomes a
(sparse) torch tensor, so the dense matrix -- gigabytes here -- never exists.

Two pipelines are compared, one with
:class:`~sklearn.feature_extraction.text.TfidfVectorizer` and one with the
stateless :class:`~sklearn.feature_extraction.text.HashingVectorizer`.

The corpus is synthetic by default (ham: random words; spam, 15 %: random
words plus a few "cue" words, which also turn up in some ham). To use the SMS
Spam Collection instead, pass the path of a CSV file with ``label`` and
``text`` columns as the first argument or in ``LDAM_SKLEARN_SMS_SPAM``.

Set ``LDAM_SKLEARN_QUICK=1`` for a smoke run (fewer documents and epochs).
"""

# %%
# The corpus
# ----------
import os
import sys
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from imblearn.metrics import classification_report_imbalanced
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from ldam_sklearn import LDAMDRWClassifier

QUICK = os.environ.get("LDAM_SKLEARN_QUICK") == "1"
N_DOCS = 1500 if QUICK else 6000
EPOCHS = 2 if QUICK else 5


def synthetic_corpus(n_docs, random_state=0, vocabulary=300_000, n_cues=30):
    """Ham: 10-40 random words. Spam: the same plus 2-4 cue words."""
    rng = np.random.RandomState(random_state)
    spam = rng.rand(n_docs) < 0.15
    docs = []
    for is_spam in spam:
        words = [f"w{i}" for i in rng.randint(0, vocabulary, size=rng.randint(10, 41))]
        n_cue_words = rng.randint(2, 5) if is_spam else int(rng.rand() < 0.2)
        words += [f"cue{i}" for i in rng.randint(0, n_cues, size=n_cue_words)]
        rng.shuffle(words)
        docs.append(" ".join(words))
    return docs, np.where(spam, "spam", "ham")


path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("LDAM_SKLEARN_SMS_SPAM")
if path:
    frame = pd.read_csv(path)
    docs, labels = frame["text"].astype(str).tolist(), frame["label"].to_numpy()
    if QUICK:
        docs, labels = docs[:N_DOCS], labels[:N_DOCS]
else:
    docs, labels = synthetic_corpus(N_DOCS)
docs_train, docs_test, y_train, y_test = train_test_split(
    docs, labels, test_size=0.25, stratify=labels, random_state=0
)
print(f"{len(docs_train)} training documents;", pd.Series(y_train).value_counts().to_dict())

# %%
# Two pipelines
# -------------
# A bag-of-words network has one input weight per feature and hidden unit.
# Adam moves them much faster than the SGD recipe the estimator uses by
# default for tabular data, so it is chosen here with ``optimizer=``; larger
# batches mean fewer updates of those 3-4 million weights per epoch.


def network():
    return LDAMDRWClassifier(
        max_epochs=EPOCHS,
        module__hidden_layer_sizes=(16,),
        optimizer=torch.optim.Adam,
        lr=3e-3,
        batch_size=256,
        random_state=0,
    )


pipelines = {
    "TF-IDF (words and word pairs)": make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True), network()
    ),
    "hashing, 2**18 columns": make_pipeline(
        HashingVectorizer(n_features=2**18, ngram_range=(1, 2), alternate_sign=False),
        network(),
    ),
}

rows = []
for name, pipe in pipelines.items():
    start = time.perf_counter()
    pipe.fit(docs_train, y_train)
    seconds = time.perf_counter() - start
    X_train = pipe[0].transform(docs_train)
    y_pred = pipe.predict(docs_test)
    sparse_mb = (X_train.data.nbytes + X_train.indices.nbytes + X_train.indptr.nbytes) / 1e6
    rows.append(
        {
            "pipeline": name,
            "features": X_train.shape[1],
            "non-zeros per row": X_train.nnz / X_train.shape[0],
            "sparse MB": sparse_mb,
            "dense MB (never built)": X_train.shape[0] * X_train.shape[1] * 4 / 1e6,
            "fit seconds": seconds,
            "balanced accuracy": balanced_accuracy_score(y_test, y_pred),
        }
    )
    print(f"\n{name}\n" + classification_report_imbalanced(y_test, y_pred, zero_division=0))

results = pd.DataFrame(rows).set_index("pipeline")
print(results.to_string(float_format="{:,.2f}".format))

# %%
# Training curves
# ---------------
# ``history`` records the training loss and the balanced accuracy of each
# epoch's batches.
fig, ax = plt.subplots(figsize=(6, 3))
for name, pipe in pipelines.items():
    history = pipe[-1].history
    ax.plot(range(1, len(history) + 1), history[:, "train_bacc"], marker="o", label=name)
ax.set_xlabel("epoch")
ax.set_ylabel("training balanced accuracy")
ax.set_ylim(0.4, 1.02)
ax.legend()
fig.tight_layout()
