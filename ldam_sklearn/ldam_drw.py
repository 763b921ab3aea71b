"""LDAM-DRW: label-distribution-aware margins with deferred re-weighting."""

from __future__ import annotations

import numbers

import numpy as np
import torch
from skorch.callbacks import GradientNormClipping

from .base import BaseNetClassifier
from .callbacks import ClassBalancing, switch_epoch
from .losses import (
    BalancedSoftmaxLoss,
    CrossEntropyLoss,
    FocalLoss,
    LDAMLoss,
    LogitAdjustedLoss,
)
from .utils.validation import check_choice, check_real

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
    ``GridSearchCV`` can reproduce its table.

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
        ``max_epochs``, an int is an epoch number.
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
        The trained network.
    criterion_ : torch.nn.Module
        The loss, with its current per-class ``weight``.
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

    def _check_params(self) -> None:
        super()._check_params()
        check_choice("loss", self.loss, _LOSSES)
        check_choice("schedule", self.schedule, _SCHEDULES)
        check_choice("recipe", self.recipe, _RECIPES)
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
        return {"cosine_head": self.loss == "ldam"}

    def _output_to_logits(self, output: torch.Tensor) -> torch.Tensor:
        if self.loss == "ldam":
            return self.s * output
        if self.loss == "logit_adjusted_posthoc":
            prior = self.class_counts_ / self.class_counts_.sum()
            return output - self.tau * torch.as_tensor(np.log(prior), dtype=output.dtype)
        return output

    @property
    def _default_callbacks(self):
        callbacks = list(super()._default_callbacks)
        # Read before fit validates the parameters (get_params lists callbacks).
        mode, deferred = _SCHEDULES.get(str(self.schedule), (None, False))
        added = []
        if mode is not None:
            start = self.drw_start if deferred else 0
            added.append(("class_balancing", ClassBalancing(mode, start=start, beta=self.beta)))
        if self.recipe == "tabular":
            added.append(("gradient_clipping", GradientNormClipping(_MAX_GRAD_NORM)))
        # Before print_log, so that its table shows this epoch's entries.
        return callbacks[:-1] + added + callbacks[-1:]
