"""Network parts: the default MLP, a sparse-input first layer and the cosine output layer."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from tabm import LinearEnsemble
from torch import nn

__all__ = ["MLP", "CosineLinear", "CosineLinearEnsemble", "SparseLinear", "sparse_input_scale"]


class CosineLinear(nn.Module):
    """Linear layer on L2-normalised inputs and weight columns.

    Outputs are cosine similarities in ``[-1, 1]``. Cao et al. (2019) pair it
    with the LDAM loss, which multiplies the logits by a scale ``s`` inside the
    loss; whoever turns these outputs into probabilities must apply the same
    ``s`` first.

    Parameters
    ----------
    in_features : int
        Size of each input sample.
    out_features : int
        Number of classes.

    Attributes
    ----------
    weight : torch.nn.Parameter of shape (in_features, out_features)
        One column per class, compared with the input by cosine similarity
        (the columns are normalised in every forward pass).
    in_features, out_features : int
        The constructor arguments.

    References
    ----------
    .. [1] K. Cao, C. Wei, A. Gaidon, N. Arechiga, T. Ma. "Learning Imbalanced
       Datasets with Label-Distribution-Aware Margin Loss", NeurIPS 2019.

    Examples
    --------
    >>> import torch
    >>> layer = CosineLinear(4, 3)
    >>> bool(layer(torch.randn(5, 4)).abs().max() <= 1.0)
    True
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        # Same initialisation as the official NormedLinear: unit-norm columns.
        weight = torch.empty(in_features, out_features).uniform_(-1, 1)
        self.weight = nn.Parameter(weight.renorm_(2, 1, 1e-5).mul_(1e5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of each row of ``x`` with each class's weight column.

        Parameters
        ----------
        x : torch.Tensor of shape (n_samples, in_features)
            Input batch, dense or sparse (COO or CSR). An all-zero row gives
            all-zero outputs.

        Returns
        -------
        cosines : torch.Tensor of shape (n_samples, out_features)
            Values in ``[-1, 1]``.

        Examples
        --------
        >>> import torch
        >>> layer = CosineLinear(2, 2)
        >>> with torch.no_grad():
        ...     _ = layer.weight.copy_(torch.eye(2))
        >>> layer(torch.tensor([[3.0, 0.0], [1.0, 1.0]]))
        tensor([[1.0000, 0.0000],
                [0.7071, 0.7071]], grad_fn=<MmBackward0>)
        """
        weight = F.normalize(_by_max_abs(self.weight, dim=0), dim=0)
        if x.layout != torch.strided:
            # A sparse batch (a network without hidden layers on TF-IDF):
            # divide the product by the row norms instead of normalising
            # the rows, which would densify them. Sparse rows hold
            # TF-IDF-sized values, far from float32's limits.
            x = x.to_sparse() if x.layout != torch.sparse_coo else x
            x = x.coalesce()
            norms = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
            norms.index_add_(0, x.indices()[0], x.values() ** 2)
            return torch.sparse.mm(x, weight) / norms.sqrt().clamp_min(1e-12)[:, None]
        # F.normalize squares the entries, which overflows float32 above ~1e19
        # and underflows below ~1e-19; dividing by the largest entry first
        # keeps the cosine exact at any scale (it is scale-invariant, so the
        # divisor needs no gradient). F.normalize clamps the norm at eps, so an
        # all-zero row gives zeros, not NaN.
        return F.normalize(_by_max_abs(x, dim=1), dim=1) @ weight


class CosineLinearEnsemble(nn.Module):
    """``k`` independent :class:`CosineLinear` layers applied to ``k`` inputs.

    The cosine counterpart of ``tabm.LinearEnsemble`` [1]_: the ``i``-th
    layer compares the ``i``-th input matrix with its own class columns.

    Parameters
    ----------
    in_features : int
        Size of each input sample.
    out_features : int
        Number of classes.
    k : int
        Number of layers.

    Attributes
    ----------
    weight : torch.nn.Parameter of shape (k, in_features, out_features)
        One column per class and layer, normalised in every forward pass.

    References
    ----------
    .. [1] Y. Gorishniy, A. Kotelnikov, A. Babenko. "TabM: Advancing Tabular
       Deep Learning with Parameter-Efficient Ensembling", ICLR 2025.

    Examples
    --------
    >>> import torch
    >>> layer = CosineLinearEnsemble(4, 3, k=2)
    >>> out = layer(torch.randn(5, 2, 4))
    >>> tuple(out.shape), bool(out.abs().max() <= 1.0)
    ((5, 2, 3), True)
    """

    def __init__(self, in_features: int, out_features: int, *, k: int):
        super().__init__()
        # Each layer starts as CosineLinear does: unit-norm columns.
        weight = torch.empty(k, in_features, out_features).uniform_(-1, 1)
        self.weight = nn.Parameter(F.normalize(weight, dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Cosines ``(n_samples, k, out_features)`` of ``x`` of ``(n_samples, k, in_features)``."""
        weight = F.normalize(_by_max_abs(self.weight, dim=1), dim=1)
        x = F.normalize(_by_max_abs(x, dim=2), dim=2)
        return (x.transpose(0, 1) @ weight).transpose(0, 1)


class SparseLinear(nn.Module):
    """Linear layer ``X @ weight + bias`` whose cost follows the non-zeros of ``X``.

    For a sparse batch, ``nn.Linear`` computes a dense
    ``in_features x out_features`` weight gradient, and the optimizer then
    updates every entry of the weight at every step: on bag-of-words input
    a step costs O(n_features), however few words a batch holds. Here the
    weight is the table of an ``nn.EmbeddingBag(mode="sum", sparse=True)``
    [1]_: a sparse batch is read as (column indices, row offsets,
    ``per_sample_weights`` = values), so that the forward and backward passes
    cost O(nnz x out_features) and the weight gradient is a sparse tensor
    holding the rows of the columns present in the batch. Pair it with an
    optimizer that accepts sparse gradients, such as
    :class:`ldam_sklearn.optim.SGD`.

    Parameters
    ----------
    in_features : int
        Size of each input sample (the number of features).
    out_features : int
        Size of each output sample.

    Attributes
    ----------
    embedding : torch.nn.EmbeddingBag
        Holds the weight, ``mode="sum"``, ``sparse=True``.
    weight : torch.nn.Parameter of shape (in_features, out_features)
        ``embedding.weight``: one row per input feature (the transpose of
        ``nn.Linear``'s weight). Initialised as ``nn.Linear`` initialises its
        own, uniform in ``[-1/sqrt(in_features), 1/sqrt(in_features)]``.
    bias : torch.nn.Parameter of shape (out_features,)
        Initialised like the weight.
    in_features, out_features : int
        The constructor arguments.

    Notes
    -----
    Sparse batches may be COO (coalesced, as :class:`ldam_sklearn.data.BatchIterator`
    delivers them, or coalesced here) or CSR; rows without non-zeros give
    ``bias``. Dense batches take ``torch.addmm(bias, X, weight)``, so a model
    trained on sparse data predicts dense data too, and the other way round.

    References
    ----------
    .. [1] PyTorch documentation, "torch.nn.EmbeddingBag",
       https://pytorch.org/docs/stable/generated/torch.nn.EmbeddingBag.html;
       A. Paszke et al., "PyTorch: An Imperative Style, High-Performance Deep
       Learning Library", NeurIPS 2019, arXiv:1912.01703.

    Examples
    --------
    >>> import torch
    >>> layer = SparseLinear(5, 2)
    >>> X = torch.tensor([[0.0, 2.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0, 0.0]])
    >>> torch.allclose(layer(X.to_sparse()), layer(X))
    True
    >>> layer(X.to_sparse()).sum().backward()
    >>> layer.weight.grad.layout  # rows 1 and 4 only
    torch.sparse_coo
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        # The table is passed in so that EmbeddingBag does not first fill
        # it with normal draws: a million-row table takes a while.
        self.embedding = nn.EmbeddingBag(
            in_features,
            out_features,
            mode="sum",
            sparse=True,
            _weight=torch.empty(in_features, out_features),
        )
        self.bias = nn.Parameter(torch.empty(out_features))
        self.reset_parameters()

    @property
    def weight(self) -> nn.Parameter:
        return self.embedding.weight

    def reset_parameters(self) -> None:
        """Draw weight and bias as ``nn.Linear`` does: uniform in ``±1/sqrt(in_features)``."""
        bound = 1 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
        with torch.no_grad():
            self.embedding.weight.uniform_(-bound, bound)
            self.bias.uniform_(-bound, bound)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """``X @ weight + bias`` for a dense or sparse (COO or CSR) batch.

        Parameters
        ----------
        X : torch.Tensor of shape (n_samples, in_features)
            Input batch. Dense input may have extra leading dimensions.

        Returns
        -------
        output : torch.Tensor of shape (n_samples, out_features)
            Dense.

        Examples
        --------
        >>> import torch
        >>> layer = SparseLinear(3, 1)
        >>> with torch.no_grad():
        ...     _ = layer.weight.copy_(torch.tensor([[1.0], [10.0], [100.0]]))
        ...     _ = layer.bias.zero_()
        >>> layer(torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 0.0]]).to_sparse())
        tensor([[201.],
                [  0.]], grad_fn=<AddBackward0>)
        """
        if X.layout == torch.strided:
            if X.dim() == 2:
                return torch.addmm(self.bias, X, self.weight)
            return torch.matmul(X, self.weight) + self.bias
        if X.layout == torch.sparse_csr:
            offsets, cols, values = X.crow_indices()[:-1], X.col_indices(), X.values()
        else:
            # coalesce() returns X itself when it is flagged coalesced, as
            # the batches of the data path are: row indices sorted, so each
            # row's entries are contiguous and start at its offset. Empty
            # rows (trailing ones too) get an empty bag, i.e. zeros.
            X = X.to_sparse().coalesce()
            rows, cols = X.indices()
            offsets = torch.searchsorted(rows, torch.arange(X.shape[0], device=rows.device))
            values = X.values()
        return self.embedding(cols, offsets, per_sample_weights=values) + self.bias

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


def _by_max_abs(x: torch.Tensor, dim: int) -> torch.Tensor:
    largest = x.detach().abs().amax(dim=dim, keepdim=True)
    # An all-zero row (common after ReLU and dropout) is divided by 1: a tiny
    # divisor would make its gradient inf, and inf * 0 = NaN.
    return x / torch.where(largest > 0, largest, 1.0)


def sparse_input_scale(X: sp.spmatrix | sp.sparray) -> dict:
    """Input statistics for sparse ``X``: no centring, one scale for all features.

    Dense input is standardised, so that the default initialisation, which
    expects features of unit variance, meets inputs of that size. TF-IDF
    rows have unit norm spread over thousands of features: unscaled, the
    first layer's outputs were a hundredth of its biases, every row got
    almost the same hidden vector, and the gradient through
    :class:`CosineLinear`, which is inversely proportional to the length of
    that vector, blew its weights up in the first steps, after which the
    LDAM network predicted the majority class only. Dividing every entry by
    the root mean square of all entries (zeros included) gives rows whose
    squared norm is ``n_features`` on average, as standardised rows have,
    and keeps ``X`` sparse and each row's proportions as they are.

    Parameters
    ----------
    X : sparse matrix of shape (n_samples, n_features)

    Returns
    -------
    stats : dict
        ``input_mean`` (zeros) and ``input_scale`` (the root mean square,
        repeated for every feature; 1 for an all-zero ``X``), float32 tensors
        for :class:`MLP`.

    References
    ----------
    .. [1] Y. LeCun, L. Bottou, G. B. Orr and K.-R. Muller, "Efficient
       BackProp", in Neural Networks: Tricks of the Trade, Springer, 1998
       (inputs of unit scale for the default initialisation).

    Examples
    --------
    >>> import scipy.sparse as sp
    >>> stats = sparse_input_scale(sp.csr_matrix([[0.0, 4.0], [0.0, 0.0]]))
    >>> stats["input_scale"]
    tensor([2., 2.])
    """
    n_samples, n_features = X.shape
    values = X.data.astype(np.float64)
    rms = float(np.sqrt(values @ values / max(1, n_samples * n_features)))
    scale = torch.full((n_features,), rms if rms > 0 else 1.0, dtype=torch.float32)
    return {"input_mean": torch.zeros(n_features), "input_scale": scale}


def _scale_sparse(X: torch.Tensor, inv_scale: torch.Tensor) -> torch.Tensor:
    """``X * inv_scale`` per column for a sparse batch, without densifying it."""
    if X.layout == torch.sparse_csr:
        cols = X.col_indices()
        return torch.sparse_csr_tensor(
            X.crow_indices(), cols, X.values() * inv_scale[cols], X.shape, check_invariants=False
        )
    X = X.coalesce()
    indices = X.indices()
    return torch.sparse_coo_tensor(
        indices,
        X.values() * inv_scale[indices[1]],
        X.shape,
        is_coalesced=True,
        check_invariants=False,
    )


def _refind_standardization(module: MLP, incompatible_keys) -> None:
    module._find_standardization()


class MLP(nn.Module):
    """Multi-layer perceptron sized from the data at fit time.

    The estimators build it with ``n_features`` and ``n_classes`` taken from
    the training data; the remaining arguments are set with the skorch
    ``module__`` prefix, e.g. ``module__hidden_layer_sizes=(64,)``.

    Parameters
    ----------
    n_features : int
        Number of input features. Sparse (COO or CSR) batches are accepted.
    n_classes : int
        Number of outputs.
    hidden_layer_sizes : sequence of int, default=(256, 256)
        Width of each hidden ReLU layer, as in scikit-learn's MLPClassifier.
    dropout : float, default=0.0
        Dropout probability after each hidden layer.
    cosine_head : bool, default=False
        End in a :class:`CosineLinear` layer instead of ``nn.Linear``, as
        Cao et al. [1]_ do for the LDAM loss.
    standardize : bool, default=True
        Standardise each input as ``(X - input_mean) / input_scale`` before
        the first layer, when those statistics are given. The estimators give
        the training data's mean and standard deviation for dense input, so
        that the default learning rate suits features of any scale (SGD at
        ``lr=0.1`` diverges on raw features in the tens, and a diverged ReLU
        network predicts one class). Sparse input is scaled, not centred
        (centring would densify it): the estimators give one scale for all
        features, :func:`sparse_input_scale`, so that a row's squared norm
        is ``n_features`` on average, as it is for standardised dense rows.
    input_mean, input_scale : array-like of shape (n_features,), default=None
        The statistics; ``None`` means zeros and ones.
    sparse_input : bool, default=False
        Make the first hidden layer a :class:`SparseLinear` instead of
        ``nn.Linear``: on sparse batches its forward and backward passes
        cost O(nnz x width) instead of O(n_features x width), and its weight
        gradient is sparse, which needs an optimizer that takes sparse
        gradients (:class:`ldam_sklearn.optim.SGD`, the estimators' default).
        Dense batches work as well. The estimators set it when the training
        ``X`` is sparse and the optimizer supports sparse gradients. Ignored
        for ``hidden_layer_sizes=()``.
    n_members : int, default=1
        Number of independent networks packed side by side (TabM's "packed"
        ensemble [2]_): the first layer is one layer of ``n_members`` times
        the width, the others ``tabm.LinearEnsemble`` (or
        :class:`CosineLinearEnsemble`) layers, so all members train in the
        same matrix products. Above 1 the output gains a member axis.

    Attributes
    ----------
    body : torch.nn.Sequential
        The hidden layers: ``Linear`` (``SparseLinear`` first with
        ``sparse_input=True``), ``ReLU`` (and ``Dropout``) per entry of
        ``hidden_layer_sizes``; empty for ``hidden_layer_sizes=()``.
    head : torch.nn.Module
        The output layer, ``n_classes`` outputs (per member).
    input_mean, input_scale : torch.Tensor of shape (n_features,)
        Buffers (saved with the parameters); zeros and ones when not given.

    References
    ----------
    .. [1] K. Cao, C. Wei, A. Gaidon, N. Arechiga, T. Ma. "Learning Imbalanced
       Datasets with Label-Distribution-Aware Margin Loss", NeurIPS 2019.
    .. [2] Y. Gorishniy, A. Kotelnikov, A. Babenko. "TabM: Advancing Tabular
       Deep Learning with Parameter-Efficient Ensembling", ICLR 2025.

    Examples
    --------
    >>> import torch
    >>> net = MLP(n_features=8, n_classes=3, hidden_layer_sizes=(16,))
    >>> tuple(net(torch.randn(4, 8)).shape)
    (4, 3)
    >>> packed = MLP(n_features=8, n_classes=3, hidden_layer_sizes=(16,), n_members=5)
    >>> tuple(packed(torch.randn(4, 8)).shape)
    (4, 5, 3)
    """

    def __init__(
        self,
        n_features: int,
        n_classes: int,
        hidden_layer_sizes: Sequence[int] = (256, 256),
        dropout: float = 0.0,
        cosine_head: bool = False,
        standardize: bool = True,
        input_mean=None,
        input_scale=None,
        sparse_input: bool = False,
        n_members: int = 1,
    ):
        super().__init__()
        # Buffers exist either way, so that saved parameters load into an MLP
        # built with or without the statistics.
        self.standardize = standardize
        mean = torch.zeros(n_features) if input_mean is None else torch.as_tensor(input_mean)
        scale = torch.ones(n_features) if input_scale is None else torch.as_tensor(input_scale)
        self.register_buffer("input_mean", mean.to(torch.float32).reshape(n_features))
        self.register_buffer("input_scale", scale.to(torch.float32).reshape(n_features))
        self._find_standardization()
        self.register_load_state_dict_post_hook(_refind_standardization)
        k = n_members
        layers: list[nn.Module] = []
        width = n_features
        for i, size in enumerate(hidden_layer_sizes):
            if i == 0:
                # The members' first layers side by side: one product with X.
                linear = SparseLinear if sparse_input else nn.Linear
                layers.append(linear(width, k * size))
                if k > 1:
                    layers.append(nn.Unflatten(-1, (k, size)))
            else:
                linear = nn.Linear(width, size) if k == 1 else LinearEnsemble(width, size, k=k)
                layers.append(linear)
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        self.body = nn.Sequential(*layers)
        single = CosineLinear if cosine_head else nn.Linear
        if k == 1:
            self.head = single(width, n_classes)
        elif not layers:
            members = nn.Unflatten(-1, (k, n_classes))
            self.head = nn.Sequential(single(width, k * n_classes), members)
        else:
            ensemble = CosineLinearEnsemble if cosine_head else LinearEnsemble
            self.head = ensemble(width, n_classes, k=k)

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """Outputs of the network for a batch.

        Parameters
        ----------
        X : torch.Tensor of shape (n_samples, n_features)
            Dense or sparse (COO/CSR) input batch.

        Returns
        -------
        output : torch.Tensor of shape (n_samples, n_classes)
            Logits, or cosine similarities in ``[-1, 1]`` with
            ``cosine_head=True``; of shape ``(n_samples, n_members,
            n_classes)`` when ``n_members > 1``.

        Examples
        --------
        >>> import torch
        >>> net = MLP(n_features=3, n_classes=2, hidden_layer_sizes=(), cosine_head=True)
        >>> bool(net(torch.randn(5, 3)).abs().max() <= 1.0)
        True
        """
        if self._standardizes:
            if X.layout != torch.strided and not self._centres:
                X = _scale_sparse(X, self._inv_scale)
            else:
                # A sparse batch meets a mean only when a model fitted on
                # dense data predicts sparse rows; one batch is small.
                # X * (1 / scale) - mean / scale in one kernel: each small
                # op is a noticeable share of a CPU training step.
                X = torch.addcmul(self._shift, X.to_dense(), self._inv_scale)
        return self.head(self.body(X))

    def _find_standardization(self) -> None:
        # Decided once (and again when statistics are loaded), not per batch:
        # reading a buffer's values would synchronise with the GPU.
        identity = bool((self.input_mean == 0).all() and (self.input_scale == 1).all())
        self._standardizes = self.standardize and not identity
        self._centres = bool((self.input_mean != 0).any())
        # Derived, so kept out of the state_dict; they follow .to() as buffers.
        inv_scale = 1.0 / self.input_scale
        self.register_buffer("_inv_scale", inv_scale, persistent=False)
        self.register_buffer("_shift", -self.input_mean * inv_scale, persistent=False)
