"""What the integration tests share: a fast budget, the estimators and their data."""

import pytest
from sklearn.datasets import make_classification

from ldam_sklearn.base import BaseNetClassifier
from ldam_sklearn.utils.discovery import all_estimators

#: Three epochs of a 16-unit network: enough to learn the separable data below.
FAST = {
    "max_epochs": 3,
    "batch_size": 32,
    "module__hidden_layer_sizes": (16,),
    "random_state": 0,
}
#: The network estimators; the ensemble wrapper has its own tests (test_ensemble.py).
ESTIMATORS = [
    Estimator for _, Estimator in all_estimators() if issubclass(Estimator, BaseNetClassifier)
]
per_estimator = pytest.mark.parametrize(
    "Estimator", ESTIMATORS, ids=[Estimator.__name__ for Estimator in ESTIMATORS]
)


def make_data(n_samples=300, random_state=0, *, weights=(0.7, 0.2, 0.1)):
    """Three separable, imbalanced classes (70/20/10 % by default), 8 features."""
    return make_classification(
        n_samples=n_samples,
        n_features=8,
        n_informative=5,
        n_redundant=0,
        n_classes=3,
        weights=list(weights),
        class_sep=2.0,
        random_state=random_state,
    )
