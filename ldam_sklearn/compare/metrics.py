"""Test-set scores of one fitted model, with the many/medium/few-shot split."""

from __future__ import annotations

from typing import Any

import numpy as np
from imblearn.metrics import geometric_mean_score
from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score

__all__ = ["FEW_SHOT_MAX", "MANY_SHOT_MIN", "SCORES", "score", "shot_groups"]

#: Classes with more training samples than this are "many-shot" ...
MANY_SHOT_MIN = 100
#: ... and with fewer than this "few-shot"; the rest are "medium-shot"
#: (the split of Liu et al. 2019, used by most long-tail papers).
FEW_SHOT_MAX = 20

#: The scores of each run, besides per-class recall and fit time.
SCORES = ("balanced_accuracy", "macro_f1", "g_mean", "many_shot", "medium_shot", "few_shot")


def shot_groups(class_counts: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean masks of the many-, medium- and few-shot classes.

    The split of Liu et al. [1]_, the usual one in long-tail evaluation (see
    Kang et al. [2]_).

    Parameters
    ----------
    class_counts : array-like of shape (n_classes,)
        Training samples per class.

    Returns
    -------
    groups : dict of str to ndarray of bool
        ``many_shot`` (more than :data:`MANY_SHOT_MIN` samples), ``medium_shot``
        and ``few_shot`` (fewer than :data:`FEW_SHOT_MAX`), each of shape
        (n_classes,).

    References
    ----------
    .. [1] Z. Liu, Z. Miao, X. Zhan, J. Wang, B. Gong and S. X. Yu,
       "Large-Scale Long-Tailed Recognition in an Open World", CVPR 2019,
       arXiv:1904.05160.
    .. [2] B. Kang, S. Xie, M. Rohrbach, Z. Yan, A. Gordo, J. Feng and
       Y. Kalantidis, "Decoupling Representation and Classifier for
       Long-Tailed Recognition", ICLR 2020, arXiv:1910.09217.

    Examples
    --------
    >>> {k: v.tolist() for k, v in shot_groups(np.array([389, 50, 3])).items()}
    {'many_shot': [True, False, False], 'medium_shot': [False, True, False], \
'few_shot': [False, False, True]}
    """
    counts = np.asarray(class_counts)
    return {
        "many_shot": counts > MANY_SHOT_MIN,
        "medium_shot": (counts >= FEW_SHOT_MAX) & (counts <= MANY_SHOT_MIN),
        "few_shot": counts < FEW_SHOT_MAX,
    }


def score(y_true, y_pred, classes: np.ndarray, class_counts: np.ndarray) -> dict[str, Any]:
    """Test-set scores of one fitted model.

    Balanced accuracy [1]_, macro-F1, the G-mean of Kubat and Matwin [2]_
    (computed by imbalanced-learn [3]_) and the mean recall of the
    many-, medium- and few-shot classes of :func:`shot_groups` [4]_.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
        Test labels and predictions.
    classes : ndarray of shape (n_classes,)
        The training classes, in the order of ``per_class_recall``.
    class_counts : ndarray of shape (n_classes,)
        Training samples per class, which decide the shot groups.

    Returns
    -------
    scores : dict
        ``balanced_accuracy``, ``macro_f1``, ``g_mean`` (geometric mean of the
        per-class recalls), ``many_shot`` / ``medium_shot`` / ``few_shot``
        (mean recall of those classes, None when there are none) and
        ``per_class_recall`` (in the order of ``classes``).

    References
    ----------
    .. [1] K. H. Brodersen, C. S. Ong, K. E. Stephan and J. M. Buhmann, "The
       balanced accuracy and its posterior distribution", ICPR 2010,
       pp. 3121-3124.
    .. [2] M. Kubat and S. Matwin, "Addressing the Curse of Imbalanced
       Training Sets: One-Sided Selection", ICML 1997, pp. 179-186.
    .. [3] G. Lemaître, F. Nogueira and C. K. Aridas, "Imbalanced-learn: A
       Python Toolbox to Tackle the Curse of Imbalanced Datasets in Machine
       Learning", JMLR 18(17), 2017.
    .. [4] B. Kang, S. Xie, M. Rohrbach, Z. Yan, A. Gordo, J. Feng and
       Y. Kalantidis, "Decoupling Representation and Classifier for
       Long-Tailed Recognition", ICLR 2020, arXiv:1910.09217.

    Examples
    --------
    >>> import numpy as np
    >>> from ldam_sklearn.compare import score
    >>> scores = score(
    ...     [0, 0, 1, 1], [0, 1, 1, 1], classes=np.array([0, 1]), class_counts=np.array([150, 10])
    ... )
    >>> sorted(scores)
    ['balanced_accuracy', 'few_shot', 'g_mean', 'macro_f1', 'many_shot', \
'medium_shot', 'per_class_recall']
    >>> scores["balanced_accuracy"], scores["per_class_recall"], scores["medium_shot"]
    (0.75, [0.5, 1.0], None)
    """
    recall = recall_score(y_true, y_pred, labels=classes, average=None, zero_division=0.0)
    scores = {
        "balanced_accuracy": float(balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(
            f1_score(y_true, y_pred, labels=classes, average="macro", zero_division=0.0)
        ),
        "g_mean": float(geometric_mean_score(y_true, y_pred, labels=classes)),
    }
    for group, mask in shot_groups(class_counts).items():
        scores[group] = float(recall[mask].mean()) if mask.any() else None
    scores["per_class_recall"] = recall.tolist()
    return scores
