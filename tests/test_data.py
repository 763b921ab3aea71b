import numpy as np
import pytest
import torch

from ldam_sklearn import LDAMDRWClassifier
from ldam_sklearn.data import ArrayDataset, BatchIterator, batch_starts


def _sizes(iterator):
    return [len(y) for _, y in iterator]


@pytest.mark.parametrize(
    ("n_rows", "batch_size", "sizes"),
    [
        (769, 128, [128] * 5 + [129]),
        (831, 128, [128] * 5 + [191]),
        (832, 128, [128] * 6 + [64]),
        (768, 128, [128] * 6),
        (5, 128, [5]),
    ],
)
def test_small_last_batch_joins_the_one_before(n_rows, batch_size, sizes):
    ds = ArrayDataset(np.zeros((n_rows, 2), dtype=np.float32), np.zeros(n_rows))
    iterator = BatchIterator(ds, batch_size=batch_size, shuffle=True)
    assert _sizes(iterator) == sizes
    assert len(iterator) == len(sizes) == len(batch_starts(n_rows, batch_size))


def test_no_rows_no_batches():
    assert list(batch_starts(0, 128)) == []


def test_every_row_once_per_epoch_with_merged_batches():
    ds = ArrayDataset(np.arange(21, dtype=np.float32)[:, None], np.arange(21))
    rows = torch.cat([y for _, y in BatchIterator(ds, batch_size=8, shuffle=True)])
    assert sorted(rows.tolist()) == list(range(21))


def test_merge_last_off_and_padding_keep_the_short_batch():
    ds = ArrayDataset(np.zeros((9, 2), dtype=np.float32), np.zeros(9))
    assert _sizes(BatchIterator(ds, batch_size=4, merge_last=False)) == [4, 4, 1]
    padded = BatchIterator(ds, batch_size=4, pad_last=True)
    assert [len(X) for X, _ in padded] == [4, 4, 4]
    assert [len(y) for _, y in padded] == [4, 4, 1]


def test_fit_takes_no_step_on_a_one_row_batch():
    # 129 rows at batch 128: one step per epoch on all rows, not a second on one row.
    X, y = np.random.default_rng(0).normal(size=(129, 3)), np.arange(129) % 2
    clf = LDAMDRWClassifier(max_epochs=2, recipe="paper", random_state=0)
    clf.fit(X, y)
    sizes = [batch["train_batch_size"] for epoch in clf.history for batch in epoch["batches"]]
    assert sizes == [129, 129]


def test_the_estimator_can_keep_the_short_batch():
    X, y = np.random.default_rng(0).normal(size=(129, 3)), np.arange(129) % 2
    clf = LDAMDRWClassifier(
        max_epochs=1, recipe="paper", iterator_train__merge_last=False, random_state=0
    ).fit(X, y)
    assert [batch["train_batch_size"] for batch in clf.history[-1, "batches"]] == [128, 1]
