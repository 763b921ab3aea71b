"""LDAM-DRW: label-distribution-aware margins with deferred re-weighting."""

from __future__ import annotations

import contextlib
import math
import numbers

import numpy as np
import scipy.sparse as sp
import torch
from scipy.special import softmax
from sklearn.model_selection import train_test_split
from sklearn.utils import _safe_indexing, check_random_state, indexable
from sklearn.utils.validation import validate_data

from .base import BaseNetClassifier
from .callbacks import (
    BalancedAccuracy,
    ClassBalancing,
    SparseGradientNormClipping,
    switch_epoch,
    warn_single_class,
)
from .data import ArrayDataset, batch_starts, unpack_target
from .losses import (
    BalancedSoftmaxLoss,
    CrossEntropyLoss,
    FocalLoss,
    LDAMLoss,
    LogitAdjustedLoss,
)
from .posthoc import TAU_SCORINGS, _holdable_rows, best_blend, best_posthoc_tau, member_folds
from .trees import fit_tree_members, tree_log_proba
from .utils.validation import check_bool, check_choice, check_real

__all__ = ["LDAMDRWClassifier"]

#: loss name -> (criterion class, estimator parameters it takes)
_LOSSES = {
    "ldam": (LDAMLoss, ("max_m", "s")),
    "ce": (CrossEntropyLoss, ()),
    "focal": (FocalLoss, ("gamma",)),
    "logit_adjusted": (LogitAdjustedLoss, ("tau",)),
    "logit_adjusted_posthoc": (CrossEntropyLoss, ()),
    "balanced_softmax": (BalancedSoftmaxLoss, ()),
}

_RECIPES = ("tabular", "paper")

#: Largest gradient norm of a step under ``recipe="tabular"``.
_MAX_GRAD_NORM = 1.0

#: Beta(alpha, alpha) of the mixing weights of mixup under ``recipe="tabular"``.
_MIXUP_ALPHA = 0.2

#: Weight decay of the default optimizer under ``recipe="tabular"``.
_WEIGHT_DECAY = 5e-3

#: Under ``recipe="tabular"`` on sparse input (text): the default MLP's
#: hidden layers and dropout, the default optimizer's weight decay, and the
#: share of ``max_epochs`` trained. Measured on BANKING77-LT and SMS spam
#: (``benchmarks/bench_text.py``, docs/quality.md).
_SPARSE_HIDDEN = (512,)
_SPARSE_DROPOUT = 0.3
_SPARSE_WEIGHT_DECAY = 1e-3
_SPARSE_EPOCH_SHARE = 0.1
#: ... but at least this many steps (within ``max_epochs``), so that small
#: sets are not left untrained: the measured fits took 230 to 400.
_SPARSE_MIN_STEPS = 200

#: Share of the training rows held out to choose the post-hoc adjustment.
_HOLDOUT = 0.2
#: ... and the spacing of the strengths tried on them, without near ties:
#: the hold-out scores a fifth of the rows, and there the out-of-fold rules
#: (a step of 0.05, near ties to macro-F1) cost few-shot accuracy on
#: BANKING77-LT (-1.2 and -1.4 points at ratios 100 and 10, 3 seeds).
_HOLDOUT_TAU_STEP = 0.25

#: Fewest epochs for packed members to train plainly: unclipped, their
#: cosine heads blow up in the first steps and need steps to recover.
#: On synthetic sets of 27 rows per feature (2 steps an epoch, 4 seeds), 4
#: and 8 plain epochs predicted one class, 12 scored 0.80 against 0.85 for
#: the regularised members, and 20 (0.85) to 40 (0.90 against 0.88) beat them.
_PLAIN_MIN_EPOCHS = 20
#: ... or this many steps in fewer epochs: on the development suite's sets
#: of 1,300 to 13,000 training rows at ``max_epochs`` 10 and 20, every fit
#: of 416 steps or more scored at least as well plainly (+0.3 to +3.6),
#: while fits of 52 to 280 steps lost up to 30 points or predicted one
#: class; on 80,000 synthetic rows, 4 and 8 plain epochs (2,500 and 5,000
#: steps) scored 0.78 and 0.84 against 0.63 for the regularised members.
_PLAIN_MIN_STEPS = 400

#: Fewest rows of a class for it to be held out from: one row can go to the
#: hold-out and one to the first fit. At 5, the 17 intents of 1 to 4 rows
#: of BANKING77-LT at ratio 100 went unscored and the hold-out chose tau
#: 0.5 to 0.75 where 2 to 2.5 was best on the test split.
_MIN_HELD_CLASS = 2

#: Members of the default packed ensemble (``n_members="auto"``) on dense input.
_MEMBERS = 5

#: Share of ``max_epochs`` that packed members train (40 at the default):
#: five members of 40 epochs cost about what one network's 100-epoch fit and
#: its hold-out fit cost, and ten members of 20 epochs each scored worse.
_PACKED_EPOCH_SHARE = 0.4

#: Fewest training rows per feature for packed members to train as in the
#: paper (no mixup or clipping, the paper's weight decay) rather than with
#: the regularised tabular training. On the development suite mixup and
#: weight decay helped on the three sets with fewer than 4 rows per feature
#: (arrhythmia, libras_move, spectrometer) and cost up to 5 points on the
#: sets with more than 12 (e.g. mammography, us_crime, thyroid_sick). In
#: between, on 21 fits of 8 to 12 rows per feature (bundled scikit-learn
#: sets made imbalanced, subsamples of suite sets), the regularised members
#: scored better in 17 (+4.2 points of balanced accuracy on average, +6.6 of
#: macro-F1; ``benchmarks/bench_plain_members.py``, docs/quality.md).
_ROWS_PER_FEATURE = 12

#: schedule name -> (ClassBalancing mode or None, deferred?)
_SCHEDULES = {
    "drw": ("reweight", True),
    "none": (None, False),
    "reweight": ("reweight", False),
    "resample": ("resample", False),
    "drs": ("resample", True),
}


class LDAMDRWClassifier(BaseNetClassifier):
    """Neural network classifier trained with LDAM loss and deferred re-weighting.

    The default is the method of Cao et al. (2019): a cosine-headed MLP
    trained with the label-distribution-aware margin (LDAM) loss, whose
    per-class margin ``max_m * (n_min / n_j) ** (1/4)`` is largest for the
    rarest class, and deferred re-weighting (DRW), which switches on
    class-balanced loss weights for the last 20 % of the epochs. The paper's
    ablations are reachable through ``loss`` and ``schedule``, so one
    ``GridSearchCV`` can reproduce its table. On dense data the default
    recipe trains five such networks at once on cross-fitted folds and
    adjusts their mean prediction post hoc, with a strength chosen on the
    rows each network did not see (see ``recipe``).

    Parameters
    ----------
    loss : {"ldam", "ce", "focal", "logit_adjusted", "logit_adjusted_posthoc", \
"balanced_softmax"}, default="ldam"
        Training loss, from :mod:`ldam_sklearn.losses`. ``"logit_adjusted"``
        adds ``tau * log(prior)`` to the logits in the loss (Menon et al.,
        2021); ``"logit_adjusted_posthoc"`` trains with cross-entropy and
        subtracts ``tau * log(prior)`` at prediction time. ``"balanced_softmax"``
        is the ``tau = 1`` loss form (Ren et al., 2020).
    schedule : {"drw", "none", "reweight", "resample", "drs"}, default="drw"
        ``"drw"``: class-balanced loss weights from ``drw_start`` on.
        ``"reweight"``: the same weights from the first epoch.
        ``"resample"``: class-balanced sampling of batches from the first
        epoch. ``"drs"``: class-balanced sampling from ``drw_start`` on.
        ``"none"``: plain empirical risk minimisation.
    max_m : float, default=0.5
        Largest LDAM margin (that of the rarest class).
    s : float, default=30.0
        LDAM logit scale; also applied before the softmax in ``predict_proba``.
    beta : float, default=0.9999
        Effective-number hyper-parameter of the class-balanced weights, in [0, 1).
    drw_start : float or int, default=0.8
        When deferred schedules switch on: a float in [0, 1] is a fraction of
        ``max_epochs``, an int is an epoch number. Where the tabular recipe
        trains fewer epochs than ``max_epochs`` (sparse input, packed
        members), an epoch number switches at its fraction of ``max_epochs``
        (160 of 200 at 80 % of the epochs trained).
    gamma : float, default=1.0
        Focusing parameter of the focal loss.
    tau : float, default=1.0
        Strength of the logit adjustment.
    recipe : {"tabular", "paper"}, default="tabular"
        ``"paper"`` trains exactly as Cao et al. do on CIFAR (the base
        estimator's SGD and learning-rate schedule, nothing added).
        ``"tabular"`` adds what short budgets on tabular and text data need:

        - the gradient of each step is clipped to norm 1. The cosine head's
          gradient grows with ``s`` and with the inverse length of the
          hidden vector; at ``lr=0.1`` with momentum the first steps on
          TF-IDF input stretched the hidden vectors and head weights a
          hundredfold, after which the learning rate was too small, relative
          to them, to move the network: it predicted the majority class
          only (training loss stuck near 3.6 on SMS spam).
        - mixup [4]_ on dense input: each batch is trained
          on ``lam * X + (1 - lam) * X[perm]`` against both rows' labels,
          weighted ``lam`` and ``1 - lam``, ``lam ~ Beta(0.2, 0.2)``. Without
          augmentation the network fits the training rows long before the
          DRW switch, and re-weighting a loss of zero changes nothing; mixed
          rows keep the loss above zero, so the deferred stage acts, as data
          augmentation makes it act in the paper's CIFAR runs. The training
          history's ``train_bacc`` is then measured on the mixed rows.
          Sparse input is not mixed.
        - weight decay 5e-3 instead of 2e-4 for the default optimizer (a
          given ``optimizer__weight_decay`` wins): tabular sets of a few
          hundred rows are fitted exactly long before the budget ends, and
          the rare class's few rows are then fenced in tightly.
        - post-hoc logit adjustment [3]_ with a strength chosen on held-out
          rows: a first fit on a stratified 80 % of the rows scores the
          other 20 % with ``log p(y|x) - tau * log(prior_y)`` for ``tau`` in
          0, 0.25, ..., 4, keeps the ``tau`` of the best balanced accuracy
          (macro-F1 with ``tau_scoring="f1_macro"``; among ties, that of
          the best score of the other metric, then the one closest to
          1, the theoretical optimum for calibrated probabilities), and the
          model is then refitted on all rows (fit costs about 1.8 times as
          much). Only
          rows of positive ``sample_weight`` are held out, from classes of
          two such rows or more; the other rows all go to the first fit.
          The choice is skipped when fewer than two classes have two such
          rows, for
          ``loss="logit_adjusted_posthoc"`` (whose ``tau`` is given), and
          in ``partial_fit`` and warm-started fits, which keep the current
          ``posthoc_tau_``. The ``callbacks`` given and the ``verbose`` log
          see the fit on all rows only. ``choose_tau=False`` skips the
          choice (``posthoc_tau_`` stays 0), for a caller that chooses the
          strength itself, as :class:`~ldam_sklearn.CrossFitEnsembleClassifier`
          does on out-of-fold rows.

        On dense input (``n_members="auto"``) the recipe trains five
        networks packed side by side (``MLP(n_members=5)``, one set of
        matrix products for all of them) in one fit, cross-fitted: the
        rows are split into five stratified folds (as above: rows of
        positive weight, classes of two such rows or more), and member
        ``k`` trains on every fold but the ``k``-th (its loss weights
        those rows 0). Each row's log-probabilities from the member that
        did not train on it choose ``tau``, with no refit, on a finer grid
        (0, 0.05, ..., 4; near ties in balanced accuracy, within 0.002, go
        to the best macro-F1, see
        :func:`~ldam_sklearn.posthoc.best_posthoc_tau`), and
        ``predict_proba`` adjusts the members' mean log-probability. On
        the 21 sets of the development suite this scored a mean balanced
        accuracy of 0.864 against 0.825 for one network with the 20 %
        hold-out, whose chosen strength often did not carry over to the
        refitted model (docs/quality.md). Packed members train 40 % of
        ``max_epochs`` (40 at the default; partial and warm-started fits
        train ``max_epochs``, every member on every row). With at least 12
        training rows per feature and 20 epochs to train (``max_epochs`` of
        48 or more) or 400 steps in fewer epochs, they train as in the paper
        (no mixup or clipping, weight decay 2e-4); otherwise with the mixup
        and weight decay above, a member mixing only its own rows, and the
        five gradients clipped together to norm ``sqrt(5)`` (the one thing the
        members share). Unclipped, the members' cosine heads blow up in the
        first steps as described above and need steps to recover (in 4 and
        8 epochs of two steps such fits predicted one class); clipping them
        at every budget cost 1.1 points of mean balanced accuracy on the
        development suite.

        On sparse input (TF-IDF, hashed n-grams) the recipe also follows
        these rules, measured on long-tailed intents and on spam
        (``benchmarks/bench_text.py``; the default MLP's two layers of 256
        over 100 epochs fitted the training texts within a few epochs and
        trailed a class-balanced logistic regression by 9 points of
        macro-F1 on BANKING77-LT at ratio 100):

        - the default MLP has one hidden layer of 512 units with dropout
          0.3 (``module__hidden_layer_sizes`` and ``module__dropout`` win);
        - the default optimizer's weight decay is 1e-3;
        - a fresh fit trains ``ceil(max_epochs / 10)`` epochs (10 at the
          default), or as many as 200 optimizer steps take if that is
          more, within ``max_epochs`` (the schedules place their switches
          within them, and ``max_epochs`` keeps its value; ``partial_fit``
          and warm-started fits train ``max_epochs`` epochs).
    choose_tau : bool, default=True
        Whether ``recipe="tabular"`` chooses the post-hoc adjustment's
        strength on held-out rows (see ``recipe``).
    tau_scoring : {"balanced_accuracy", "f1_macro"}, default="balanced_accuracy"
        What the chosen strength maximises on those rows (see
        :func:`~ldam_sklearn.posthoc.best_posthoc_tau`). Balanced accuracy
        pushes the rare classes' recall up at the cost of rows wrongly
        given to them; ``"f1_macro"`` adjusts less, trading recall for
        precision. On the development suite ``"f1_macro"`` raised the mean
        macro-F1 from 0.760 to 0.796 at a balanced accuracy of 0.830
        instead of 0.864 (``HistGradientBoostingClassifier`` with balanced
        class weights: 0.808 and 0.805). It scores rows with the training
        data's class shares, so it suits test data with those shares; on
        long-tailed training text scored on a balanced test split it
        lowered macro-F1 too (docs/quality.md).
    tree_blend : bool, default=False
        Whether to blend the packed network with gradient-boosted trees.
        Beside the five members, five scikit-learn
        ``HistGradientBoostingClassifier(class_weight="balanced")`` are
        fitted, each on the rows its member trains on; the network's share
        ``w`` of the blend (1, 0.75, 0.5, 0.25 or 0) and ``tau`` are chosen
        together on the out-of-fold rows, by ``tau_scoring``, and
        ``predict_proba`` softmaxes ``w`` times the members' mean
        log-probability plus ``1 - w`` times the trees' minus ``tau log
        prior``. ``w = 1`` leaves the network alone. On the development
        suite it raised the mean balanced accuracy from 0.864 to 0.884
        and the macro-F1 from 0.759 to 0.774 (with ``tau_scoring=
        "f1_macro"``, computed offline from the same fits: 0.837 and
        0.824), at about twice the fit time
        (docs/quality.md). Needs the packed members' out-of-fold rows:
        dense input, ``recipe="tabular"``, ``choose_tau=True`` and more
        than one member. The trees are not module parameters:
        ``save_params`` refuses to save such a model; pickle it instead.
    n_members : int or "auto", default="auto"
        Networks packed into the default MLP. ``"auto"``: 5 with
        ``recipe="tabular"`` on dense input and the default module, else 1.
        Above 1 they are cross-fitted when the recipe chooses ``tau`` (see
        ``recipe``), and bagged over their initialisations otherwise.
    **kwargs
        Parameters of :class:`ldam_sklearn.base.BaseNetClassifier` and skorch
        (``max_epochs``, ``lr``, ``batch_size``, ``module__hidden_layer_sizes``,
        ``optimizer__weight_decay``, ``device``, ``random_state``...).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    class_counts_ : ndarray of shape (n_classes,)
        Training samples per class.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Feature names, when ``X`` has string column names.
    device_ : torch.device
        Device the network lives on.
    module_ : torch.nn.Module
        The trained network; with packed members its output has a member
        axis, ``(n_samples, n_members_, n_classes)``.
    criterion_ : torch.nn.Module
        The loss, with its current per-class ``weight``.
    posthoc_tau_ : float
        Strength of the post-hoc logit adjustment chosen on held-out rows
        (``recipe="tabular"``); 0 when none was chosen.
    tree_members_ : list of HistGradientBoostingClassifier
        The trees blended with the network (``tree_blend=True``); empty
        otherwise, and when no ``tau`` was chosen.
    tree_weight_ : float
        The network's share of the blend; 1 without trees.
    n_members_ : int
        Networks packed into the module (``n_members`` resolved).
    history_ : skorch.history.History
        Per epoch: ``train_loss``, ``train_bacc`` (balanced accuracy of the
        epoch's batches), ``lr``, ``balancing`` and ``class_weights``.

    References
    ----------
    .. [1] K. Cao, C. Wei, A. Gaidon, N. Arechiga, T. Ma. "Learning Imbalanced
       Datasets with Label-Distribution-Aware Margin Loss", NeurIPS 2019.
    .. [2] Y. Cui, M. Jia, T.-Y. Lin, Y. Song, S. Belongie. "Class-Balanced
       Loss Based on Effective Number of Samples", CVPR 2019.
    .. [3] A. K. Menon et al. "Long-tail learning via logit adjustment",
       ICLR 2021.
    .. [4] H. Zhang, M. Cisse, Y. N. Dauphin, D. Lopez-Paz. "mixup: Beyond
       Empirical Risk Minimization", ICLR 2018.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from ldam_sklearn import LDAMDRWClassifier
    >>> X, y = make_classification(n_samples=500, weights=[0.9, 0.1], random_state=0)
    >>> clf = LDAMDRWClassifier(max_epochs=20, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 2)
    >>> clf.history[-1, "balancing"]
    'reweight'
    """

    def __init__(
        self,
        loss: str = "ldam",
        schedule: str = "drw",
        *,
        max_m: float = 0.5,
        s: float = 30.0,
        beta: float = 0.9999,
        drw_start: float = 0.8,
        gamma: float = 1.0,
        tau: float = 1.0,
        recipe: str = "tabular",
        choose_tau: bool = True,
        tau_scoring: str = "balanced_accuracy",
        n_members: int | str = "auto",
        tree_blend: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.loss = loss
        self.schedule = schedule
        self.max_m = max_m
        self.s = s
        self.beta = beta
        self.drw_start = drw_start
        self.gamma = gamma
        self.tau = tau
        self.recipe = recipe
        self.choose_tau = choose_tau
        self.tau_scoring = tau_scoring
        self.n_members = n_members
        self.tree_blend = tree_blend

    def _check_params(self) -> None:
        super()._check_params()
        check_choice("loss", self.loss, _LOSSES)
        check_choice("schedule", self.schedule, _SCHEDULES)
        check_choice("recipe", self.recipe, _RECIPES)
        check_bool("choose_tau", self.choose_tau)
        check_choice("tau_scoring", self.tau_scoring, TAU_SCORINGS)
        check_bool("tree_blend", self.tree_blend)
        n = self.n_members
        if n != "auto" and (isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1):
            raise ValueError(f'n_members must be "auto" or an integer of at least 1, got {n!r}.')
        if n != "auto" and n > 1 and self.module is not None:
            raise ValueError(
                f"n_members={n} packs copies of the default MLP, but a module was given; "
                "pass n_members=1 with your own module."
            )
        for name in ("max_m", "gamma", "tau"):
            check_real(name, getattr(self, name), 0)
        check_real("s", self.s, 0, strict=True)
        check_real("beta", self.beta, 0, below=1)
        start = self.drw_start
        if isinstance(start, bool) or not isinstance(start, numbers.Real):
            raise ValueError(f"drw_start must be a fraction or an epoch number, got {start!r}.")
        if not 0 <= switch_epoch(start, self.max_epochs) <= self.max_epochs:
            raise ValueError(
                f"drw_start={start!r} falls outside the {self.max_epochs} epochs; give a "
                "fraction in [0, 1] or an epoch number <= max_epochs."
            )

    def _default_criterion(self) -> tuple[type, dict]:
        criterion, names = _LOSSES[self.loss]
        return criterion, {name: getattr(self, name) for name in names}

    def _default_module_kwargs(self) -> dict:
        # Before a fit (initialize() to load saved parameters): as for dense data.
        members = getattr(self, "n_members_", None) or self._members_for(sparse=False)
        kwargs = {"cosine_head": self.loss == "ldam", "n_members": members}
        if self._sparse_recipe:
            kwargs.update(hidden_layer_sizes=_SPARSE_HIDDEN, dropout=_SPARSE_DROPOUT)
        return kwargs

    @property
    def _sparse_recipe(self) -> bool:
        # Set by fit from the training X; the default MLP and optimizer are
        # built after it.
        return self.recipe == "tabular" and getattr(self, "_sparse_X", False)

    def _members_for(self, sparse: bool) -> int:
        """``n_members``, with ``"auto"`` resolved for dense or sparse training data."""
        if self.n_members != "auto":
            return self.n_members
        packs = self.recipe == "tabular" and self.module is None and not sparse
        return _MEMBERS if packs else 1

    def _validate_fit_data(self, X, y, sample_weight, *, reset, classes=None):
        dataset = super()._validate_fit_data(X, y, sample_weight, reset=reset, classes=classes)
        if reset:
            self.n_members_ = self._members_for(self._sparse_X)
            rows_per_feature = len(dataset) / max(self.n_features_in_, 1)
            # fit has set max_epochs to the epochs it trains.
            steps = self.max_epochs * len(batch_starts(len(dataset), self.batch_size))
            # Read when the optimizer and the callbacks are built.
            self._plain_members = (
                self.n_members_ > 1
                and self.recipe == "tabular"
                and not self._sparse_X
                and rows_per_feature >= _ROWS_PER_FEATURE
                and (self.max_epochs >= _PLAIN_MIN_EPOCHS or steps >= _PLAIN_MIN_STEPS)
            )
        return dataset

    def _training_data(self, dataset: ArrayDataset, fit_params: dict) -> ArrayDataset:
        """With packed members that choose ``tau``: each member's rows as a weight column."""
        if not getattr(self, "_cross_fit", False):
            return dataset
        labels = dataset.y.cpu().numpy()
        weights = None if dataset.sample_weight is None else dataset.sample_weight.cpu().numpy()
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        folds = member_folds(labels, weights, self.n_members_, seed)
        self._out_of_fold = folds, labels, weights
        trains = folds[:, None] != np.arange(self.n_members_)
        given = 1.0 if weights is None else weights[:, None]
        dataset.sample_weight = torch.as_tensor(
            trains * given, dtype=torch.float32, device=dataset.y.device
        )
        return dataset

    def fit(self, X, y, sample_weight=None, **fit_params):
        """Train the network; with ``recipe="tabular"``, choose the post-hoc adjustment first.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,)
            Class labels.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-example loss weights.
        **fit_params : dict
            Passed to the module's ``forward``.

        Returns
        -------
        self : object
        """
        # The epoch budget and the hold-out read max_epochs and batch_size:
        # bad values get their clear error before they are used.
        self._check_params()
        warm = self.warm_start and self.initialized_
        tau = self.posthoc_tau_ if warm else 0.0
        chooses = not warm and self._chooses_tau(y, sample_weight)
        packed = self._members_for(sp.issparse(X)) > 1
        self._check_tree_blend(packed, sp.issparse(X))
        self._out_of_fold = None
        if not warm:
            self.tree_members_, self.tree_weight_ = [], 1.0
        with self._epoch_budget(X, warm):
            if chooses and not packed:
                tau = self._choose_tau(X, y, sample_weight, fit_params)
            # Packed members are cross-fitted in this one fit (_training_data).
            self._cross_fit = chooses and packed
            try:
                # A fresh module starts without adjustment, a warm one keeps its own.
                super().fit(X, y, sample_weight=sample_weight, **fit_params)
            finally:
                self._cross_fit = False
        # One forward pass over the training rows serves tau and the check.
        outputs = self._module_outputs(X) if self.recipe == "tabular" else None
        if self._out_of_fold is not None:
            tau = self._out_of_fold_tau(outputs, X)
        self.module_.posthoc_tau.fill_(tau)
        if outputs is not None:
            # The last epoch saw mixed rows and no adjustment: check the model itself.
            predicted = np.unique(self._proba(outputs, X).argmax(axis=1))
            if len(predicted) == 1:
                warn_single_class(self, int(predicted[0]), f"post-hoc tau {tau:g}")
        return self

    def initialize_module(self):
        """Build the module; it also holds the post-hoc adjustment's strength.

        Kept as the module's buffer ``posthoc_tau``, the strength is saved
        and loaded with the network's parameters (skorch's ``f_params``) and
        pickled with it.
        """
        super().initialize_module()
        self.module_.register_buffer("posthoc_tau", torch.zeros(()))
        return self

    @property
    def posthoc_tau_(self) -> float:
        # A float32 buffer (MPS has no float64) reads the chosen 2.05 as
        # 2.0499999; the grid's values have two decimals.
        return round(float(self.module_.posthoc_tau), 6)

    @contextlib.contextmanager
    def _epoch_budget(self, X, warm: bool):
        """Tabular recipe: on sparse input a tenth of ``max_epochs`` (or 200 steps), packed 40 %."""
        max_epochs = self.max_epochs
        sparse = sp.issparse(X)
        if warm or self.recipe != "tabular":
            budget = max_epochs
        elif sparse:
            # No rows: left to fit's validation, which rejects empty input by name.
            steps_per_epoch = len(batch_starts(max(X.shape[0], 1), self.batch_size))
            share = math.ceil(max_epochs * _SPARSE_EPOCH_SHARE)
            budget = min(max_epochs, max(share, math.ceil(_SPARSE_MIN_STEPS / steps_per_epoch)))
        elif self._members_for(sparse) > 1:
            budget = math.ceil(max_epochs * _PACKED_EPOCH_SHARE)
        else:
            budget = max_epochs
        # Read by skorch's loop and by the schedules, which place their
        # switches at fractions of it; an epoch number of max_epochs becomes
        # its fraction, so that it switches within the shorter budget too.
        drw_start = self.drw_start
        fraction = isinstance(drw_start, float) and 0.0 <= drw_start <= 1.0
        if budget != max_epochs and not fraction:
            self.drw_start = switch_epoch(drw_start, max_epochs) / max_epochs
        self.max_epochs = budget
        try:
            yield
        finally:
            self.max_epochs, self.drw_start = max_epochs, drw_start

    def _check_tree_blend(self, packed: bool, sparse: bool) -> None:
        if self.tree_blend and not (
            packed
            and self.recipe == "tabular"
            and self.choose_tau
            and self.loss != "logit_adjusted_posthoc"
        ):
            raise ValueError(
                "tree_blend=True chooses the blend on the packed members' out-of-fold rows: "
                'it needs dense X, recipe="tabular", choose_tau=True, a loss other than '
                '"logit_adjusted_posthoc" and n_members > 1 ("auto" packs 5 on dense input); '
                f"got {'sparse' if sparse else 'dense'} X, recipe={self.recipe!r}, "
                f"choose_tau={self.choose_tau!r}, loss={self.loss!r}, n_members={self.n_members!r}."
            )

    def _out_of_fold_tau(self, outputs: torch.Tensor, X) -> float:
        """The best ``tau`` on each training row's output from its out-of-fold member.

        With ``tree_blend``, the trees are fitted on the members' rows here,
        and the blend's weight is chosen with ``tau``.
        """
        folds, labels, weights = self._out_of_fold
        self._out_of_fold = None
        scored = np.flatnonzero(folds >= 0)
        log_proba = self._member_log_proba(outputs)
        log_proba = log_proba[torch.as_tensor(scored), torch.as_tensor(folds[scored])]
        log_proba = log_proba.double().numpy()
        if not self.tree_blend:
            return best_posthoc_tau(
                log_proba, labels[scored], self.class_counts_, scoring=self.tau_scoring
            )
        self.tree_members_, trees = fit_tree_members(
            self._dense(X), labels, weights, folds, self.n_members_, self.random_state
        )
        self.tree_weight_, tau = best_blend(
            log_proba, trees[scored], labels[scored], self.class_counts_, scoring=self.tau_scoring
        )
        return tau

    def _dense(self, X) -> np.ndarray:
        """``X`` as the network sees it, for the trees."""
        return validate_data(self, X, reset=False, dtype=np.float32)

    def _proba(self, outputs: torch.Tensor, X) -> np.ndarray:
        """With ``tree_blend``, the blend of the network and its trees."""
        if not getattr(self, "tree_members_", None):
            return super()._proba(outputs, X)
        net = self._member_log_proba(outputs).double().mean(dim=1).numpy()
        trees = tree_log_proba(self.tree_members_, self._dense(X))
        log_prior = np.log(self.class_counts_ / self.class_counts_.sum())
        w = self.tree_weight_
        logits = w * net + (1 - w) * trees - self.posthoc_tau_ * log_prior
        # As _proba_from_outputs: a network overflowed by extreme input saturates.
        return softmax(np.nan_to_num(logits, nan=0.0, posinf=1e300, neginf=-1e300), axis=1)

    def save_params(self, f_params=None, **kwargs):
        """skorch's ``save_params``; refused for a tree blend, whose trees it would lose."""
        if f_params is not None and getattr(self, "tree_members_", None):
            raise ValueError(
                "save_params saves the network's parameters, not the gradient-boosted trees "
                "that tree_blend=True fitted beside it; pickle the estimator (pickle.dump or "
                "joblib.dump) to keep both."
            )
        return super().save_params(f_params=f_params, **kwargs)

    def _chooses_tau(self, y, sample_weight) -> bool:
        if self.recipe != "tabular" or not self.choose_tau or self.loss == "logit_adjusted_posthoc":
            return False
        y = _labels(y)
        weights = None if sample_weight is None else np.asarray(sample_weight)
        if (
            y.ndim != 1
            or weights is not None
            and (weights.shape != y.shape or not np.issubdtype(weights.dtype, np.number))
        ):
            # Left to fit's validation, which rejects such input by name.
            return False
        return (_holdable_rows(y, sample_weight)[2] >= _MIN_HELD_CLASS).sum() > 1

    def _choose_tau(self, X, y, sample_weight, fit_params) -> float:
        """Fit on a stratified share of the rows; the best tau on the rest.

        Only rows of positive weight are held out, from the classes with at
        least ``_MIN_HELD_CLASS`` of them; the other rows all stay in the
        first fit, and tau is chosen on the held-out rows.
        """
        y = _labels(y)
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        weighted, inverse, counts = _holdable_rows(y, sample_weight)
        held_out = weighted & (counts[inverse] >= _MIN_HELD_CLASS)
        rows = np.flatnonzero(held_out)
        # A stratified split refuses fewer held-out rows than classes, which
        # many small classes can outnumber.
        n_held = max(math.ceil(_HOLDOUT * len(rows)), int((counts >= _MIN_HELD_CLASS).sum()))
        first, held = train_test_split(rows, test_size=n_held, stratify=y[rows], random_state=seed)
        first = np.concatenate([np.flatnonzero(~held_out), first])
        # indexable turns array-likes without indexing (e.g. objects with
        # only __array__) into arrays, as train_test_split does.
        parts = indexable(X, y) if sample_weight is None else indexable(X, y, sample_weight)
        train = [_safe_indexing(part, first) for part in parts]
        held = [_safe_indexing(part, held) for part in parts[:2]]
        weights = {} if sample_weight is None else {"sample_weight": train[2]}
        verbose, callbacks = self.verbose, self.callbacks
        # The user's log and callbacks (progress, checkpoints, interruptions)
        # see the fit on all rows only.
        self.verbose, self.callbacks = 0, None
        try:
            super().fit(train[0], train[1], **weights, **fit_params)
        finally:
            self.verbose, self.callbacks = verbose, callbacks
        log_proba = np.log(np.maximum(self.predict_proba(held[0]), np.finfo(np.float64).tiny))
        labels = np.searchsorted(self.classes_, held[1])
        tau = best_posthoc_tau(
            log_proba,
            labels,
            self.class_counts_,
            step=_HOLDOUT_TAU_STEP,
            near_tie=0.0,
            scoring=self.tau_scoring,
        )
        # The fit on all rows starts afresh, without skorch's "Re-initializing" notes.
        self.initialized_ = False
        return tau

    def _default_weight_decay(self) -> float | None:
        """``recipe="tabular"`` sets the default optimizer's weight decay."""
        if self.recipe != "tabular" or getattr(self, "_plain_members", False):
            return None
        return _SPARSE_WEIGHT_DECAY if self._sparse_recipe else _WEIGHT_DECAY

    def train_step_single(self, batch, **fit_params):
        """One training step; with ``recipe="tabular"`` on dense input, on mixed rows.

        Packed members' loss is their mean (the recorded ``train_loss``); its
        gradient is taken times their number, so that each member steps as
        if it trained alone.
        """
        Xi, yi = batch
        self._set_training(True)
        mixes = not (
            self.recipe != "tabular"
            or getattr(self, "_plain_members", False)
            or Xi.layout != torch.strided
            or len(Xi) < 2
        )
        if mixes:
            y_pred, loss = self._mixup_loss(Xi, yi, fit_params)
        else:
            y_pred = self.infer(Xi, **fit_params)
            loss = self.get_loss(y_pred, yi, X=Xi, training=True)
        members = y_pred.shape[1] if y_pred.ndim == 3 else 1
        (members * loss).backward()
        return {"loss": loss, "y_pred": y_pred}

    def _mixup_loss(self, Xi, yi, fit_params) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs on a batch mixed with a permutation of itself, and their mixed loss."""
        # Drawn from torch's generator, which fit seeds per epoch.
        lam = float(torch.distributions.Beta(_MIXUP_ALPHA, _MIXUP_ALPHA).sample())
        perm = torch.randperm(len(Xi), device=Xi.device)
        y_pred = self.infer(torch.lerp(Xi[perm], Xi, lam), **fit_params)
        labels, sample_weight = unpack_target(yi)
        own, partner = yi, labels[perm]
        if sample_weight is not None:
            partner_weight = sample_weight[perm]
            if sample_weight.ndim == 2:
                # A packed member trains on a mix of two of its own rows only,
                # so that its out-of-fold rows stay unseen.
                both = (sample_weight > 0) & (partner_weight > 0)
                own = (labels, sample_weight * both)
                partner_weight = partner_weight * both
            partner = (labels[perm], partner_weight)
        loss = lam * self.get_loss(y_pred, own, X=Xi, training=True) + (1 - lam) * self.get_loss(
            y_pred, partner, X=Xi, training=True
        )
        return y_pred, loss

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Criterion on a batch; packed members' losses are averaged."""
        if y_pred.ndim != 3:
            return super().get_loss(y_pred, y_true, X=X, training=training)
        k = y_pred.shape[1]
        labels, sample_weight = unpack_target(y_true)
        target = labels.repeat_interleave(k)
        if sample_weight is not None:
            weights = sample_weight if sample_weight.ndim == 2 else sample_weight[:, None]
            target = (target, weights.expand(-1, k).reshape(-1))
        # The mean over all members' rows: about the mean of the members'
        # own means, as their rows are about a k-th of them each.
        flat = y_pred.reshape(-1, y_pred.shape[-1])
        return super().get_loss(flat, target, X=X, training=training)

    def _member_log_proba(self, output: torch.Tensor) -> torch.Tensor:
        logits = self.s * output if self.loss == "ldam" else output
        return torch.log_softmax(logits, dim=-1)

    def _output_to_logits(self, output: torch.Tensor) -> torch.Tensor:
        if output.ndim == 3:
            # The members' mean log-probability: their geometric mean.
            logits = self._member_log_proba(output).mean(dim=1)
        else:
            logits = self.s * output if self.loss == "ldam" else output
        tau = self.tau if self.loss == "logit_adjusted_posthoc" else self.posthoc_tau_
        if tau:
            prior = self.class_counts_ / self.class_counts_.sum()
            logits = logits - tau * torch.as_tensor(np.log(prior), dtype=logits.dtype)
        return logits

    def initialize_callbacks(self):
        """Build the callbacks; packed members that train plainly are not clipped.

        The clipping stays among the default callbacks (and in
        ``get_params``) either way, since whether members train plainly
        depends on the training data.
        """
        super().initialize_callbacks()
        if getattr(self, "_plain_members", False):
            self.callbacks_ = [(n, cb) for n, cb in self.callbacks_ if n != "gradient_clipping"]
        return self

    @property
    def _default_callbacks(self):
        callbacks = list(super()._default_callbacks)
        # Read before fit validates the parameters (get_params lists
        # callbacks), so compared as strings: any value must pass here.
        tabular = str(self.recipe) == "tabular"
        if tabular:
            # fit checks the adjusted model's predictions itself.
            callbacks = [
                (name, BalancedAccuracy(warn_single_class=False))
                if name == "balanced_accuracy"
                else (name, callback)
                for name, callback in callbacks
            ]
        mode, deferred = _SCHEDULES.get(str(self.schedule), (None, False))
        added = []
        if mode is not None:
            start = self.drw_start if deferred else 0
            added.append(("class_balancing", ClassBalancing(mode, start=start, beta=self.beta)))
        if tabular:
            added.append(("gradient_clipping", SparseGradientNormClipping(_MAX_GRAD_NORM)))
        # Before print_log, so that its table shows this epoch's entries.
        return callbacks[:-1] + added + callbacks[-1:]


def _labels(y) -> np.ndarray:
    """``y`` as an array, a column vector as 1-d (fit's validation warns about it)."""
    y = np.asarray(y)
    return y.ravel() if y.ndim == 2 and y.shape[1] == 1 else y
