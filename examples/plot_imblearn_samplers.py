"""
==========================================================
Re-sampling with imbalanced-learn versus LDAM-DRW's losses
==========================================================

imbalanced-learn's samplers fix class imbalance in the *data*;
:class:`~ldam_sklearn.LDAMDRWClassifier` fixes it in the *loss*. Both are
scikit-learn compatible, so they combine in an
:func:`imblearn.pipeline.make_pipeline`: the sampler re-balances the training
rows of each ``fit`` (and is skipped at prediction time), then the network
trains on them.

This example trains the same network behind no sampler,
:class:`~imblearn.over_sampling.RandomOverSampler`,
:class:`~imblearn.over_sampling.SMOTE` and
:class:`~imblearn.under_sampling.RandomUnderSampler`, with plain
cross-entropy, and compares them with LDAM-DRW on the original data, using
:func:`~imblearn.metrics.classification_report_imbalanced`.

Set ``LDAM_SKLEARN_QUICK=1`` for a smoke run (fewer epochs, less data).
"""

# %%
# An imbalanced three-class problem
# ---------------------------------
import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from imblearn.metrics import classification_report_imbalanced, geometric_mean_score
from imblearn.over_sampling import SMOTE, RandomOverSampler
from imblearn.pipeline import make_pipeline
from imblearn.under_sampling import RandomUnderSampler
from sklearn.datasets import make_classification
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from ldam_sklearn import LDAMDRWClassifier

QUICK = os.environ.get("LDAM_SKLEARN_QUICK") == "1"
EPOCHS = 5 if QUICK else 30
N_SAMPLES = 1000 if QUICK else 3000

X, y = make_classification(
    n_samples=N_SAMPLES,
    n_features=20,
    n_informative=8,
    n_classes=3,
    weights=[0.9, 0.08, 0.02],
    class_sep=1.0,
    random_state=0,
)
y = np.array(["common", "uncommon", "rare"])[y]
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
print(pd.Series(y_train).value_counts().to_string())

# %%
# One pipeline per strategy
# -------------------------
# ``loss="ce", schedule="none", recipe="paper"`` turns the estimator into a
# plain network trained with cross-entropy (the default recipe would also
# re-balance its predictions after training), so that the samplers alone do
# the balancing.


def network(**params):
    return LDAMDRWClassifier(
        max_epochs=EPOCHS, module__hidden_layer_sizes=(64,), random_state=0, **params
    )


plain = {"loss": "ce", "schedule": "none", "recipe": "paper"}
strategies = {
    "no sampler (CE)": make_pipeline(StandardScaler(), network(**plain)),
    "RandomOverSampler + CE": make_pipeline(
        StandardScaler(), RandomOverSampler(random_state=0), network(**plain)
    ),
    "SMOTE + CE": make_pipeline(StandardScaler(), SMOTE(random_state=0), network(**plain)),
    "RandomUnderSampler + CE": make_pipeline(
        StandardScaler(), RandomUnderSampler(random_state=0), network(**plain)
    ),
    "LDAM-DRW, no sampler": make_pipeline(StandardScaler(), network()),
}

rows = []
for name, pipe in strategies.items():
    pipe.fit(X_train, y_train)
    y_pred = pipe.predict(X_test)
    counts = dict(zip(pipe[-1].classes_, pipe[-1].class_counts_.tolist(), strict=True))
    rows.append(
        {
            "strategy": name,
            "balanced accuracy": balanced_accuracy_score(y_test, y_pred),
            "geometric mean": geometric_mean_score(y_test, y_pred),
            "trained on": counts,
        }
    )
    print(f"\n{name}\n" + classification_report_imbalanced(y_test, y_pred, zero_division=0))

results = pd.DataFrame(rows).set_index("strategy")
print(results.to_string())

# %%
# The network's ``class_counts_`` show what each sampler handed it: the
# over-samplers grow the minority classes to the majority's size, the
# under-sampler shrinks every class to the rarest one's.
fig, ax = plt.subplots(figsize=(7, 3.5))
results[["balanced accuracy", "geometric mean"]].plot.barh(ax=ax)
ax.set_xlim(0, 1)
ax.set_xlabel("score on the test set")
ax.set_ylabel("")
ax.set_title("Re-sampling the data versus re-weighting the loss")
fig.tight_layout()
