import numpy as np
import pytest
import torch
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


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread for a module of tiny networks.

    With several threads, OpenMP synchronisation dominates each step of a
    16-unit network (and on a busy 2-core machine makes it ~30x slower).
    Worker processes are unaffected: joblib and Dask set their own limits.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
