"""Network parts: the default MLP and the cosine ("normed") output layer."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MLP", "CosineLinear"]


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
            Input batch. An all-zero row gives all-zero outputs.

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
        # F.normalize squares the entries, which overflows float32 above ~1e19
        # and underflows below ~1e-19; dividing by the largest entry first
        # keeps the cosine exact at any scale (it is scale-invariant, so the
        # divisor needs no gradient). F.normalize clamps the norm at eps, so an
        # all-zero row gives zeros, not NaN.
        return F.normalize(_by_max_abs(x, dim=1), dim=1) @ F.normalize(
            _by_max_abs(self.weight, dim=0), dim=0
        )


def _by_max_abs(x: torch.Tensor, dim: int) -> torch.Tensor:
    largest = x.detach().abs().amax(dim=dim, keepdim=True)
    # An all-zero row (common after ReLU and dropout) is divided by 1: a tiny
    # divisor would make its gradient inf, and inf * 0 = NaN.
    return x / torch.where(largest > 0, largest, 1.0)


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
        Number of input features. Sparse (CSR) batches are accepted.
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
        network predicts one class). Sparse input gets no statistics and is
        used as it is: TF-IDF is already normalised, and centring would
        densify it.
    input_mean, input_scale : array-like of shape (n_features,), default=None
        The statistics; ``None`` means zeros and ones.

    Attributes
    ----------
    body : torch.nn.Sequential
        The hidden layers: ``Linear``, ``ReLU`` (and ``Dropout``) per entry
        of ``hidden_layer_sizes``; empty for ``hidden_layer_sizes=()``.
    head : torch.nn.Linear or CosineLinear
        The output layer, ``n_classes`` outputs.
    input_mean, input_scale : torch.Tensor of shape (n_features,)
        Buffers (saved with the parameters); zeros and ones when not given.

    References
    ----------
    .. [1] K. Cao, C. Wei, A. Gaidon, N. Arechiga, T. Ma. "Learning Imbalanced
       Datasets with Label-Distribution-Aware Margin Loss", NeurIPS 2019.

    Examples
    --------
    >>> import torch
    >>> net = MLP(n_features=8, n_classes=3, hidden_layer_sizes=(16,))
    >>> tuple(net(torch.randn(4, 8)).shape)
    (4, 3)
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
        layers: list[nn.Module] = []
        width = n_features
        for size in hidden_layer_sizes:
            layers += [nn.Linear(width, size), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = size
        self.body = nn.Sequential(*layers)
        self.head = CosineLinear(width, n_classes) if cosine_head else nn.Linear(width, n_classes)

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
            ``cosine_head=True``.

        Examples
        --------
        >>> import torch
        >>> net = MLP(n_features=3, n_classes=2, hidden_layer_sizes=(), cosine_head=True)
        >>> bool(net(torch.randn(5, 3)).abs().max() <= 1.0)
        True
        """
        if self._standardizes:
            # A sparse batch meets dense statistics only when a model fitted
            # on dense data predicts sparse rows; one batch is small.
            # X * (1 / scale) - mean / scale in one kernel: each small op is
            # a noticeable share of a CPU training step.
            X = torch.addcmul(self._shift, X.to_dense(), self._inv_scale)
        return self.head(self.body(X))

    def _find_standardization(self) -> None:
        # Decided once (and again when statistics are loaded), not per batch:
        # reading a buffer's values would synchronise with the GPU.
        identity = bool((self.input_mean == 0).all() and (self.input_scale == 1).all())
        self._standardizes = self.standardize and not identity
        # Derived, so kept out of the state_dict; they follow .to() as buffers.
        inv_scale = 1.0 / self.input_scale
        self.register_buffer("_inv_scale", inv_scale, persistent=False)
        self.register_buffer("_shift", -self.input_mean * inv_scale, persistent=False)
