"""
=================================================================
Tuning LDAM-DRW with GridSearchCV, RandomizedSearchCV and friends
=================================================================

:class:`~ldam_sklearn.LDAMDRWClassifier` is an ordinary scikit-learn
classifier, so the ablation table of Cao et al. (2019) -- cross-entropy or
LDAM loss, with or without deferred re-weighting (DRW) -- is a single
:class:`~sklearn.model_selection.GridSearchCV`, run in two worker processes
with ``n_jobs=2``. A :class:`~sklearn.model_selection.RandomizedSearchCV`
then tunes the optimizer (``optimizer__...``) and the network
(``module__...``), and :func:`~sklearn.model_selection.cross_validate`
measures the winner.

The data are generated: five overlapping classes whose frequencies fall
geometrically (imbalance ratio 20, a long tail as in CIFAR-10-LT), with a
stratified test set held out and scored by balanced accuracy.

Set ``LDAM_SKLEARN_QUICK=1`` for a smoke run (fewer epochs and candidates).
"""

# %%
# A long-tailed data set
# ----------------------
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy.stats import loguniform
from sklearn.datasets import make_classification
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import (
    GridSearchCV,
    RandomizedSearchCV,
    StratifiedKFold,
    cross_validate,
    train_test_split,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ldam_sklearn import LDAMDRWClassifier

QUICK = os.environ.get("LDAM_SKLEARN_QUICK") == "1"
EPOCHS = 4 if QUICK else 30
N_SAMPLES = 600 if QUICK else 2000
N_ITER = 2 if QUICK else 5

frequencies = 0.05 ** (np.arange(5) / 4)
X, y = make_classification(
    n_samples=N_SAMPLES,
    n_features=20,
    n_informative=10,
    n_classes=5,
    weights=frequencies / frequencies.sum(),
    class_sep=1.0,
    random_state=0,
)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)
print("training samples per class:", np.bincount(y_train).tolist())

# %%
# The paper's ablation as one grid search
# ---------------------------------------
# The estimator sits in a :class:`~sklearn.pipeline.Pipeline` behind a
# scaler; its parameters are addressed with the step name as prefix.
# ``scoring="balanced_accuracy"`` weighs every class alike, which is what the
# long tail calls for. ``n_jobs=2`` fits candidates in two processes; joblib
# gives each process its share of the cores, so PyTorch does not
# oversubscribe them.
pipe = make_pipeline(
    StandardScaler(),
    LDAMDRWClassifier(max_epochs=EPOCHS, module__hidden_layer_sizes=(64,), random_state=0),
)
cv = StratifiedKFold(3, shuffle=True, random_state=0)
grid = GridSearchCV(
    pipe,
    {
        "ldamdrwclassifier__loss": ["ce", "ldam"],
        "ldamdrwclassifier__schedule": ["none", "drw"],
    },
    scoring="balanced_accuracy",
    cv=cv,
    n_jobs=2,
)
start = time.perf_counter()
grid.fit(X_train, y_train)
print(f"grid search: {time.perf_counter() - start:.1f} s")

table = pd.DataFrame(grid.cv_results_["params"]).rename(columns=lambda c: c.split("__")[-1])
table["balanced accuracy"] = grid.cv_results_["mean_test_score"]
table["std"] = grid.cv_results_["std_test_score"]
print(table.to_string(index=False))

# %%
# Plot the four cells of the table.
fig, ax = plt.subplots(figsize=(6, 3))
labels = [f"{row.loss} + {row.schedule}" for row in table.itertuples()]
ax.barh(labels, table["balanced accuracy"], xerr=table["std"], color="tab:blue")
ax.set_xlabel("cross-validated balanced accuracy")
ax.set_xlim(0, 1)
ax.set_title("Loss x schedule on a long-tailed problem")
fig.tight_layout()

# %%
# Random search over optimizer and network parameters
# ---------------------------------------------------
# Any skorch parameter can be searched: ``optimizer__weight_decay`` goes to
# the optimizer, ``module__hidden_layer_sizes`` to the network.
best_loss = grid.best_params_["ldamdrwclassifier__loss"]
best_schedule = grid.best_params_["ldamdrwclassifier__schedule"]
pipe.set_params(ldamdrwclassifier__loss=best_loss, ldamdrwclassifier__schedule=best_schedule)
search = RandomizedSearchCV(
    pipe,
    {
        "ldamdrwclassifier__lr": loguniform(0.02, 0.3),
        "ldamdrwclassifier__optimizer__weight_decay": loguniform(1e-5, 1e-3),
        "ldamdrwclassifier__module__hidden_layer_sizes": [(32,), (64,), (128,)],
    },
    n_iter=N_ITER,
    scoring="balanced_accuracy",
    cv=cv,
    n_jobs=2,
    random_state=0,
)
search.fit(X_train, y_train)
best = {
    name.split("__", 1)[1]: float(f"{value:.3g}") if isinstance(value, float) else value
    for name, value in search.best_params_.items()
}
print("best parameters:", best)
print(f"best cross-validated balanced accuracy: {search.best_score_:.3f}")

# %%
# Cross-validate the winner and score it on the test set
# -------------------------------------------------------
scores = cross_validate(
    search.best_estimator_,
    X_train,
    y_train,
    cv=cv,
    scoring=["balanced_accuracy", "accuracy"],
    n_jobs=2,
)
print(
    f"balanced accuracy {scores['test_balanced_accuracy'].mean():.3f} "
    f"+/- {scores['test_balanced_accuracy'].std():.3f}, "
    f"accuracy {scores['test_accuracy'].mean():.3f}"
)
test_score = balanced_accuracy_score(y_test, search.best_estimator_.predict(X_test))
print(f"balanced accuracy on the held-out test set: {test_score:.3f}")
