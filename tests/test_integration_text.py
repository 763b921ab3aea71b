"""Text pipelines: TF-IDF and hashing features (>= 100,000 columns), never densified.

The corpus is synthetic: "ham" documents are random words from a 400,000-word
vocabulary, "spam" documents (15 %) add a few cue words. Uniform sampling from
a large vocabulary gives a feature space of realistic width from few documents.
"""

import gc
import os
import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from _shared import per_estimator
from sklearn.feature_extraction.text import HashingVectorizer, TfidfVectorizer
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline

from ldam_sklearn import LDAMDRWClassifier

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Adam: plain SGD (the tabular default) barely moves the 100,000+ input
# weights of a bag-of-words model within a few epochs.
TEXT = {
    "max_epochs": 3,
    "module__hidden_layer_sizes": (16,),
    "optimizer": torch.optim.Adam,
    "lr": 1e-3,
    "random_state": 0,
}


def make_corpus(n_docs=2000, random_state=0, vocabulary=400_000, length=40, spam_fraction=0.15):
    rng = np.random.RandomState(random_state)
    spam = rng.rand(n_docs) < spam_fraction
    words = np.char.add("w", rng.randint(0, vocabulary, size=(n_docs, length)).astype(str))
    cues = np.char.add("offer", rng.randint(0, 20, size=(n_docs, 4)).astype(str))
    docs = [
        " ".join(doc) + (" " + " ".join(cue) if is_spam else "")
        for doc, cue, is_spam in zip(words, cues, spam, strict=True)
    ]
    return docs, np.where(spam, "spam", "ham")


def _rss_reader():
    try:
        import psutil
    except ImportError:
        if not os.path.exists("/proc/self/statm"):
            return None
        page = os.sysconf("SC_PAGE_SIZE")

        def read():
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * page

        return read
    process = psutil.Process()
    return lambda: process.memory_info().rss


class PeakRSSGrowth:
    """Peak growth of the resident set size inside a ``with`` block, in bytes.

    A thread samples the RSS every millisecond: densifying a matrix of
    hundreds of megabytes takes far longer than that, so it cannot slip by.
    """

    def __init__(self):
        self.read = _rss_reader()
        if self.read is None:
            pytest.skip("no way to read the resident set size on this platform")

    def __enter__(self):
        gc.collect()
        self.start = self.peak = self.read()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.read())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.read())
        self.growth = self.peak - self.start


@pytest.fixture(scope="module")
def corpus():
    docs, y = make_corpus()
    return train_test_split(docs, y, test_size=0.25, stratify=y, random_state=0)


@pytest.mark.parametrize(
    "vectorizer",
    [TfidfVectorizer(ngram_range=(1, 2)), HashingVectorizer(n_features=2**17)],
    ids=["tfidf", "hashing"],
)
def test_text_pipeline_learns_on_wide_sparse_features(vectorizer, corpus):
    docs_train, docs_test, y_train, y_test = corpus
    pipe = make_pipeline(vectorizer, LDAMDRWClassifier(**TEXT)).fit(docs_train, y_train)

    X_train = pipe[0].transform(docs_train)
    assert sp.issparse(X_train)
    assert X_train.shape[1] >= 100_000
    assert pipe[-1].n_features_in_ == pipe[-1].module_.body[0].in_features == X_train.shape[1]
    assert pipe.classes_.tolist() == ["ham", "spam"]
    proba = pipe.predict_proba(docs_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    # Chance is 0.5; the cue words are common, so TF-IDF down-weights them.
    assert balanced_accuracy_score(y_test, pipe.predict(docs_test)) > 0.8


@per_estimator
def test_fit_and_predict_on_sparse_text_stay_far_below_dense_size(Estimator, corpus):
    docs_train, _, y_train, _ = corpus
    X = HashingVectorizer(n_features=2**17).transform(docs_train).astype(np.float32)
    dense_bytes = X.shape[0] * X.shape[1] * 4

    # The first fit of a process loads PyTorch's kernels and lazily imported
    # modules (~150 MB, whatever the data): warm up on a few rows first.
    Estimator(**{**TEXT, "max_epochs": 1}).fit(X[:256], y_train[:256]).predict_proba(X[:256])
    clf = Estimator(**TEXT)
    with PeakRSSGrowth() as fit_memory:
        clf.fit(X, y_train)
    with PeakRSSGrowth() as predict_memory:
        proba = clf.predict_proba(X)
    assert proba.shape == (X.shape[0], 2)
    # The model itself (131,072 x 16 weights, their gradients and Adam's two
    # moments) is ~34 MB; a densified X would be ~790 MB.
    assert fit_memory.growth < dense_bytes / 4, (fit_memory.growth, dense_bytes)
    assert predict_memory.growth < dense_bytes / 4, (predict_memory.growth, dense_bytes)
