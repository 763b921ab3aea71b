import numpy as np
import pytest
from sklearn.datasets import make_classification


@pytest.fixture
def imbalanced_data():
    """Three classes, 80/15/5 %, 20 features: small enough for fast fits."""
    X, y = make_classification(
        n_samples=600,
        n_features=20,
        n_informative=10,
        n_classes=3,
        weights=[0.8, 0.15, 0.05],
        random_state=0,
    )
    return X.astype(np.float64), y
