"""The estimator core shared by every classifier of the package.

:class:`BaseNetClassifier` is a skorch ``NeuralNetClassifier`` that adds what
scikit-learn's estimator contract asks for and skorch leaves out: input
validation, label encoding, a default network sized from the data, a
``random_state``, ``device="auto"`` and a fast tensor-slicing data path.
Subclasses fill in small hooks (``_check_params``, ``_default_module_kwargs``,
``_output_to_logits``) rather than override ``fit``.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import numbers

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    column_or_1d,
    validate_data,
)
from skorch import NeuralNet, NeuralNetClassifier
from skorch.callbacks import (
    Callback,
    EarlyStopping,
    EpochTimer,
    PassthroughScoring,
    PrintLog,
    ProgressBar,
)
from skorch.utils import is_dataset

from .callbacks import BalancedAccuracy, NonFiniteGuard, WarmupStepLR
from .data import ArrayDataset, BatchIterator, unpack_target
from .losses import CrossEntropyLoss
from .modules import MLP, SparseLinear, sparse_input_scale
from .optim import SGD
from .utils.threads import resolve_n_threads, step_macs, torch_threads
from .utils.validation import check_choice, check_int

__all__ = ["BaseNetClassifier", "resolve_device"]

#: SGD with the momentum and weight decay of Cao et al.'s recipe; plain SGD
#: (skorch's default) barely moves in the epoch budgets used on tabular data.
#: torch's SGD for dense gradients, lazy row updates for the sparse gradient
#: of the default network's first layer on sparse input.
SGDMomentum = functools.partial(SGD, momentum=0.9, weight_decay=2e-4)


def _is_default_optimizer(optimizer) -> bool:
    # clone and pickle copy the partial, so identity is not enough.
    return isinstance(optimizer, functools.partial) and (
        optimizer.func is SGDMomentum.func
        and optimizer.args == SGDMomentum.args
        and optimizer.keywords == SGDMomentum.keywords
    )


_DEVICES = ("auto", "cpu", "cuda", "mps")

_PRECISIONS = ("fp32", "bf16")

#: Rows per float64 softmax in predict_proba.
_SOFTMAX_ROWS = 65536

#: Elements of X per block (2 MB) when computing the default MLP's input
#: statistics: blocks that stay in the CPU cache are five times faster.
_STATS_ELEMENTS = 1 << 19


def resolve_device(device) -> torch.device:
    """Turn ``"auto"`` into ``"cuda"`` when available, else ``"cpu"``.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "mps"}, str or torch.device
        The requested device. ``"auto"`` picks CUDA when
        :func:`torch.cuda.is_available`, else the CPU; anything else is
        passed to :class:`torch.device` [1]_ unchanged (``"cuda:1"`` too).

    Returns
    -------
    device : torch.device
        The device to train and predict on.

    References
    ----------
    .. [1] PyTorch documentation, "torch.device",
       https://pytorch.org/docs/stable/tensor_attributes.html#torch-device;
       A. Paszke et al., "PyTorch: An Imperative Style, High-Performance Deep
       Learning Library", NeurIPS 2019, arXiv:1912.01703.

    Examples
    --------
    >>> resolve_device("cpu")
    device(type='cpu')
    >>> resolve_device("auto").type in ("cpu", "cuda")
    True
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class BaseNetClassifier(NeuralNetClassifier):
    """Base class of the package's classifiers; not meant to be used directly.

    Parameters are skorch's (see :class:`skorch.NeuralNetClassifier`) with
    these differences and additions:

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=None
        ``None`` builds :class:`ldam_sklearn.modules.MLP` sized from the data;
        set its options with ``module__hidden_layer_sizes`` etc. For sparse
        training data and an optimizer that supports sparse gradients (the
        default does), its first layer is a
        :class:`~ldam_sklearn.modules.SparseLinear`, whose cost follows the
        non-zeros rather than the number of features
        (``module__sparse_input=False`` keeps ``nn.Linear``, as do the meta
        estimators' ``weight_method="jvp"`` and ``"lookahead"`` and their
        ``base_loss="ldam"``).
    criterion : torch.nn.Module class or instance, default=None
        ``None`` lets the subclass choose. A class whose ``__init__`` takes
        ``class_counts`` receives the training class counts.
    optimizer : torch optimizer class, default=SGD(momentum=0.9, weight_decay=2e-4)
        :class:`ldam_sklearn.optim.SGD`: torch's SGD, plus lazy updates of
        the rows present in a sparse gradient.
    lr : float, default=0.1
    max_epochs : int, default=100
    batch_size : int, default=128
    iterator_train, iterator_valid : default=BatchIterator
        Slice batches from tensors already on the device. A last batch of
        fewer than ``batch_size / 2`` rows joins the one before it
        (``iterator_train__merge_last=False`` keeps it apart).
    dataset : default=ArrayDataset
    train_split : callable or None, default=None
        No internal validation split: a 20 % hold-out would take the rare
        classes' few samples away from training. Use ``early_stopping``.
    verbose : int, default=0
        0: silent; 1: one line per epoch (loss, training balanced accuracy,
        learning rate, duration); 2: also a live bar over each epoch's
        batches (skorch's ``ProgressBar``).
    device : {"auto", "cpu", "cuda", "mps"} or torch.device, default="auto"
        ``"auto"`` trains on CUDA when available, else on the CPU.
    early_stopping : bool, default=False
        Hold out a stratified ``validation_fraction`` of the training data and
        stop when the validation loss has not improved for
        ``n_iter_no_change`` epochs, keeping the best parameters.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling and dropout. Two fits with the
        same integer seed give identical predictions on the CPU.
    lr_schedule : "warmup_step", skorch callback or None, default="warmup_step"
        ``"warmup_step"`` is the learning-rate recipe of Cao et al. [3]_,
        :class:`~ldam_sklearn.callbacks.WarmupStepLR`: linear warm-up, then
        x0.01 at 80 % and x0.0001 at 90 % of the epochs. A skorch callback
        replaces it; ``None`` keeps ``lr`` constant.
    precision : {"fp32", "bf16"}, default="fp32"
        ``"bf16"`` runs the module's forward pass (training and prediction)
        under ``torch.autocast(dtype=torch.bfloat16)``: matrix products in
        bfloat16, losses and probabilities in float32, parameters and
        optimizer state in float32. Worth it on GPUs with bfloat16 tensor
        cores (and CPUs with AMX); elsewhere it is slower than ``"fp32"``.
    n_threads : int or "auto", default="auto"
        PyTorch intra-op threads while ``fit``, ``partial_fit`` and
        ``predict_proba`` run; torch's own setting is restored afterwards.
        ``"auto"`` uses one thread when a training step is small (under
        ``SMALL_STEP_MACS`` multiply-adds: batch size x dense weights, which
        holds one default network on tabular and text data), since extra
        threads mostly wait on each other there and lose their cores on a
        busy machine; larger networks (the five packed members of the dense
        default among them) get one thread per core that other
        processes are not using at the start of the call, never more than
        torch's current setting. An int fixes the count; ``-1`` uses every
        core this process may run on.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in ``fit``, in the order of ``predict_proba``'s columns.
    class_counts_ : ndarray of shape (n_classes,)
        Number of training samples per class.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Defined when ``X`` has string column names.
    device_ : torch.device
        The device the model lives on.
    n_threads_ : int
        The intra-op threads the last ``fit`` or ``partial_fit`` used.
    module_, criterion_, optimizer_, history_
        As in skorch [1]_.

    References
    ----------
    .. [1] M. Tietz, T. J. Fan, D. Nouri, B. Bossan and skorch Developers,
       "skorch: A scikit-learn compatible neural network library that uses
       PyTorch", 2017, https://skorch.readthedocs.io.
    .. [2] L. Buitinck et al., "API design for machine learning software:
       experiences from the scikit-learn project", ECML PKDD Workshop on
       Languages for Data Mining and Machine Learning, 2013, arXiv:1309.0238.
    .. [3] K. Cao, C. Wei, A. Gaidon, N. Arechiga and T. Ma, "Learning
       Imbalanced Datasets with Label-Distribution-Aware Margin Loss",
       NeurIPS 2019, arXiv:1906.07413.

    Examples
    --------
    A subclass chooses its loss through ``_default_criterion``; everything
    else (validation, label encoding, the default MLP, ``random_state``)
    comes from this class and follows scikit-learn's estimator API [2]_.

    >>> from sklearn.datasets import load_iris
    >>> from ldam_sklearn.base import BaseNetClassifier
    >>> from ldam_sklearn.losses import FocalLoss
    >>> class FocalNetClassifier(BaseNetClassifier):
    ...     def _default_criterion(self):
    ...         return FocalLoss, {"gamma": 2.0}
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = FocalNetClassifier(max_epochs=2, random_state=0).fit(X, y)
    >>> type(clf.criterion_).__name__, clf.class_counts_.tolist()
    ('FocalLoss', [50, 50, 50])
    >>> clf.predict_proba(X[:4]).shape
    (4, 3)
    """

    #: Give the default MLP a SparseLinear first layer for sparse training
    #: data when the optimizer supports sparse gradients.
    _sparse_first_layer = True

    def __init__(
        self,
        module=None,
        *,
        criterion=None,
        optimizer=SGDMomentum,
        lr: float = 0.1,
        max_epochs: int = 100,
        batch_size: int = 128,
        iterator_train=BatchIterator,
        iterator_valid=BatchIterator,
        dataset=ArrayDataset,
        train_split=None,
        callbacks=None,
        warm_start: bool = False,
        verbose: int = 0,
        device="auto",
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        random_state=None,
        lr_schedule="warmup_step",
        precision: str = "fp32",
        n_threads: int | str = "auto",
        **kwargs,
    ):
        kwargs.setdefault("iterator_train__shuffle", True)
        super().__init__(
            module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            iterator_train=iterator_train,
            iterator_valid=iterator_valid,
            dataset=dataset,
            train_split=train_split,
            callbacks=callbacks,
            warm_start=warm_start,
            verbose=verbose,
            device=device,
            **kwargs,
        )
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.random_state = random_state
        self.lr_schedule = lr_schedule
        self.precision = precision
        self.n_threads = n_threads

    # -- hooks for subclasses -------------------------------------------------

    def _check_params(self) -> None:
        """Validate hyper-parameters; subclasses extend it with their own."""
        _check_device(self.device)
        check_int("max_epochs", self.max_epochs, minimum=0)
        check_int("batch_size", self.batch_size)
        check_int("n_iter_no_change", self.n_iter_no_change)
        check_choice("precision", self.precision, _PRECISIONS)
        n_threads = self.n_threads
        if not (
            (isinstance(n_threads, str) and n_threads == "auto")
            or (isinstance(n_threads, numbers.Integral) and not isinstance(n_threads, bool))
            and (n_threads == -1 or n_threads >= 1)
        ):
            raise ValueError(f"n_threads must be 'auto', -1 or an integer >= 1, got {n_threads!r}.")
        schedule = self.lr_schedule
        if not (schedule is None or isinstance(schedule, (str, Callback))) or (
            isinstance(schedule, str) and schedule != "warmup_step"
        ):
            raise ValueError(
                f"lr_schedule={schedule!r} is not valid; use 'warmup_step', None "
                "or a skorch callback."
            )
        if not 0 < self.validation_fraction < 1:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction!r}."
            )

    def _default_criterion(self) -> tuple[type, dict]:
        """Criterion class and its arguments, used when ``criterion=None``."""
        return CrossEntropyLoss, {}

    def _default_module_kwargs(self) -> dict:
        """Extra arguments for the default MLP (e.g. its output layer)."""
        return {}

    def _default_weight_decay(self) -> float | None:
        """Weight decay of the default optimizer; ``None`` keeps its 2e-4."""
        return None

    def get_params_for_optimizer(self, prefix, named_parameters):
        """The optimizer's arguments, with :meth:`_default_weight_decay` for the default one.

        A user's ``optimizer__weight_decay``, or any other optimizer, wins.
        """
        args, kwargs = super().get_params_for_optimizer(prefix, named_parameters)
        decay = self._default_weight_decay()
        if decay is not None and _is_default_optimizer(self.optimizer):
            kwargs.setdefault("weight_decay", decay)
        return args, kwargs

    def _training_data(self, dataset: ArrayDataset, fit_params: dict) -> ArrayDataset:
        """Rows to train on; may take (pop) its own entries of ``fit_params``."""
        return dataset

    def _output_to_logits(self, output: torch.Tensor) -> torch.Tensor:
        """Map the module's raw output to the logits ``predict_proba`` softmaxes."""
        return output

    # -- fitting ---------------------------------------------------------------

    def fit(self, X, y, sample_weight=None, **fit_params):
        """Validate the data, initialise the network and train it.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data; cast to float32. CSR/CSC input is never densified.
        y : array-like of shape (n_samples,)
            Class labels of any type (strings, integers, categorical).
        sample_weight : array-like of shape (n_samples,), default=None
            Per-example loss weights.
        **fit_params : dict
            Passed to the module's ``forward``, as in skorch.

        Returns
        -------
        self : object
        """
        reset = not (self.warm_start and self.initialized_)
        dataset = self._validate_fit_data(X, y, sample_weight, reset=reset)
        dataset = self._training_data(dataset, fit_params)
        return self._fit_dataset(dataset, initialize=reset, routing_method="fit", **fit_params)

    def partial_fit(self, X, y, classes=None, sample_weight=None, **fit_params):
        """Train for ``max_epochs`` more epochs without re-initialising.

        Parameters
        ----------
        X, y, sample_weight
            As in :meth:`fit`.
        classes : array-like of shape (n_classes,), default=None
            All labels that may appear; needed on the first call only when a
            class is missing from the first batch of data.
        **fit_params : dict
            Passed to the module's ``forward``.

        Returns
        -------
        self : object
        """
        first = not self.initialized_
        dataset = self._validate_fit_data(X, y, sample_weight, reset=first, classes=classes)
        dataset = self._training_data(dataset, fit_params)
        return self._fit_dataset(
            dataset, initialize=first, routing_method="partial_fit", **fit_params
        )

    def _fit_dataset(self, dataset, *, initialize, routing_method, **fit_params):
        seed = check_random_state(self.random_state).randint(np.iinfo(np.int32).max)
        cuda = [self.device_.index or 0] if self.device_.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda):
            torch.manual_seed(seed)
            self._seed = seed
            if initialize:
                self.initialize()
            self.n_threads_ = self._thread_count()
            with self._skorch_device(), torch_threads(self.n_threads_):
                NeuralNet.partial_fit(
                    self, dataset, None, _routing_method=routing_method, **fit_params
                )
        return self

    def _thread_count(self) -> int:
        macs = step_macs(self.module_, self.batch_size)
        return resolve_n_threads(self.n_threads, macs, ceiling=torch.get_num_threads())

    def _validate_fit_data(self, X, y, sample_weight, *, reset, classes=None):
        self._check_params()
        if y is None:
            raise ValueError(
                f"{type(self).__name__} requires y to be passed, but the target y is None."
            )
        X, y = validate_data(
            self,
            X,
            y,
            reset=reset,
            accept_sparse=("csr", "csc"),
            dtype=np.float32,
            multi_output=True,
            y_numeric=False,
        )
        if type_of_target(y) in ("multilabel-indicator", "multiclass-multioutput"):
            raise ValueError("Multilabel and multioutput targets are not supported.")
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float32, ensure_non_negative=True
            )
        if reset:
            given = classes if classes is not None else self.classes
            self.classes_inferred_ = np.unique(y if given is None else given)
            self.device_ = resolve_device(self.device)
        labels = self.classes_
        y_enc = np.searchsorted(labels, y)
        unknown = (y_enc >= len(labels)) | (labels[np.minimum(y_enc, len(labels) - 1)] != y)
        if unknown.any():
            raise ValueError(
                f"y contains labels {np.unique(y[unknown]).tolist()} that were not seen in the "
                f"first fit (classes_={labels.tolist()}); pass all labels with `classes=` on the "
                "first partial_fit, or refit."
            )
        present = y_enc if sample_weight is None else y_enc[sample_weight > 0]
        if len(np.unique(present)) < 2:
            raise ValueError(
                "Classifier can't train when only one class is present "
                "(counting only samples with a positive sample_weight)."
            )
        if reset:
            self.class_counts_ = np.bincount(y_enc, minlength=len(labels))
            self.n_classes_ = len(labels)
            if not self.class_counts_.all():
                raise ValueError(
                    f"classes {labels[self.class_counts_ == 0].tolist()} have no training "
                    "samples; the class-aware losses need every class's count. Drop those "
                    "labels from `classes` or include samples of them in the first fit."
                )
        if sp.issparse(X) and X.format != "csr":
            X = X.tocsr()
        dataset = self.get_dataset(X, y_enc, sample_weight)
        if reset:
            self._sparse_X = sp.issparse(X)
            self._input_stats = (
                sparse_input_scale(X) if self._sparse_X else _standardization(dataset.X)
            )
        return dataset

    def check_data(self, X, y=None):
        # Data is validated and labels encoded before skorch sees it; skorch's
        # own check would overwrite classes_ with the encoded labels.
        pass

    def get_dataset(self, X, y=None, sample_weight=None):
        """Wrap validated arrays in ``self.dataset`` on the training device."""
        if is_dataset(X):
            return X
        return self.dataset(
            X, y, sample_weight=sample_weight, device=self.device_, **self.get_params_for("dataset")
        )

    def get_split_datasets(self, X, y=None, **fit_params):
        """Hold out a stratified validation split when ``early_stopping=True``."""
        if not self.early_stopping:
            return super().get_split_datasets(X, y, **fit_params)
        labels = X.y.cpu().numpy()
        if np.bincount(labels).min() < 2:
            raise ValueError(
                "early_stopping=True holds out a stratified validation split, which needs "
                "at least 2 samples of every class; set early_stopping=False."
            )
        train_idx, valid_idx = train_test_split(
            np.arange(len(labels)),
            test_size=self.validation_fraction,
            stratify=labels,
            random_state=self._seed,
        )
        return X.subset(train_idx), X.subset(valid_idx)

    def on_epoch_begin(self, net, **kwargs):
        """Start the epoch's history row and seed the epoch's randomness."""
        super().on_epoch_begin(net, **kwargs)
        # Shuffling, dropout and class-balanced draws of epoch k depend on
        # (seed, k) only, so training resumed from a checkpoint at epoch k
        # continues exactly as the uninterrupted run would have.
        torch.manual_seed(self._seed + len(self.history))

    @property
    def _default_callbacks(self):
        callbacks = [
            ("epoch_timer", EpochTimer()),
            ("train_loss", PassthroughScoring(name="train_loss", on_train=True)),
            ("valid_loss", PassthroughScoring(name="valid_loss")),
            ("balanced_accuracy", BalancedAccuracy()),
            ("non_finite_guard", NonFiniteGuard()),
        ]
        if isinstance(self.lr_schedule, Callback):
            callbacks.append(("lr_schedule", self.lr_schedule))
        elif isinstance(self.lr_schedule, str) and self.lr_schedule == "warmup_step":
            callbacks.append(("lr_schedule", WarmupStepLR()))
        if self.early_stopping:
            callbacks.append(
                (
                    "early_stopping",
                    EarlyStopping(patience=self.n_iter_no_change, load_best=True, sink=_silent),
                )
            )
        # get_params lists the callbacks, so this runs before fit validates.
        if isinstance(self.verbose, numbers.Real) and self.verbose >= 2:
            callbacks.append(("progress_bar", ProgressBar()))
        return callbacks + [("print_log", PrintLog())]

    # -- components --------------------------------------------------------------

    def initialize(self):
        """Initialise module, criterion and optimizer on ``device_``.

        ``fit`` calls it. Called by hand before any fit (skorch's recipe for
        ``load_params`` into a new estimator), it takes the labels from the
        ``classes`` parameter, or ``0..module__n_classes-1``.
        """
        self.device_ = resolve_device(self.device)
        if not hasattr(self, "classes_inferred_"):
            self._init_label_state()
        with self._skorch_device():
            return super().initialize()

    def _init_label_state(self):
        n_classes = self.get_params_for("module").get("n_classes")
        if self.classes is None and n_classes is None:
            raise ValueError(
                "initialize() before fit needs the labels: pass classes=[...] (or "
                "module__n_classes for labels 0..n_classes-1), or call fit."
            )
        labels = np.unique(self.classes if self.classes is not None else np.arange(n_classes))
        self.classes_inferred_ = labels
        self.n_classes_ = len(labels)
        # Placeholder until load_params(f_criterion=...) restores the counts.
        self.class_counts_ = np.ones(len(labels), dtype=np.int64)

    def initialize_module(self):
        """Build the module; the default MLP is sized from the training data."""
        kwargs = self.get_params_for("module")
        module = self.module
        if module is None:
            module = MLP
            kwargs = {**self._data_module_kwargs(kwargs), **self._default_module_kwargs(), **kwargs}
        self.module_ = self.initialized_instance(module, kwargs)
        return self

    def _data_module_kwargs(self, given: dict) -> dict:
        """The default MLP's size and input statistics, taken from the training data."""
        if {"n_features", "n_classes"} <= given.keys():
            return {}
        if not hasattr(self, "n_features_in_"):
            raise ValueError(
                "The default module is sized from the training data: call fit first, or "
                "pass module__n_features and module__n_classes before initialize()."
            )
        kwargs = {
            "n_features": self.n_features_in_,
            "n_classes": self.n_classes_,
            **self._input_stats,
        }
        if (
            self._sparse_first_layer
            and getattr(self, "_sparse_X", False)
            and _supports_sparse_gradients(self.optimizer)
        ):
            kwargs["sparse_input"] = True
        return kwargs

    def initialize_optimizer(self, triggered_directly=None):
        """Build the optimizer; reject one that cannot train a sparse first layer."""
        sparse_layer = any(isinstance(m, SparseLinear) for m in self.module_.modules())
        if sparse_layer and not _supports_sparse_gradients(self.optimizer):
            # Otherwise torch fails at the first step with advice (SparseAdam)
            # that does not fit the estimator.
            name = getattr(self.optimizer, "__name__", type(self.optimizer).__name__)
            raise ValueError(
                f"The network has a SparseLinear layer (the default for sparse training "
                f"data), whose sparse gradients optimizer={name} cannot take. Keep the "
                "default optimizer (ldam_sklearn.optim.SGD), or refit: fit gives the "
                "network an nn.Linear first layer for such optimizers (as does "
                "module__sparse_input=False)."
            )
        return super().initialize_optimizer(triggered_directly=triggered_directly)

    def initialize_criterion(self):
        """Build the criterion, giving it the class counts when it takes them."""
        criterion, kwargs = self.criterion, {}
        if criterion is None:
            criterion, kwargs = self._default_criterion()
        kwargs = {**kwargs, **self.get_params_for("criterion")}
        if (
            inspect.isclass(criterion)
            and "class_counts" in inspect.signature(criterion).parameters
            and "class_counts" not in kwargs
        ):
            kwargs["class_counts"] = self.class_counts_
        self.criterion_ = self.initialized_instance(criterion, kwargs)
        return self

    @contextlib.contextmanager
    def _skorch_device(self):
        # skorch moves modules with ``to_device(m, self.device)``, which knows
        # no "auto"; show it the resolved device while it works, then restore
        # the user's parameter so get_params/clone keep "auto".
        requested = self.__dict__["device"]
        self.__dict__["device"] = self.device_
        try:
            yield
        finally:
            self.__dict__["device"] = requested

    def set_params(self, **params):
        """Set parameters, re-initialising components on ``device_`` if fitted."""
        if not self.initialized_:
            return super().set_params(**params)
        with self._skorch_device():
            # skorch 1.4 re-initialises nothing for a new optimizer class on an
            # initialised net and raises "Something went wrong"; build it here.
            new_optimizer = "optimizer" in params
            if new_optimizer:
                self.optimizer = params.pop("optimizer")
            super().set_params(**params)
            if new_optimizer:
                self.initialize_optimizer()
        return self

    def load_params(self, *args, **kwargs):
        """Load parameters saved with ``save_params`` (see skorch)."""
        self.device_ = getattr(self, "device_", resolve_device(self.device))
        with self._skorch_device():
            super().load_params(*args, **kwargs)
        # A loaded criterion carries the class counts it was trained with.
        counts = getattr(getattr(self, "criterion_", None), "class_counts", None)
        if counts is not None:
            self.class_counts_ = counts.cpu().numpy().round().astype(np.int64)

    def __setstate__(self, state):
        # skorch maps CUDA tensors to the CPU when CUDA is missing, using
        # state["device"]; give it the device the tensors were saved from.
        requested = state["device"]
        state["device"] = state.get("device_", "cpu")
        super().__setstate__(state)
        self.device_ = torch.device(self.__dict__["device"])
        self.__dict__["device"] = requested

    # -- training step -----------------------------------------------------------

    def notify(self, method_name: str, **cb_kwargs) -> None:
        """Call ``method_name`` on the net and on every callback that defines it."""
        # Three events per training step reach every callback; most inherit
        # skorch's no-op for them, and calling those costs about a percent
        # of a small network's step.
        getattr(self, method_name)(self, **cb_kwargs)
        noop = getattr(Callback, method_name)
        for _, callback in self.callbacks_:
            method = getattr(callback, method_name)
            if getattr(method, "__func__", None) is not noop:
                method(self, **cb_kwargs)

    def _set_training(self, training: bool = True) -> None:
        # skorch sets the mode of every module on every batch; Module.train
        # walks all submodules in Python, a tenth of the per-batch overhead
        # of the default MLP. Only a change of mode needs the walk.
        for name in self._modules + self._criteria:
            module = getattr(self, name + "_")
            if isinstance(module, torch.nn.Module) and module.training != training:
                module.train(training)

    def infer(self, x, **fit_params):
        """Forward a batch that the iterator already put on the device."""
        if self.precision == "fp32":
            return self.module_(x, **fit_params)
        with self._autocast():
            # Losses, softmax and metrics stay in float32.
            return self.module_(x, **fit_params).float()

    def _autocast(self):
        """Context in which the module runs: bf16 autocast for ``precision="bf16"``."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(self.device_.type, dtype=torch.bfloat16)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """Criterion on a batch, weighting examples by ``sample_weight``."""
        labels, sample_weight = unpack_target(y_true)
        if sample_weight is None:
            return self.criterion_(y_pred, labels)
        return self.criterion_(y_pred, labels, sample_weight=sample_weight)

    # -- prediction --------------------------------------------------------------

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Rows sum to 1.
        """
        return self._proba(self._module_outputs(X), X)

    def _proba(self, outputs: torch.Tensor, X) -> np.ndarray:
        """``predict_proba`` of the rows ``X``, whose module outputs are ``outputs``."""
        return self._proba_from_outputs(outputs)

    def _proba_from_outputs(self, outputs: torch.Tensor) -> np.ndarray:
        """``predict_proba`` of rows whose module outputs are ``outputs``."""
        proba = np.empty((len(outputs), len(self.classes_)), dtype=np.float64)
        # The float64 softmax runs over large chunks, not per batch: per
        # batch its overhead was a third of the cost of prediction, and over
        # all rows at once its temporaries would be several times the result.
        for start in range(0, len(outputs), _SOFTMAX_ROWS):
            chunk = outputs[start : start + _SOFTMAX_ROWS]
            logits = self._output_to_logits(chunk).double()
            # Inputs far outside the training range (1e30) can overflow the
            # float32 network to inf, and inf - inf = NaN; a probability
            # must stay a probability, so saturate instead.
            logits = torch.nan_to_num(logits, nan=0.0, posinf=1e300, neginf=-1e300)
            proba[start : start + _SOFTMAX_ROWS] = torch.softmax(logits, dim=1).numpy()
        return proba

    def _module_outputs(self, X) -> torch.Tensor:
        """The module's raw outputs for ``X``, on the CPU."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, accept_sparse=("csr", "csc"), dtype=np.float32)
        if sp.issparse(X) and X.format != "csr":
            X = X.tocsr()
        batches = BatchIterator(self.get_dataset(X), batch_size=self.batch_size, pad_last=True)
        with torch_threads(self._thread_count()):
            outputs = torch.cat([self.evaluation_step(batch) for batch in batches])
        return outputs[: X.shape[0]].cpu()

    def predict(self, X) -> np.ndarray:
        """Predicted labels, taken from ``classes_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    @property
    def classes_(self) -> np.ndarray:
        # skorch's property prefers the ``classes`` parameter, unsorted as
        # given; labels are encoded against this sorted array instead.
        return self.classes_inferred_

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "classes_inferred_") and super().__sklearn_is_fitted__()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.classifier_tags.multi_label = False
        tags.non_deterministic = False
        return tags


def _supports_sparse_gradients(optimizer) -> bool:
    """Whether an optimizer class (or a ``functools.partial`` of one) takes sparse gradients."""
    while True:
        supported = getattr(optimizer, "supports_sparse_gradients", None)
        if supported is not None or not isinstance(optimizer, functools.partial):
            return bool(supported)
        optimizer = optimizer.func


def _standardization(X: torch.Tensor) -> dict:
    """Per-feature mean and standard deviation for the default MLP's input."""
    # Two passes over row blocks: torch.var_mean's reduction across rows was
    # a third of fit's fixed cost, and centring all of X at once would copy it.
    # ``sum(dim=0)``, not a faster BLAS product with a row of ones: its
    # cascade summation keeps the mean exact for features far from zero
    # (offset 1e5, spread 1), where the float32 product's error gave a
    # scale of 175 instead of 1.
    blocks = X.split(max(1, _STATS_ELEMENTS // max(1, X.shape[1])))
    mean = sum(block.sum(dim=0) for block in blocks) / X.shape[0]
    var = sum(((block - mean) ** 2).sum(dim=0) for block in blocks) / X.shape[0]
    scale = var.sqrt()
    # Constant features keep their values, as in StandardScaler.
    scale[scale < 10 * torch.finfo(scale.dtype).eps * mean.abs().clamp(min=1)] = 1.0
    return {"input_mean": mean.cpu(), "input_scale": scale.cpu()}


def _check_device(device) -> None:
    kind, _, index = str(device).partition(":")
    if not isinstance(device, torch.device) and (
        kind not in _DEVICES or (index and (kind == "auto" or not index.isdigit()))
    ):
        raise ValueError(
            f"device={device!r} is not valid; choose one of {_DEVICES}, optionally with "
            'a device index such as "cuda:1".'
        )
    available = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not available.get(resolve_device(device).type, True):
        raise ValueError(
            f"device={device!r} was requested but {kind.upper()} is not available; "
            'use device="auto" to fall back to the CPU.'
        )


def _silent(*args, **kwargs):
    """Sink for skorch's EarlyStopping message: estimators are quiet by default."""
