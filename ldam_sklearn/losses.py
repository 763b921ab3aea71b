"""Class-imbalance-aware classification losses in plain PyTorch.

The label-distribution-aware margin (LDAM) loss [1]_ and the losses it is
compared with or succeeded by: class-balanced weights from the effective
number of samples [2]_, the focal loss [3]_, logit adjustment [4]_ and the
balanced softmax [5]_.

Every loss here is a :class:`torch.nn.Module` with the same constructor shape,
``Loss(class_counts, ..., weight=None, reduction="mean")``, and the same call,
``loss(input, target, sample_weight=None)``, so a training loop or a skorch
estimator can swap them freely.

Each module holds a per-class ``weight`` buffer (ones by default).  The
deferred re-weighting (DRW) schedule of Cao et al. [1]_ changes it in place
at the switch epoch, ``loss.weight.copy_(class_balanced_weights(counts))``,
without rebuilding the module or the optimizer.

References
----------
.. [1] K. Cao, C. Wei, A. Gaidon, N. Arechiga and T. Ma, "Learning Imbalanced
   Datasets with Label-Distribution-Aware Margin Loss", NeurIPS 2019,
   arXiv:1906.07413.
.. [2] Y. Cui, M. Jia, T.-Y. Lin, Y. Song and S. Belongie, "Class-Balanced Loss
   Based on Effective Number of Samples", CVPR 2019, arXiv:1901.05555.
.. [3] T.-Y. Lin, P. Goyal, R. Girshick, K. He and P. Dollar, "Focal Loss for
   Dense Object Detection", ICCV 2017, arXiv:1708.02002.
.. [4] A. K. Menon, S. Jayasumana, A. S. Rawat, H. Jain, A. Veit and S. Kumar,
   "Long-tail learning via logit adjustment", ICLR 2021, arXiv:2007.07314.
.. [5] J. Ren, C. Yu, S. Sheng, X. Ma, H. Zhao, S. Yi and H. Li, "Balanced
   Meta-Softmax for Long-Tailed Visual Recognition", NeurIPS 2020,
   arXiv:2007.10740.
"""

from __future__ import annotations

import math

import numpy.typing as npt
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BalancedSoftmaxLoss",
    "CrossEntropyLoss",
    "FocalLoss",
    "LDAMLoss",
    "LogitAdjustedLoss",
    "class_balanced_weights",
    "ldam_margins",
]

_REDUCTIONS = ("mean", "sum", "none")


def _check_class_counts(class_counts: npt.ArrayLike | torch.Tensor) -> torch.Tensor:
    """Validate per-class training counts and return them as a float64 CPU tensor.

    Parameters
    ----------
    class_counts : array-like or torch.Tensor of shape (n_classes,)
        Number of training samples of each class.

    Returns
    -------
    counts : torch.Tensor of shape (n_classes,), dtype float64
        The counts, on the CPU; derived per-class tensors are computed from
        them in float64 and cast to float32 once.

    Raises
    ------
    ValueError
        If the counts are not 1-D, are empty, or any count is not a finite
        positive number.
    """
    counts = torch.as_tensor(class_counts, dtype=torch.float64, device="cpu")
    if counts.ndim != 1 or counts.numel() == 0:
        raise ValueError(
            "class_counts must be a non-empty 1-D array with one training count "
            f"per class, got shape {tuple(counts.shape)}; pass e.g. "
            "np.bincount(y) for labels y encoded as 0..n_classes-1."
        )
    # ``~(counts > 0)`` rather than ``counts <= 0`` so that NaN is caught too.
    bad = torch.nonzero(~(counts > 0) | ~torch.isfinite(counts)).flatten().tolist()
    if bad:
        found = ", ".join(f"class {j} has count {counts[j].item():g}" for j in bad)
        raise ValueError(
            f"class_counts must be finite and > 0 for every class, but {found}. "
            "A class with no training samples would get an infinite margin or "
            "weight: drop that class, or check the label encoding (labels must "
            "be 0..n_classes-1 and every class must occur in the training data)."
        )
    return counts


def _check_hyperparameter(name: str, value: float, *, positive: bool = False) -> float:
    """Return ``value`` as a float, raising ``ValueError`` unless it is finite and >= 0.

    With ``positive=True`` the value must also be non-zero.
    """
    value = float(value)
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}.")
    return value


def class_balanced_weights(
    class_counts: npt.ArrayLike | torch.Tensor, beta: float = 0.9999
) -> torch.Tensor:
    """Class-balanced weights from the effective number of samples.

    ``w_j = (1 - beta) / (1 - beta ** n_j)``, rescaled so that the weights sum
    to the number of classes.  These are the weights that deferred
    re-weighting (DRW) switches on late in training.

    Parameters
    ----------
    class_counts : array-like or torch.Tensor of shape (n_classes,)
        Number of training samples of each class; every count must be > 0.
    beta : float, default=0.9999
        Hyperparameter in [0, 1).  ``beta = 0`` gives equal weights; as
        ``beta`` approaches 1 the weights approach inverse class frequency.

    Returns
    -------
    weights : torch.Tensor of shape (n_classes,), dtype float32
        Per-class weights, summing to ``n_classes``.

    Raises
    ------
    ValueError
        If ``beta`` is outside [0, 1), or ``class_counts`` is not 1-D or has
        a count that is not a finite number > 0.

    References
    ----------
    .. [1] Y. Cui, M. Jia, T.-Y. Lin, Y. Song and S. Belongie, "Class-Balanced
       Loss Based on Effective Number of Samples", CVPR 2019.
    .. [2] K. Cao, C. Wei, A. Gaidon, N. Arechiga and T. Ma, "Learning
       Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
       NeurIPS 2019, arXiv:1906.07413.

    Examples
    --------
    >>> from ldam_sklearn.losses import class_balanced_weights
    >>> class_balanced_weights([5000, 500, 50])
    tensor([0.0341, 0.2752, 2.6907])
    >>> class_balanced_weights([5000, 500, 50], beta=0.0)
    tensor([1., 1., 1.])
    """
    counts = _check_class_counts(class_counts)
    beta = float(beta)
    if not 0.0 <= beta < 1.0:
        raise ValueError(
            f"beta must be in [0, 1), got {beta!r}; use 0.9999 as in Cui et al. "
            "(2019), or 0 for equal weights."
        )
    weights = (1.0 - beta) / (1.0 - torch.pow(beta, counts))
    return (weights * (counts.numel() / weights.sum())).to(torch.float32)


def ldam_margins(class_counts: npt.ArrayLike | torch.Tensor, max_m: float = 0.5) -> torch.Tensor:
    """Per-class LDAM margins ``Delta_j = C / n_j ** (1/4)``.

    The constant ``C`` is chosen so that the largest margin, that of the rarest
    class, equals ``max_m``.

    Parameters
    ----------
    class_counts : array-like or torch.Tensor of shape (n_classes,)
        Number of training samples of each class; every count must be > 0.
    max_m : float, default=0.5
        Margin of the rarest class, >= 0.  Cao et al. use 0.5 on CIFAR and 0.3
        on iNaturalist.

    Returns
    -------
    margins : torch.Tensor of shape (n_classes,), dtype float32
        Per-class margins.

    Raises
    ------
    ValueError
        If ``max_m`` is negative or the counts are invalid.

    References
    ----------
    .. [1] K. Cao, C. Wei, A. Gaidon, N. Arechiga and T. Ma, "Learning
       Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
       NeurIPS 2019, arXiv:1906.07413.

    Examples
    --------
    >>> from ldam_sklearn.losses import ldam_margins
    >>> ldam_margins([10000, 625, 16])
    tensor([0.1000, 0.2000, 0.5000])
    """
    counts = _check_class_counts(class_counts)
    max_m = _check_hyperparameter("max_m", max_m)
    margins = counts.pow(-0.25)
    return (margins * (max_m / margins.max())).to(torch.float32)


def _rebuild_class_tensors(module: _ClassWeightedLoss, incompatible_keys) -> None:
    device = module.class_counts.device
    module._init_class_tensors(module.class_counts.cpu())
    module.to(device)


def _clamped(total_weight: torch.Tensor) -> torch.Tensor:
    # A batch whose weights are all zero (zero sample weights) must add
    # nothing rather than 0/0 = NaN, which would poison the parameters.
    # Dividing it by 1 keeps its gradient 0; the smallest float as divisor
    # made it 0 * inf = NaN once a caller scaled the loss up (packed
    # members' gradient is taken times their number).
    return torch.where(total_weight > 0, total_weight, 1.0)


class _ClassWeightedLoss(nn.Module):
    """Per-example loss with per-class and per-sample weighting.

    Subclasses change the logits through :meth:`_adjust` (cross-entropy on
    adjusted logits), or replace :meth:`_per_example_loss` and its
    class-weighted reduction :meth:`_class_weighted_loss` altogether.  The weighting
    and the reduction live only in :meth:`forward`.
    """

    weight: torch.Tensor
    # Names of the float hyperparameters shown by ``repr``.
    _hyperparameters: tuple[str, ...] = ()

    def __init__(
        self,
        class_counts: npt.ArrayLike | torch.Tensor,
        weight: npt.ArrayLike | torch.Tensor | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__()
        counts = _check_class_counts(class_counts)
        self.n_classes = counts.numel()
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"reduction must be one of {', '.join(map(repr, _REDUCTIONS))}, got {reduction!r}."
            )
        self.reduction = reduction
        if weight is None:
            weight = torch.ones(self.n_classes, dtype=torch.float32)
        else:
            # A private copy: the DRW switch writes into this buffer in place,
            # which must not leak into the caller's array.
            weight = torch.as_tensor(weight).detach().to("cpu", torch.float32).clone()
            if weight.shape != (self.n_classes,):
                raise ValueError(
                    f"weight must have shape ({self.n_classes},), one entry per "
                    f"class of class_counts, got {tuple(weight.shape)}."
                )
            if not bool(torch.isfinite(weight).all() and (weight >= 0).all()):
                raise ValueError(f"weight must be finite and >= 0, got {weight.tolist()}.")
        self.register_buffer("weight", weight)
        self._positive_for: tuple = (None, None, None)
        # Saved with the weights (skorch's f_criterion), so a loaded criterion
        # carries the class distribution it was trained with; the tensors
        # derived from it are rebuilt after loading.
        self.register_buffer("class_counts", counts.to(torch.float32))
        self._init_class_tensors(self.class_counts)
        self.register_load_state_dict_post_hook(_rebuild_class_tensors)

    def _init_class_tensors(self, counts: torch.Tensor) -> None:
        """Register the buffers derived from the class counts, if any."""

    def extra_repr(self) -> str:
        """Describe the module in ``repr``, e.g. ``LDAMLoss(n_classes=3, max_m=0.5, ...)``."""
        settings = [f"n_classes={self.n_classes}"]
        settings += [f"{name}={getattr(self, name)!r}" for name in self._hyperparameters]
        settings.append(f"reduction={self.reduction!r}")
        return ", ".join(settings)

    def _adjust(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the logits that enter the softmax cross-entropy."""
        return input

    def _per_example_loss(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Return the unweighted loss of each example, shape (n_samples,)."""
        return F.cross_entropy(self._adjust(input, target), target, reduction="none")

    def _class_weighted_loss(
        self, input: torch.Tensor, target: torch.Tensor, reduction: str
    ) -> torch.Tensor:
        """Return ``sum_i w_i * loss_i`` (``"sum"``) or its weighted mean
        (``"mean"``), ``w_i = weight[target_i]``; the mean only for batches
        whose weights do not all vanish."""
        # One fused kernel instead of per-example losses, a gather and a
        # product: the unweighted training step is the hot path, and each
        # separate small op costs tens of microseconds between its kernels.
        return F.cross_entropy(
            self._adjust(input, target), target, weight=self.weight, reduction=reduction
        )

    def _weights_positive(self) -> bool:
        """Whether every class weight is > 0, re-read only when ``weight`` changed."""
        # Keyed on the tensor and its in-place version counter, so that DRW's
        # copy_ into the buffer, load_state_dict and .to() are all noticed
        # without reading the buffer (a device sync) on every batch.
        weight = self.weight
        seen, version, positive = self._positive_for
        if seen is not weight or version != weight._version:
            positive = bool((weight > 0).all())
            self._positive_for = (weight, weight._version, positive)
        return positive

    def forward(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        sample_weight: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Compute the loss.

        Parameters
        ----------
        input : torch.Tensor of shape (n_samples, n_classes)
            Unnormalised logits.
        target : torch.Tensor of shape (n_samples,)
            Integer class indices in ``0..n_classes-1``.
        sample_weight : torch.Tensor of shape (n_samples,), default=None
            Optional per-example weights, multiplied with ``weight[target]``.

        Returns
        -------
        loss : torch.Tensor
            A scalar for ``reduction="mean"`` (the weighted mean
            ``sum(w * l) / sum(w)`` with ``w = weight[target] * sample_weight``,
            0 when every ``w`` is 0)
            and ``"sum"`` (``sum(w * l)``); the weighted per-example losses
            ``w * l`` of shape (n_samples,) for ``"none"``.

        Examples
        --------
        >>> import torch
        >>> from ldam_sklearn.losses import CrossEntropyLoss
        >>> loss_fn = CrossEntropyLoss([90, 10], weight=[1.0, 9.0], reduction="none")
        >>> logits = torch.zeros(3, 2)
        >>> target = torch.tensor([0, 1, 1])
        >>> loss_fn(logits, target, sample_weight=torch.tensor([1.0, 1.0, 0.0]))
        tensor([0.6931, 6.2383, 0.0000])
        """
        if input.ndim != 2 or input.shape[1] != self.n_classes:
            raise ValueError(
                f"input must be logits of shape (n_samples, {self.n_classes}) "
                f"to match class_counts, got {tuple(input.shape)}."
            )
        if target.shape != input.shape[:1]:
            raise ValueError(
                f"target must have shape ({input.shape[0]},), one class index per "
                f"row of input, got {tuple(target.shape)}."
            )
        if target.is_floating_point():
            raise ValueError(f"target must hold integer class indices, got dtype {target.dtype}.")
        # gather/cross_entropy need int64 indices; this is a no-op for them.
        target = target.long()
        if sample_weight is None and self.reduction != "none":
            if self.reduction == "mean" and self._weights_positive():
                return self._class_weighted_loss(input, target, "mean")
            total = self._class_weighted_loss(input, target, "sum")
            if self.reduction == "sum":
                return total
            return total / _clamped(self.weight[target].sum())
        losses = self._per_example_loss(input, target)
        weights = self.weight[target].to(losses.dtype)
        if sample_weight is not None:
            sample_weight = torch.as_tensor(sample_weight, dtype=losses.dtype, device=losses.device)
            if sample_weight.shape != target.shape:
                raise ValueError(
                    f"sample_weight must have shape {tuple(target.shape)}, like "
                    f"target, got {tuple(sample_weight.shape)}."
                )
            weights = weights * sample_weight
        weighted = losses * weights
        if self.reduction == "none":
            return weighted
        if self.reduction == "sum":
            return weighted.sum()
        return weighted.sum() / _clamped(weights.sum())


class CrossEntropyLoss(_ClassWeightedLoss):
    """Softmax cross-entropy with optional per-class and per-sample weights.

    The plain baseline of the family; ``class_counts`` only sizes and validates
    the ``weight`` buffer, so that a DRW schedule can re-weight it like the
    other losses.

    Parameters
    ----------
    class_counts : array-like or torch.Tensor of shape (n_classes,)
        Number of training samples of each class; every count must be > 0.
    weight : array-like or torch.Tensor of shape (n_classes,), default=None
        Per-class weights (ones when None).  Stored as the float32 buffer
        ``weight``, which may be overwritten in place with
        ``loss.weight.copy_(new_weight)``.
    reduction : {"mean", "sum", "none"}, default="mean"
        ``"mean"`` is the weighted mean, as in
        :func:`torch.nn.functional.cross_entropy` with ``weight``.

    Attributes
    ----------
    n_classes : int
        Number of classes.
    weight : torch.Tensor of shape (n_classes,)
        Per-class weight buffer.

    See Also
    --------
    LDAMLoss, FocalLoss, LogitAdjustedLoss, BalancedSoftmaxLoss

    References
    ----------
    .. [1] K. Cao, C. Wei, A. Gaidon, N. Arechiga and T. Ma, "Learning
       Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
       NeurIPS 2019, arXiv:1906.07413 (ERM, CE-DRW and CE-DRS are its
       baselines with this loss).
    .. [2] Y. Cui, M. Jia, T.-Y. Lin, Y. Song and S. Belongie, "Class-Balanced
       Loss Based on Effective Number of Samples", CVPR 2019 (class-balanced
       ``weight``).

    Examples
    --------
    >>> import torch
    >>> from ldam_sklearn.losses import CrossEntropyLoss
    >>> loss_fn = CrossEntropyLoss([100, 10, 1])
    >>> logits = torch.zeros(4, 3)
    >>> target = torch.tensor([0, 1, 2, 2])
    >>> round(loss_fn(logits, target).item(), 4)  # log(3)
    1.0986
    >>> CrossEntropyLoss([100, 10, 1], reduction="none")(logits, target).shape
    torch.Size([4])
    """


class LDAMLoss(_ClassWeightedLoss):
    """Label-distribution-aware margin (LDAM) loss.

    ``loss(z, y) = CE(s * (z - Delta_y * onehot(y)), y)``: the per-class margin
    ``Delta_j`` (see :func:`ldam_margins`) is subtracted from the true-class
    logit only, then all logits are scaled by ``s``.  Combine with
    :func:`class_balanced_weights` late in training for LDAM-DRW.

    Cao et al. pair this loss with a cosine ("normed") last layer whose outputs
    lie in [-1, 1]; the scale ``s`` is applied here only, so a prediction
    function must apply the same ``s`` before its softmax.

    Parameters
    ----------
    class_counts : array-like or torch.Tensor of shape (n_classes,)
        Number of training samples of each class; every count must be > 0.
    max_m : float, default=0.5
        Margin of the rarest class, >= 0.
    s : float, default=30.0
        Logit scale, > 0.
    weight : array-like or torch.Tensor of shape (n_classes,), default=None
        Per-class weights (ones when None); stored as the float32 buffer
        ``weight``, which DRW overwrites in place.
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-example losses are combined; ``"mean"`` is the weighted mean.

    Attributes
    ----------
    n_classes : int
        Number of classes.
    weight : torch.Tensor of shape (n_classes,)
        Per-class weight buffer.
    margins : torch.Tensor of shape (n_classes,)
        Per-class margins buffer.
    max_m, s : float
        The hyperparameters.

    References
    ----------
    .. [1] K. Cao, C. Wei, A. Gaidon, N. Arechiga and T. Ma, "Learning
       Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
       NeurIPS 2019, arXiv:1906.07413.

    Examples
    --------
    >>> import torch
    >>> from ldam_sklearn.losses import LDAMLoss
    >>> loss_fn = LDAMLoss([10000, 625, 16], max_m=0.5, s=30.0)
    >>> loss_fn.margins
    tensor([0.1000, 0.2000, 0.5000])
    >>> logits = torch.zeros(2, 3)
    >>> round(loss_fn(logits, torch.tensor([0, 2])).item(), 4)
    9.7054
    """

    margins: torch.Tensor
    _hyperparameters = ("max_m", "s")

    def __init__(
        self,
        class_counts: npt.ArrayLike | torch.Tensor,
        max_m: float = 0.5,
        s: float = 30.0,
        weight: npt.ArrayLike | torch.Tensor | None = None,
        reduction: str = "mean",
    ) -> None:
        self.max_m = _check_hyperparameter("max_m", max_m)
        self.s = _check_hyperparameter("s", s, positive=True)
        super().__init__(class_counts, weight=weight, reduction=reduction)

    def _init_class_tensors(self, counts: torch.Tensor) -> None:
        # Derived from the class counts, so kept out of the state_dict.
        self.register_buffer("margins", ldam_margins(counts, self.max_m), persistent=False)

    def _adjust(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # scatter_add touches the true-class column only, without building a
        # one-hot matrix.
        true_class_margin = self.margins.to(input.dtype)[target].unsqueeze(1)
        return self.s * input.scatter_add(1, target.unsqueeze(1), -true_class_margin)


class FocalLoss(_ClassWeightedLoss):
    """Focal loss ``-(1 - p_t) ** gamma * log(p_t)``.

    ``p_t`` is the softmax probability of the true class.  Both ``log(p_t)``
    and ``1 - p_t`` are computed from ``log_softmax``, so the loss and its
    gradient stay finite for every ``gamma >= 0`` and for extreme logits such
    as 1e4 (where the official LDAM code returns NaN).  ``gamma = 0`` is the
    cross-entropy.  With ``weight=class_balanced_weights(...)`` this is the
    class-balanced focal loss of Cui et al.

    Parameters
    ----------
    class_counts : array-like or torch.Tensor of shape (n_classes,)
        Number of training samples of each class; every count must be > 0.
    gamma : float, default=1.0
        Focusing parameter, >= 0.
    weight : array-like or torch.Tensor of shape (n_classes,), default=None
        Per-class weights (ones when None); stored as the float32 buffer
        ``weight``, which DRW overwrites in place.
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-example losses are combined; ``"mean"`` is the weighted mean.

    Attributes
    ----------
    n_classes : int
        Number of classes.
    weight : torch.Tensor of shape (n_classes,)
        Per-class weight buffer.
    gamma : float
        The focusing parameter.

    References
    ----------
    .. [1] T.-Y. Lin, P. Goyal, R. Girshick, K. He and P. Dollar, "Focal Loss
       for Dense Object Detection", ICCV 2017, arXiv:1708.02002.
    .. [2] Y. Cui, M. Jia, T.-Y. Lin, Y. Song and S. Belongie, "Class-Balanced
       Loss Based on Effective Number of Samples", CVPR 2019.

    Examples
    --------
    >>> import torch
    >>> from ldam_sklearn.losses import FocalLoss
    >>> loss_fn = FocalLoss([100, 10], gamma=2.0, reduction="none")
    >>> logits = torch.tensor([[2.0, 0.0], [1e4, -1e4]])
    >>> loss_fn(logits, torch.tensor([0, 1]))
    tensor([1.8036e-03, 2.0000e+04])
    """

    _hyperparameters = ("gamma",)

    def __init__(
        self,
        class_counts: npt.ArrayLike | torch.Tensor,
        gamma: float = 1.0,
        weight: npt.ArrayLike | torch.Tensor | None = None,
        reduction: str = "mean",
    ) -> None:
        self.gamma = _check_hyperparameter("gamma", gamma)
        super().__init__(class_counts, weight=weight, reduction=reduction)

    def _per_example_loss(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        log_pt = F.log_softmax(input, dim=1).gather(1, target.unsqueeze(1)).squeeze(1)
        # expm1 avoids the cancellation in 1 - exp(log_pt) as p_t -> 1.  The
        # clamp keeps pow's gradient finite at 1 - p_t == 0 (0 * inf for
        # gamma < 1, which is how the official LDAM focal loss goes NaN); below
        # it the modulating factor gets zero gradient, its true limit there.
        one_minus_pt = -torch.expm1(log_pt)
        tiny = torch.finfo(one_minus_pt.dtype).tiny
        return -one_minus_pt.clamp(min=tiny).pow(self.gamma) * log_pt

    def _class_weighted_loss(
        self, input: torch.Tensor, target: torch.Tensor, reduction: str
    ) -> torch.Tensor:
        weights = self.weight[target]
        total = (self._per_example_loss(input, target) * weights).sum()
        return total if reduction == "sum" else total / weights.sum()


class LogitAdjustedLoss(_ClassWeightedLoss):
    """Logit-adjusted softmax cross-entropy ``CE(z + tau * log(pi), y)``.

    ``pi = class_counts / class_counts.sum()`` are the training class priors.
    Adding ``tau * log(pi)`` during training makes the network's raw logits
    approximate a balanced-error-optimal scorer.  For the post-hoc variant,
    train with plain cross-entropy and call :meth:`adjust_logits_posthoc` on
    the logits at prediction time.

    Parameters
    ----------
    class_counts : array-like or torch.Tensor of shape (n_classes,)
        Number of training samples of each class; every count must be > 0.
    tau : float, default=1.0
        Adjustment strength, >= 0; ``tau = 0`` is plain cross-entropy.
    weight : array-like or torch.Tensor of shape (n_classes,), default=None
        Per-class weights (ones when None); stored as the float32 buffer
        ``weight``, which DRW overwrites in place.
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-example losses are combined; ``"mean"`` is the weighted mean.

    Attributes
    ----------
    n_classes : int
        Number of classes.
    weight : torch.Tensor of shape (n_classes,)
        Per-class weight buffer.
    log_prior : torch.Tensor of shape (n_classes,)
        ``log(pi)`` buffer.
    tau : float
        The adjustment strength.

    References
    ----------
    .. [1] A. K. Menon, S. Jayasumana, A. S. Rawat, H. Jain, A. Veit and
       S. Kumar, "Long-tail learning via logit adjustment", ICLR 2021,
       arXiv:2007.07314.

    Examples
    --------
    >>> import torch
    >>> from ldam_sklearn.losses import LogitAdjustedLoss
    >>> loss_fn = LogitAdjustedLoss([90, 10], tau=1.0)
    >>> loss_fn.log_prior.exp()
    tensor([0.9000, 0.1000])
    >>> logits = torch.zeros(2, 2)
    >>> round(loss_fn(logits, torch.tensor([0, 1])).item(), 4)
    1.204
    >>> loss_fn.adjust_logits_posthoc(logits).softmax(dim=1)
    tensor([[0.1000, 0.9000],
            [0.1000, 0.9000]])
    """

    log_prior: torch.Tensor
    _hyperparameters = ("tau",)

    def __init__(
        self,
        class_counts: npt.ArrayLike | torch.Tensor,
        tau: float = 1.0,
        weight: npt.ArrayLike | torch.Tensor | None = None,
        reduction: str = "mean",
    ) -> None:
        self.tau = _check_hyperparameter("tau", tau)
        super().__init__(class_counts, weight=weight, reduction=reduction)

    def _init_class_tensors(self, counts: torch.Tensor) -> None:
        # Derived from the class counts, so kept out of the state_dict.
        log_prior = (counts / counts.sum()).log().to(torch.float32)
        self.register_buffer("log_prior", log_prior, persistent=False)

    def _adjust(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return input + self.tau * self.log_prior.to(input.dtype)

    def adjust_logits_posthoc(self, logits: torch.Tensor) -> torch.Tensor:
        """Post-hoc logit adjustment ``logits - tau * log(pi)``.

        Use on the logits of a model trained with plain cross-entropy: the
        arg-max of the result targets the balanced error.

        Parameters
        ----------
        logits : torch.Tensor of shape (n_samples, n_classes)
            Unnormalised logits.

        Returns
        -------
        adjusted : torch.Tensor of shape (n_samples, n_classes)
            The adjusted logits.

        References
        ----------
        .. [1] A. K. Menon, S. Jayasumana, A. S. Rawat, H. Jain, A. Veit and
           S. Kumar, "Long-tail learning via logit adjustment", ICLR 2021,
           arXiv:2007.07314.

        Examples
        --------
        >>> import torch
        >>> from ldam_sklearn.losses import LogitAdjustedLoss
        >>> loss_fn = LogitAdjustedLoss([80, 20], tau=1.0)
        >>> loss_fn.adjust_logits_posthoc(torch.tensor([[1.0, 0.0]])).argmax(dim=1)
        tensor([1])
        """
        return logits - self.tau * self.log_prior.to(logits.dtype)


class BalancedSoftmaxLoss(LogitAdjustedLoss):
    """Balanced softmax cross-entropy ``CE(z + log(n), y)``.

    ``n`` are the per-class training counts.  Since softmax ignores a constant
    shift of the logits, this is :class:`LogitAdjustedLoss` with ``tau = 1``
    (``log(n) = log(pi) + log(N)``), which is how it is implemented.

    Parameters
    ----------
    class_counts : array-like or torch.Tensor of shape (n_classes,)
        Number of training samples of each class; every count must be > 0.
    weight : array-like or torch.Tensor of shape (n_classes,), default=None
        Per-class weights (ones when None); stored as the float32 buffer
        ``weight``, which DRW overwrites in place.
    reduction : {"mean", "sum", "none"}, default="mean"
        How per-example losses are combined; ``"mean"`` is the weighted mean.

    Attributes
    ----------
    n_classes : int
        Number of classes.
    weight : torch.Tensor of shape (n_classes,)
        Per-class weight buffer.
    log_prior : torch.Tensor of shape (n_classes,)
        ``log(n / N)`` buffer.
    tau : float
        Always 1.0.

    References
    ----------
    .. [1] J. Ren, C. Yu, S. Sheng, X. Ma, H. Zhao, S. Yi and H. Li, "Balanced
       Meta-Softmax for Long-Tailed Visual Recognition", NeurIPS 2020,
       arXiv:2007.10740.

    Examples
    --------
    >>> import torch
    >>> from ldam_sklearn.losses import BalancedSoftmaxLoss
    >>> loss_fn = BalancedSoftmaxLoss([90, 10], reduction="none")
    >>> loss_fn(torch.zeros(2, 2), torch.tensor([0, 1]))
    tensor([0.1054, 2.3026])
    """

    def __init__(
        self,
        class_counts: npt.ArrayLike | torch.Tensor,
        weight: npt.ArrayLike | torch.Tensor | None = None,
        reduction: str = "mean",
    ) -> None:
        super().__init__(class_counts, tau=1.0, weight=weight, reduction=reduction)
