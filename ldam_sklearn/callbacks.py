"""skorch callbacks: training schedules and the history entries they record."""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from skorch.callbacks import Callback, GradientNormClipping

from .data import unpack_target
from .losses import class_balanced_weights

__all__ = [
    "BalancedAccuracy",
    "warn_single_class",
    "balanced_accuracy",
    "ClassBalancing",
    "MetaWeightStats",
    "NonFiniteGuard",
    "SparseGradientNormClipping",
    "WarmupStepLR",
    "switch_epoch",
]


class BalancedAccuracy(Callback):
    """Record balanced accuracy of each epoch's batches in the history.

    Uses the predictions the training step already made (no extra forward
    pass), so ``train_bacc`` reflects the model as it changed during the
    epoch, like ``train_loss``. ``valid_bacc`` is recorded when the net holds
    out a validation split. Balanced accuracy is the mean per-class recall
    [1]_; the callback is a skorch callback [2]_.

    Parameters
    ----------
    warn_single_class : bool, default=True
        At the end of training, warn (:func:`warn_single_class`) when the
        last epoch predicted one class for every training row.

    Attributes
    ----------
    _n_classes : int
        Number of classes of the net being trained; set by ``on_epoch_begin``.
    _rows : dict of bool to torch.Tensor of shape (2, n_rows)
        True (row 0) and predicted (row 1) class indices of the epoch's
        training (``True``) and validation (``False``) batches, counted at
        the epoch's end (internal state, one buffer per epoch).
    _filled : dict of bool to int
        Number of columns of ``_rows`` written so far in the epoch.
    _expected : dict of bool to int
        Rows of the epoch's training and validation datasets: the size the
        buffers start with.
    warn_single_class : bool
        The ``warn_single_class`` parameter.
    _predicted_counts : torch.Tensor of shape (n_classes,) or None
        How often each class was predicted in the last training epoch;
        ``None`` before the first epoch of a fit.

    References
    ----------
    .. [1] K. H. Brodersen, C. S. Ong, K. E. Stephan and J. M. Buhmann, "The
       balanced accuracy and its posterior distribution", ICPR 2010,
       pp. 3121-3124.
    .. [2] M. Tietz, T. J. Fan, D. Nouri, B. Bossan and skorch Developers,
       "skorch: A scikit-learn compatible neural network library that uses
       PyTorch", 2017, https://skorch.readthedocs.io (callbacks:
       https://skorch.readthedocs.io/en/stable/user/callbacks.html).

    Examples
    --------
    >>> from ldam_sklearn import LDAMDRWClassifier
    >>> from sklearn.datasets import load_iris
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = LDAMDRWClassifier(recipe="paper", max_epochs=3, random_state=0).fit(X, y)
    >>> len(clf.history[:, "train_bacc"])
    3
    """

    def __init__(self, warn_single_class: bool = True):
        self.warn_single_class = warn_single_class

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        self._n_classes = len(net.classes_)
        self._expected = {True: _len(dataset_train), False: _len(dataset_valid)}
        self._rows = {}
        self._filled = {True: 0, False: 0}

    def on_batch_end(self, net, batch=None, training=False, y_pred=None, **kwargs):
        # One argmax per batch, written into a buffer of the whole epoch; the
        # counting waits for the epoch's end. Between the kernels of a CPU
        # training step every small op costs tens of microseconds, and
        # counting per batch took 5 % of an epoch. Keeping each batch's two
        # small tensors in a list instead interleaved them with the step's
        # large temporaries in glibc's heap, which then kept getting fresh
        # pages: LDAM-DRW at 200000 x 100 took 40,000 to 58,000 page faults
        # per epoch, and about a fifth longer per epoch (docs/benchmarks.md).
        labels, _ = unpack_target(batch[1])
        start = self._filled[training]
        end = start + len(labels)
        rows = self._buffer(training, end, y_pred.device)
        rows[0, start:end] = labels
        if y_pred.ndim == 3:
            # Packed members (batch, member, class): their mean output.
            y_pred = y_pred.mean(dim=1)
        torch.argmax(y_pred.detach(), dim=1, out=rows[1, start:end])
        self._filled[training] = end

    def _buffer(self, training: bool, needed: int, device) -> torch.Tensor:
        """The phase's buffer, with at least ``needed`` columns."""
        rows = self._rows.get(training)
        if rows is None or rows.shape[1] < needed:
            # Sized to the epoch's dataset; an iterator that yields more rows
            # than the dataset holds doubles it.
            size = max(needed, self._expected[training] if rows is None else 2 * rows.shape[1])
            grown = torch.empty((2, size), dtype=torch.long, device=device)
            if rows is not None:
                grown[:, : rows.shape[1]] = rows
            self._rows[training] = rows = grown
        return rows

    def on_epoch_end(self, net, **kwargs):
        k = self._n_classes
        for training, key in ((True, "train_bacc"), (False, "valid_bacc")):
            if filled := self._filled[training]:
                labels, predicted = self._rows[training][:, :filled]
                cells = torch.bincount(labels * k + predicted, minlength=k * k).cpu().view(k, k)
                net.history.record(key, balanced_accuracy(cells))
                if training:
                    self._predicted_counts = cells.sum(dim=0)
        self._rows = {}
        self._filled = {True: 0, False: 0}

    def on_train_begin(self, net, **kwargs):
        self._predicted_counts = None

    def on_train_end(self, net, **kwargs):
        counts = self._predicted_counts
        if not self.warn_single_class or counts is None or int((counts > 0).sum()) != 1:
            return
        # The counts are of the last complete epoch, which is not the last
        # row of the history when an interrupt cut the last epoch short.
        losses = [row["train_loss"] for row in net.history if "train_loss" in row]
        warn_single_class(net, int(counts.argmax()), f"training loss {losses[-1]:.4g}")


def warn_single_class(net, index: int, detail: str) -> None:
    """Warn that a fitted net predicts the class ``classes_[index]`` for every training row.

    Parameters
    ----------
    net : BaseNetClassifier
        The fitted estimator.
    index : int
        Position of the predicted class in ``net.classes_``.
    detail : str
        Shown in parentheses after the class, e.g. the training loss.

    Returns
    -------
    None
        The warning is a :class:`sklearn.exceptions.ConvergenceWarning`.

    References
    ----------
    .. [1] scikit-learn developers, "sklearn.exceptions.ConvergenceWarning",
       https://scikit-learn.org/stable/modules/generated/sklearn.exceptions.ConvergenceWarning.html.

    Examples
    --------
    >>> import warnings
    >>> from types import SimpleNamespace
    >>> net = SimpleNamespace(classes_=np.array(["ham", "spam"]))
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_single_class(net, 0, "training loss 3.63")
    >>> print(caught[0].message)  # doctest: +ELLIPSIS
    SimpleNamespace predicted class 'ham' for every training row (training loss 3.63): ...
    """
    label = np.asarray(net.classes_)[[index]].tolist()[0]
    warnings.warn(
        f"{type(net).__name__} predicted class {label!r} for every training row ({detail}): "
        "the network has not learned to tell the classes apart. Train longer "
        "(max_epochs), lower lr, or check the features' scale.",
        ConvergenceWarning,
        stacklevel=3,
    )


def _len(dataset) -> int:
    return 0 if dataset is None else len(dataset)


def balanced_accuracy(confusion: torch.Tensor) -> float:
    """Balanced accuracy from a confusion matrix (rows: true, columns: predicted).

    The mean recall over the classes that occur [1]_, as
    :func:`sklearn.metrics.balanced_accuracy_score` computes it [2]_.

    Parameters
    ----------
    confusion : torch.Tensor of shape (n_classes, n_classes)
        Counts: row ``i``, column ``j`` holds the examples of class ``i``
        predicted as class ``j``. Rows that sum to zero (classes absent from
        the data) are left out of the mean.

    Returns
    -------
    score : float
        The balanced accuracy, in ``[0, 1]``.

    References
    ----------
    .. [1] K. H. Brodersen, C. S. Ong, K. E. Stephan and J. M. Buhmann, "The
       balanced accuracy and its posterior distribution", ICPR 2010,
       pp. 3121-3124.
    .. [2] scikit-learn documentation, "sklearn.metrics.balanced_accuracy_score",
       https://scikit-learn.org/stable/modules/model_evaluation.html#balanced-accuracy-score.

    Examples
    --------
    >>> import torch
    >>> balanced_accuracy(torch.tensor([[3, 1], [0, 2]]))
    0.875
    """
    support = confusion.sum(dim=1)
    present = support > 0
    recall = confusion.diagonal()[present].double() / support[present]
    return float(recall.mean())


def switch_epoch(start: float, max_epochs: int) -> int:
    """Epoch index at which a deferred schedule switches on.

    ``start`` is a fraction of ``max_epochs`` when it is a float in ``[0, 1]``,
    else an epoch number. The deferred schedules of Cao et al. [1]_ switch at
    epoch 160 of 200.

    Parameters
    ----------
    start : float or int
        A fraction of ``max_epochs`` (a float in ``[0, 1]``) or an epoch
        number (an int, or a float above 1).
    max_epochs : int
        The training budget the fraction refers to.

    Returns
    -------
    epoch : int
        The 0-based epoch from which the schedule is on.

    References
    ----------
    .. [1] K. Cao, C. Wei, A. Gaidon, N. Arechiga and T. Ma, "Learning
       Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
       NeurIPS 2019, arXiv:1906.07413.

    Examples
    --------
    >>> switch_epoch(0.8, 200), switch_epoch(160, 200)
    (160, 160)
    """
    if isinstance(start, float) and 0.0 <= start <= 1.0:
        return int(round(start * max_epochs))
    return int(start)


class WarmupStepLR(Callback):
    """Linear learning-rate warm-up, then step decays late in training.

    The recipe of Cao et al. [1]_ for CIFAR: warm up linearly over the first
    5 of 200 epochs (gradual warm-up as in Goyal et al. [2]_), multiply the
    rate by 0.01 at epoch 160 and by 0.0001 at epoch 180. Here the epochs
    are fractions of ``max_epochs`` so the recipe scales with the budget.
    The epoch is read from the net's history, so ``partial_fit`` and a
    reloaded checkpoint continue the schedule.

    Parameters
    ----------
    warmup : float, default=0.025
        Fraction of ``max_epochs`` (at least one epoch) of linear warm-up.
    milestones : tuple of (float, float) pairs, default=((0.8, 0.01), (0.9, 1e-4))
        ``(fraction of max_epochs, factor)``: from that epoch on the base rate
        is multiplied by ``factor``.

    Attributes
    ----------
    warmup : float
        The ``warmup`` parameter.
    milestones : tuple of (float, float) pairs
        The ``milestones`` parameter.

    References
    ----------
    .. [1] K. Cao, C. Wei, A. Gaidon, N. Arechiga and T. Ma, "Learning
       Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
       NeurIPS 2019, arXiv:1906.07413.
    .. [2] P. Goyal et al., "Accurate, Large Minibatch SGD: Training ImageNet
       in 1 Hour", 2017, arXiv:1706.02677.

    Examples
    --------
    >>> WarmupStepLR().factor(epoch=0, max_epochs=200)
    0.2
    >>> WarmupStepLR().factor(epoch=170, max_epochs=200)
    0.01
    """

    def __init__(self, warmup: float = 0.025, milestones=((0.8, 0.01), (0.9, 1e-4))):
        self.warmup = warmup
        self.milestones = milestones

    def factor(self, epoch: int, max_epochs: int) -> float:
        """Multiplier of the base learning rate at a 0-based ``epoch``."""
        warmup_epochs = max(1, switch_epoch(self.warmup, max_epochs))
        factor = min(1.0, (epoch + 1) / warmup_epochs)
        for start, decay in self.milestones:
            if epoch >= switch_epoch(start, max_epochs):
                factor = decay
        return factor

    def on_epoch_begin(self, net, **kwargs):
        factor = self.factor(len(net.history) - 1, net.max_epochs)
        for group in net.optimizer_.param_groups:
            group.setdefault("initial_lr", group["lr"])
            group["lr"] = group["initial_lr"] * factor
        net.history.record("lr", net.optimizer_.param_groups[0]["lr"])


class _LoggedWeights(list):
    """Per-class weights: a list, which the ``verbose`` epoch log shows as ``min..max``.

    skorch's ``PrintLog`` (through ``tabulate``, which formats cells with
    ``format``) would print the whole list, one float of 18 digits per class,
    and push the columns after it out of line. ``str``, ``repr`` and the
    values are the list's.
    """

    def __format__(self, spec: str) -> str:
        return format(f"{min(self):.3f}..{max(self):.3f}", spec)


class ClassBalancing(Callback):
    """Re-weight the loss or re-sample the batches by class, from an epoch on.

    With ``start > 0`` this is the deferred re-weighting (DRW) or deferred
    re-sampling (DRS) of Cao et al. [1]_; with ``start=0`` plain
    class-balanced re-weighting or re-sampling. Re-weighting copies
    class-balanced weights (Cui et al. [2]_) into the criterion's ``weight``
    buffer in place, so the optimizer and its momentum are untouched.
    Re-sampling makes the batch iterator draw rows with probability
    proportional to ``1 / n_{y_i}``.

    Each epoch records ``balancing`` (``"none"``, ``"reweight"`` or
    ``"resample"``) and ``class_weights`` in the history.

    Parameters
    ----------
    mode : {"reweight", "resample"}
    start : float or int, default=0.8
        Switch epoch: a fraction of ``max_epochs`` or an epoch number.
    beta : float, default=0.9999
        Effective-number hyper-parameter of the weights.

    Attributes
    ----------
    mode : {"reweight", "resample"}
        The ``mode`` parameter.
    start : float or int
        The ``start`` parameter.
    beta : float
        The ``beta`` parameter.

    References
    ----------
    .. [1] K. Cao, C. Wei, A. Gaidon, N. Arechiga and T. Ma, "Learning
       Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
       NeurIPS 2019, arXiv:1906.07413.
    .. [2] Y. Cui, M. Jia, T.-Y. Lin, Y. Song and S. Belongie, "Class-Balanced
       Loss Based on Effective Number of Samples", CVPR 2019, arXiv:1901.05555.

    Examples
    --------
    >>> ClassBalancing("reweight", start=0.8).mode
    'reweight'
    """

    def __init__(self, mode: str, start: float = 0.8, beta: float = 0.9999):
        self.mode = mode
        self.start = start
        self.beta = beta

    def on_train_begin(self, net, **kwargs):
        if self.mode == "reweight" and not isinstance(
            getattr(net.criterion_, "weight", None), torch.Tensor
        ):
            raise ValueError(
                f"Re-weighting needs a criterion with a per-class `weight` buffer; "
                f"{type(net.criterion_).__name__} has none. Use a loss from "
                "ldam_sklearn.losses or schedule='none'."
            )

    def on_epoch_begin(self, net, dataset_train=None, **kwargs):
        active = len(net.history) - 1 >= switch_epoch(self.start, net.max_epochs)
        counts = torch.as_tensor(net.class_counts_, dtype=torch.float32)
        weights = torch.ones_like(counts)
        if self.mode == "reweight" and active:
            weights = class_balanced_weights(counts, self.beta)
        if self.mode == "reweight":
            net.criterion_.weight.copy_(weights)
        if self.mode == "resample":
            labels = dataset_train.y.cpu()
            dataset_train.draw_weights = (1.0 / counts)[labels] if active else None
        net.history.record("balancing", self.mode if active else "none")
        net.history.record("class_weights", _LoggedWeights(weights.tolist()))


class MetaWeightStats(Callback):
    """Record how a meta-reweighting estimator spreads its example weights.

    Reads the ``weights`` and the ``meta_loss`` that the training step of
    :class:`~ldam_sklearn.L2RWClassifier` (learning to reweight examples
    [1]_) or :class:`~ldam_sklearn.meta_weight_net.MetaWeightNetClassifier`
    returns, and records per epoch, with each weight scaled by its batch's
    size so that 1.0 is the uniform weighting of plain training:

    - ``mean_weight``: mean scaled weight of the epoch's examples;
    - ``weight_spread``: the standard deviation of the scaled weights within
      a batch, averaged over the epoch's steps (0 when every example of a
      batch weighs the same);
    - ``meta_weight_per_class``: mean scaled weight of each class's
      examples (the ``verbose`` log shows its ``min..max``);
    - ``meta_loss``: mean over the steps of the meta-set loss the step
      computed (L2RW's at the current parameters, Meta-Weight-Net's at its
      look-ahead point);
    - ``zero_weight_fraction``: fraction of examples that got weight 0;
    - ``zero_weight_steps``: steps in which every weight was 0, so the batch
      added no gradient.

    A step only keeps references to its weights, labels and meta loss; the
    statistics are computed once at the epoch's end (one device sync per
    epoch, no small kernels per step).

    Attributes
    ----------
    _weights, _labels, _meta_losses : list of torch.Tensor
        The epoch's batches so far (internal state, reset by
        ``on_epoch_begin`` and emptied by ``on_epoch_end``).

    References
    ----------
    .. [1] M. Ren, W. Zeng, B. Yang and R. Urtasun, "Learning to Reweight
       Examples for Robust Deep Learning", ICML 2018, arXiv:1803.09050.

    Examples
    --------
    >>> MetaWeightStats().on_epoch_begin(None)
    """

    def on_epoch_begin(self, net, **kwargs):
        self._weights, self._labels, self._meta_losses = [], [], []

    def on_batch_end(self, net, batch=None, training=False, weights=None, meta_loss=None, **kwargs):
        if not training or weights is None:
            return
        self._weights.append(weights.detach())
        self._labels.append(unpack_target(batch[1])[0])
        if meta_loss is not None:
            self._meta_losses.append(meta_loss.detach())

    def on_epoch_end(self, net, **kwargs):
        if not self._weights:
            return
        sizes = torch.tensor([len(w) for w in self._weights])
        steps = torch.repeat_interleave(torch.arange(len(sizes)), sizes)
        # Scaled by the batch size, so that 1.0 is plain training's weight.
        scaled = torch.cat(self._weights).float().cpu().double() * sizes[steps]
        labels = torch.cat(self._labels).cpu()
        n_classes = len(net.classes_)
        per_class = torch.bincount(labels, weights=scaled, minlength=n_classes) / torch.bincount(
            labels, minlength=n_classes
        ).clamp_min(1)
        step_mean = torch.bincount(steps, weights=scaled) / sizes
        step_var = torch.bincount(steps, weights=(scaled - step_mean[steps]) ** 2) / sizes
        zero = scaled == 0
        net.history.record("mean_weight", float(scaled.mean()))
        net.history.record("weight_spread", float(step_var.sqrt().mean()))
        net.history.record("meta_weight_per_class", _LoggedWeights(per_class.tolist()))
        if self._meta_losses:
            meta_losses = torch.stack(self._meta_losses).float()
            net.history.record("meta_loss", float(meta_losses.mean()))
        net.history.record("zero_weight_fraction", float(zero.double().mean()))
        zero_steps = torch.bincount(steps, weights=zero.double()) == sizes
        net.history.record("zero_weight_steps", int(zero_steps.sum()))
        # Device tensors must not stay in the estimator's pickle.
        self._weights, self._labels, self._meta_losses = [], [], []


class NonFiniteGuard(Callback):
    """Stop training with a clear error when the loss or the parameters stop being finite.

    A diverging learning rate otherwise gives NaN predictions, or, with a
    cosine output layer whose outputs stay bounded while its weights blow
    up, silently useless ones. The batch loss is checked after every step
    (skorch has already synchronised on it to record it); the parameters once
    per epoch, since reading every parameter after each step would cost as
    much as the step itself for wide first layers (sparse text). Non-finite
    parameters give a non-finite loss at the next batch, so the epoch-end
    check is what catches a blow-up in an epoch's last step. On overflow to
    ``inf`` and ``nan`` in numerical optimisation see [1]_; the check runs as
    a skorch callback [2]_.

    Attributes
    ----------
    _batch : int
        Training batches seen in the current epoch, named in the error
        message (internal state, reset by ``on_epoch_begin``).

    References
    ----------
    .. [1] I. Goodfellow, Y. Bengio and A. Courville, "Deep Learning", MIT
       Press, 2016, Section 4.1 "Overflow and Underflow",
       https://www.deeplearningbook.org.
    .. [2] M. Tietz, T. J. Fan, D. Nouri, B. Bossan and skorch Developers,
       "skorch: A scikit-learn compatible neural network library that uses
       PyTorch", 2017, https://skorch.readthedocs.io (callbacks:
       https://skorch.readthedocs.io/en/stable/user/callbacks.html).

    Examples
    --------
    >>> NonFiniteGuard().on_epoch_begin(None)
    """

    def on_epoch_begin(self, net, **kwargs):
        self._batch = 0

    def on_batch_end(self, net, training=False, loss=None, **kwargs):
        if not training:
            return
        self._batch += 1
        # skorch has already synchronised on this value to record it.
        loss = loss.item()
        if not math.isfinite(loss):
            self._fail(net, f"the training loss became {loss} at batch {self._batch}")

    def on_epoch_end(self, net, **kwargs):
        bad = [
            name
            for name, param in net.module_.named_parameters()
            if not bool(torch.isfinite(param).all())
        ]
        if bad:
            self._fail(net, f"parameters {bad} were non-finite after batch {self._batch}")

    @staticmethod
    def _fail(net, what: str):
        lr = net.optimizer_.param_groups[0]["lr"]
        raise FloatingPointError(
            f"Training diverged: {what} in epoch {len(net.history)}. Lower the learning "
            f"rate (lr={lr:g} now) or standardise the features (e.g. StandardScaler)."
        )


class SparseGradientNormClipping(GradientNormClipping):
    """skorch's ``GradientNormClipping`` that also takes sparse gradients.

    ``torch.nn.utils.clip_grad_norm_`` has no kernel for the sparse gradient
    of :class:`~ldam_sklearn.modules.SparseLinear` in torch 2.13; the norm
    is taken over each sparse gradient's coalesced values instead.

    Parameters
    ----------
    gradient_clip_value : float
        Largest norm of all gradients together; of each member's, for a net
        whose module packs ``n_members_`` networks
        (:class:`~ldam_sklearn.LDAMDRWClassifier`): their gradients are
        clipped together to ``gradient_clip_value * sqrt(n_members_)``, the
        norm of that many gradients of norm ``gradient_clip_value``.
    gradient_clip_norm_type : float, default=2
        Order of the norm, as in skorch's callback (``float("inf")`` for the
        largest entry).

    Attributes
    ----------
    gradient_clip_value : float
        As given.
    gradient_clip_norm_type : float
        As given.

    References
    ----------
    .. [1] R. Pascanu, T. Mikolov and Y. Bengio, "On the difficulty of
       training recurrent neural networks", ICML 2013.

    Examples
    --------
    >>> import torch
    >>> w = torch.nn.Parameter(torch.zeros(2))
    >>> w.grad = torch.tensor([3.0, 4.0])
    >>> SparseGradientNormClipping(1.0).on_grad_computed(None, [("w", w)])
    >>> round(float(w.grad.norm()), 4)
    1.0
    """

    def __init__(self, gradient_clip_value: float, gradient_clip_norm_type: float = 2):
        # Both of skorch's parameters, so that get_params and clone (e.g. in
        # GridSearchCV, or an ensemble's members) rebuild the callback.
        super().__init__(
            gradient_clip_value=gradient_clip_value,
            gradient_clip_norm_type=gradient_clip_norm_type,
        )

    def on_grad_computed(self, net, named_parameters, **kwargs):
        grads = [p.grad for _, p in named_parameters if p.grad is not None]
        if not grads:
            return
        order = self.gradient_clip_norm_type
        norms = [
            torch.linalg.vector_norm(g.coalesce().values() if g.is_sparse else g, order)
            for g in grads
        ]
        total = torch.linalg.vector_norm(torch.stack(norms), order)
        limit = self.gradient_clip_value * math.sqrt(getattr(net, "n_members_", 1))
        coef = limit / (total + 1e-6)
        if coef < 1:
            for g in grads:
                g.mul_(coef)
