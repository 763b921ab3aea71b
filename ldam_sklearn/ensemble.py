"""Cross-fitted ensembles whose post-hoc logit adjustment is chosen out of fold."""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import scipy.sparse as sp
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import _safe_indexing, check_random_state, get_tags
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.parallel import Parallel, delayed
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)

from .callbacks import warn_single_class
from .ldam_drw import _ROWS_PER_FEATURE, LDAMDRWClassifier
from .posthoc import TAU_SCORINGS, best_posthoc_tau, member_folds
from .utils.validation import check_bool, check_choice

__all__ = ["CrossFitEnsembleClassifier"]

#: Epochs of each member of the default ensemble: five members of 40 epochs
#: cost about what one 100-epoch LDAM-DRW fit with its hold-out fit costs.
_MEMBER_EPOCHS = 40

#: The warning of a member whose own, unadjusted, predictions are a single
#: class: on the development suite most paper-recipe members predict the
#: majority class before the adjustment, which the ensemble's post-hoc
#: ``tau`` then shifts. The ensemble checks its own predictions instead.
_MEMBER_SINGLE_CLASS = r".*predicted class .* for every training row"


class CrossFitEnsembleClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Ensemble of networks trained on k-fold splits, adjusted on their out-of-fold rows.

    The training rows are split into ``n_members`` stratified folds; member
    ``k`` is a clone of ``estimator`` trained on every fold but the
    ``k``-th, and scores the ``k``-th. These out-of-fold scores cover every
    training row once, so the strength ``tau`` of the post-hoc logit
    adjustment [1]_ is chosen on all rows by models that did not see them,
    then applied to the ensemble's prediction: the mean of the members'
    log-probabilities minus ``tau * log(prior)``. Averaging the members
    (bagging [2]_ over cross-validation splits) lowers the variance of
    networks fitted to a few hundred minority rows.

    On the real-data development suite the default ensemble of five LDAM-DRW
    networks has a better mean balanced accuracy and mean rank than one
    :class:`LDAMDRWClassifier`, whose 20 % hold-out (a few dozen minority
    rows) chose strengths that did not carry over to the model refitted on
    all rows (see Notes).

    Parameters
    ----------
    estimator : classifier, default=None
        The member; it must have ``predict_proba``. ``None`` means
        ``LDAMDRWClassifier(max_epochs=40, choose_tau=False)`` with
        ``recipe="paper"`` when a dense ``X`` has at least 12 rows per
        feature, and with ``recipe="tabular"`` (mixup, weight decay 5e-3,
        clipping, and the rules for sparse input) on fewer rows and on
        sparse input: regularisation where the rows are few for the
        features, the paper's plain training where they are not (measured on
        the development suite, see Notes). An estimator
        with a ``choose_tau`` parameter (:class:`LDAMDRWClassifier`) is
        cloned with ``choose_tau=False``: the ensemble chooses the strength;
        one with ``n_members="auto"`` with ``n_members=1``: one network per
        member. :class:`LDAMDRWClassifier` itself packs five cross-fitted
        networks into one module on dense data, which costs less.
    n_members : int, default=5
        Number of members and of folds, at least 2.
    choose_tau : bool, default=True
        Whether to choose the post-hoc adjustment on the out-of-fold rows
        (``tau`` in 0, 0.05, ..., 4, best balanced accuracy, see
        :func:`~ldam_sklearn.posthoc.best_posthoc_tau`); ``False``: every
        member trains on all rows (bagging over seeds) and ``tau = 0``.
    tau_scoring : {"balanced_accuracy", "f1_macro"}, default="balanced_accuracy"
        What the chosen strength maximises on the out-of-fold rows; as for
        :class:`LDAMDRWClassifier`.
    random_state : int, RandomState instance or None, default=None
        Seeds the folds and, when the member has a ``random_state``
        parameter, each member's own seed.
    n_jobs : int, default=None
        Members fitted at once, in separate processes (joblib); ``None``
        means 1 unless in a ``joblib.parallel_backend`` context, ``-1``
        all cores. The fitted ensemble does not depend on it. Each member's
        network still chooses its own threads (``n_threads="auto"``: one for
        small networks).

    Attributes
    ----------
    estimators_ : list of estimators
        The fitted members.
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    class_counts_ : ndarray of shape (n_classes,)
        Training rows per class, whose shares are the priors of the adjustment.
    posthoc_tau_ : float
        Strength of the post-hoc adjustment; 0 when none was chosen.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names, when ``X`` has string column names.

    Notes
    -----
    On the 21 sets of the development suite (``benchmarks/bench_real.py``,
    3-fold CV, behind ``StandardScaler``), the default scored a mean
    balanced accuracy of 0.861 (0.862 with ``tau`` on a grid of 0.25),
    against 0.856 for imbalanced-learn's ``BalancedRandomForestClassifier``
    and 0.853 with tabular members everywhere (better on 14 sets, worse on
    4; docs/quality.md), and the packed ``LDAMDRWClassifier()`` 0.864. Its
    members trained with the paper's recipe on 18 of the 21 sets. On the
    long-tailed MNIST-1D of ``ldam-sklearn compare`` (24 rows per feature)
    the rule costs: 0.380 against 0.404 with tabular members (mean of 3
    seeds).

    The rows of a class with fewer rows than ``n_members`` (but at least
    two) go to different folds, so that every member trains on some of them
    and each is scored out of fold. A class of a single row goes to every
    member and is not scored, as do rows of zero ``sample_weight`` (only rows
    of positive weight are counted here); the strength is chosen on the
    other rows, and only when at least two classes have two rows or more
    (otherwise every member trains on all rows and ``posthoc_tau_`` is 0).

    References
    ----------
    .. [1] A. K. Menon, S. Jayasumana, A. S. Rawat, H. Jain, A. Veit and
       S. Kumar, "Long-tail learning via logit adjustment", ICLR 2021.
    .. [2] L. Breiman, "Bagging predictors", Machine Learning 24, 1996.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from ldam_sklearn import CrossFitEnsembleClassifier, LDAMDRWClassifier
    >>> X, y = make_classification(n_samples=300, weights=[0.9, 0.1], random_state=0)
    >>> member = LDAMDRWClassifier(max_epochs=10)
    >>> clf = CrossFitEnsembleClassifier(member, n_members=3, random_state=0).fit(X, y)
    >>> len(clf.estimators_), clf.predict_proba(X[:2]).shape
    (3, (2, 2))
    """

    def __init__(
        self,
        estimator=None,
        n_members: int = 5,
        *,
        choose_tau: bool = True,
        tau_scoring: str = "balanced_accuracy",
        random_state=None,
        n_jobs: int | None = None,
    ):
        self.estimator = estimator
        self.n_members = n_members
        self.choose_tau = choose_tau
        self.tau_scoring = tau_scoring
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _member(self, X):
        if self.estimator is None:
            # The rule of LDAMDRWClassifier's packed members, measured for
            # both (benchmarks/bench_plain_members.py).
            plain = not sp.issparse(X) and X.shape[0] >= _ROWS_PER_FEATURE * X.shape[1]
            recipe = "paper" if plain else "tabular"
            return LDAMDRWClassifier(
                max_epochs=_MEMBER_EPOCHS, recipe=recipe, choose_tau=False, n_members=1
            )
        member = clone(self.estimator)
        params = member.get_params(deep=False)
        if "choose_tau" in params:
            member.set_params(choose_tau=False)
        if params.get("n_members") == "auto":
            # One network per member: the ensemble is the cross-fitting.
            member.set_params(n_members=1)
        return member

    def _check_params(self) -> None:
        n = self.n_members
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 2:
            raise ValueError(f"n_members must be an integer of at least 2, got {n!r}.")
        check_bool("choose_tau", self.choose_tau)
        check_choice("tau_scoring", self.tau_scoring, TAU_SCORINGS)
        if self.estimator is not None and not hasattr(self.estimator, "predict_proba"):
            raise ValueError(
                f"estimator {type(self.estimator).__name__} has no predict_proba; the ensemble "
                "averages the members' log-probabilities. Pass a probabilistic classifier."
            )

    def fit(self, X, y, sample_weight=None):
        """Fit the members on k-fold splits and choose the adjustment out of fold.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-row weights, passed to each member's ``fit``.

        Returns
        -------
        self : object
        """
        self._check_params()
        X, y = validate_data(
            self, X, y, accept_sparse=("csr", "csc"), multi_output=True, reset=True
        )
        if type_of_target(y) in ("multilabel-indicator", "multiclass-multioutput"):
            raise ValueError("Multilabel and multioutput targets are not supported.")
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
        self.classes_, y_enc, self.class_counts_ = np.unique(
            y, return_inverse=True, return_counts=True
        )
        rng = check_random_state(self.random_state)
        seeds = rng.randint(np.iinfo(np.int32).max, size=self.n_members + 1)
        # Zero-weight rows train nothing and go to every member: a fold of
        # them alone could leave a member without weight in a class.
        folds = np.full(len(y), -1)
        if self.choose_tau:
            folds = member_folds(y_enc, sample_weight, self.n_members, seeds[-1])
        rows = np.flatnonzero(folds >= 0)
        adjust = len(rows) > 0
        splits = [
            (np.flatnonzero(folds != k), np.flatnonzero(folds == k)) for k in range(self.n_members)
        ]
        members = []
        for seed in seeds[:-1]:
            member = self._member(X)
            if "random_state" in member.get_params(deep=False):
                member.set_params(random_state=int(seed))
            members.append(member)
        # With n_jobs the members are fitted in other processes: keep the copies returned.
        fitted = Parallel(n_jobs=self.n_jobs)(
            delayed(_fit_member)(member, X, y, train, held, sample_weight)
            for member, (train, held) in zip(members, splits, strict=True)
        )
        log_proba = np.zeros((len(y), len(self.classes_)))
        for (member, held_log_proba), (_, held) in zip(fitted, splits, strict=True):
            if not np.array_equal(member.classes_, self.classes_):
                raise ValueError(
                    f"a member learned the classes {member.classes_.tolist()} instead of "
                    f"{self.classes_.tolist()}: the ensemble averages the members' "
                    "probabilities, so every member must predict every class it was given. "
                    "Check the member (e.g. a step that drops rows of a class)."
                )
            if len(held):
                log_proba[held] = held_log_proba
        self.estimators_ = [member for member, _ in fitted]
        self.posthoc_tau_ = (
            best_posthoc_tau(
                log_proba[rows], y_enc[rows], self.class_counts_, scoring=self.tau_scoring
            )
            if adjust
            else 0.0
        )
        predicted = np.unique(np.argmax(self._adjusted(X), axis=1))
        if len(predicted) == 1 and len(self.classes_) > 1:
            warn_single_class(self, int(predicted[0]), f"post-hoc tau {self.posthoc_tau_:g}")
        return self

    def _adjusted_log_proba(self, X) -> np.ndarray:
        check_is_fitted(self)
        return self._adjusted(validate_data(self, X, accept_sparse=("csr", "csc"), reset=False))

    def _adjusted(self, X) -> np.ndarray:
        mean = np.mean([_log_proba(member, X) for member in self.estimators_], axis=0)
        prior = self.class_counts_ / self.class_counts_.sum()
        return mean - self.posthoc_tau_ * np.log(prior)

    def predict_proba(self, X) -> np.ndarray:
        """Softmax of the members' mean log-probabilities, adjusted by ``posthoc_tau_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        return softmax(self._adjusted_log_proba(X), axis=1)

    def predict(self, X) -> np.ndarray:
        """The class of the highest adjusted probability.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)
        """
        best = np.argmax(self._adjusted_log_proba(X), axis=1)
        return self.classes_[best]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        member = self.estimator if self.estimator is not None else LDAMDRWClassifier()
        tags.input_tags.sparse = get_tags(member).input_tags.sparse
        return tags


def _fit_member(member, X, y, train, held, sample_weight):
    """The member fitted on the ``train`` rows, and its log-probabilities of the ``held`` rows."""
    weights = {} if sample_weight is None else {"sample_weight": sample_weight[train]}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", _MEMBER_SINGLE_CLASS, ConvergenceWarning)
        member.fit(_safe_indexing(X, train), y[train], **weights)
    scores = _log_proba(member, _safe_indexing(X, held)) if len(held) else None
    return member, scores


def _log_proba(member, X) -> np.ndarray:
    return np.log(np.maximum(member.predict_proba(X), np.finfo(np.float64).tiny))
