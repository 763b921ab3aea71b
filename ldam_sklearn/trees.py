"""Gradient-boosted trees cross-fitted beside the packed network, for ``tree_blend``."""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier

__all__ = ["fit_tree_members", "tree_log_proba"]


def fit_tree_members(
    X: np.ndarray,
    labels: np.ndarray,
    sample_weight: np.ndarray | None,
    folds: np.ndarray,
    n_members: int,
    random_state,
) -> tuple[list[HistGradientBoostingClassifier], np.ndarray]:
    """A balanced ``HistGradientBoostingClassifier`` per fold; their out-of-fold log-proba.

    Member ``m`` trains on the rows whose fold is not ``m`` (rows of fold
    -1 train every member), as the packed network's members do, so each
    row of fold ``m`` is scored by a member that did not see it.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Dense training data.
    labels : ndarray of shape (n_samples,)
        Class indices ``0 .. n_classes - 1``.
    sample_weight : ndarray of shape (n_samples,) or None
        Per-row weights, on top of the balanced class weights.
    folds : ndarray of shape (n_samples,)
        Each row's fold, as from ``posthoc.member_folds``.
    n_members : int
        Number of members, one per fold.
    random_state : int, RandomState instance or None
        Seeds each member (its early-stopping split on large data).

    Returns
    -------
    members : list of HistGradientBoostingClassifier
    out_of_fold : ndarray of shape (n_samples, n_classes)
        Each row's log-probabilities from the member of its fold; rows of
        fold -1 get the members' mean.

    References
    ----------
    .. [1] scikit-learn documentation, ``sklearn.ensemble.HistGradientBoostingClassifier``,
       https://scikit-learn.org/stable/modules/generated/sklearn.ensemble.HistGradientBoostingClassifier.html.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.r_[0.0:100, 200:300].reshape(-1, 1)
    >>> labels, folds = (X[:, 0] > 150).astype(int), np.arange(200) % 2
    >>> members, out_of_fold = fit_tree_members(X, labels, None, folds, 2, random_state=0)
    >>> len(members), float((out_of_fold.argmax(axis=1) == labels).mean())
    (2, 1.0)
    """
    members = []
    for member in range(n_members):
        rows = folds != member
        tree = HistGradientBoostingClassifier(class_weight="balanced", random_state=random_state)
        weights = None if sample_weight is None else sample_weight[rows]
        members.append(tree.fit(X[rows], labels[rows], sample_weight=weights))
    each = np.stack([_log_proba(tree, X) for tree in members])
    out_of_fold = each.mean(axis=0)
    held = folds >= 0
    out_of_fold[held] = each[folds[held], np.flatnonzero(held)]
    return members, out_of_fold


def tree_log_proba(members: list[HistGradientBoostingClassifier], X: np.ndarray) -> np.ndarray:
    """The members' mean log-probability of each class, as the network's members are averaged.

    Parameters
    ----------
    members : list of HistGradientBoostingClassifier
        Fitted members, as from ``fit_tree_members``.
    X : ndarray of shape (n_samples, n_features)
        Dense data.

    Returns
    -------
    log_proba : ndarray of shape (n_samples, n_classes)

    References
    ----------
    .. [1] scikit-learn documentation, ``sklearn.ensemble.HistGradientBoostingClassifier``,
       https://scikit-learn.org/stable/modules/generated/sklearn.ensemble.HistGradientBoostingClassifier.html.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.r_[0.0:100, 200:300].reshape(-1, 1)
    >>> labels, folds = (X[:, 0] > 150).astype(int), np.arange(200) % 2
    >>> members, _ = fit_tree_members(X, labels, None, folds, 2, random_state=0)
    >>> tree_log_proba(members, X[[0, -1]]).argmax(axis=1).tolist()
    [0, 1]
    """
    return np.mean([_log_proba(tree, X) for tree in members], axis=0)


def _log_proba(tree: HistGradientBoostingClassifier, X: np.ndarray) -> np.ndarray:
    # Every member saw every class (member_folds spreads a class over
    # different folds), so the columns are the classes' indices.
    return np.log(np.maximum(tree.predict_proba(X), np.finfo(np.float64).tiny))
