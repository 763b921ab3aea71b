"""Per-example weights of Learning to Reweight Examples (Ren et al., 2018).

Algorithm 1 of the paper weights each training example by how much a small
gradient step on it would lower the loss of a clean, balanced meta batch.
At the look-ahead point ε = 0 the derivative has the exact closed form

    -∂L_meta/∂ε_i = α ⟨∇θ L_meta(θ), ∇θ ℓ_i(θ)⟩,

so the weights are the rectified, normalised dot products between each
example's gradient and the meta-batch gradient (the step size α cancels).
Three exact routes compute them:

``"lookahead"``
    The literal Algorithm 1: a differentiable look-ahead step and a
    second-order (double-backward) graph. Slowest; kept as the reference.
``"jvp"``
    The closed form for any module: one gradient of the meta loss, then one
    forward-mode Jacobian-vector product of the vector of per-example losses
    along it (:func:`torch.func.jvp`). No second-order graph.
``"layerwise"``
    The closed form for modules whose trainable parameters all belong to
    :class:`torch.nn.Linear` layers (or :class:`~ldam_sklearn.modules.SparseLinear`
    ones, whose weight is the transpose). A linear layer's per-example gradient is
    the outer product ``δ_i a_iᵀ``, so ``⟨G_W, ∇_W ℓ_i⟩ = δ_iᵀ G_W a_i`` and
    only the layer inputs ``a`` and output gradients ``δ`` of one ordinary
    forward/backward are needed. On a sparse input ``a`` the terms of a
    ``SparseLinear`` layer run over the non-zeros of ``a``, and its gradients
    are sparse: the rows of the batch's features only.

References
----------
.. [1] M. Ren, W. Zeng, B. Yang and R. Urtasun, "Learning to Reweight
   Examples for Robust Deep Learning", ICML 2018, arXiv:1803.09050.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, jvp

from .modules import MLP, SparseLinear

__all__ = [
    "META_WEIGHT_METHODS",
    "WEIGHTINGS",
    "l2rw_example_weights",
    "meta_weighted_loss",
    "select_method",
]

#: Valid values of the ``method`` argument.
META_WEIGHT_METHODS = ("auto", "layerwise", "jvp", "lookahead")

#: Valid values of the ``weighting`` argument of :func:`meta_weighted_loss`.
WEIGHTINGS = ("exact", "sign")

LossFn = Callable[[Tensor, Tensor], Tensor]

_default_loss = functools.partial(F.cross_entropy, reduction="none")


def _is_plain_linear(module: nn.Module) -> bool:
    # The outer-product identity needs ``a @ W.T + b`` with W and b the
    # parameters themselves: not a subclass overriding ``forward``, nor a
    # weight re-derived from other parameters (old-style weight norm).
    if type(module) is SparseLinear:
        return module.embedding.max_norm is None and module.embedding.mode == "sum"
    return (
        isinstance(module, nn.Linear)
        and type(module).forward is nn.Linear.forward
        and {name for name, _ in module.named_parameters(recurse=False)} <= {"weight", "bias"}
    )


def _layerwise_layers(module: nn.Module) -> list[nn.Module] | None:
    """The layers holding trainable parameters if "layerwise" is exact, else None."""
    layers = []
    # A SparseLinear's table is its own: the layer stands for both.
    tables = {id(sub.embedding) for sub in module.modules() if type(sub) is SparseLinear}
    for sub in module.modules():
        # Batch statistics couple the examples of a batch even when the layer
        # has no parameters or buffers, breaking the per-example outer products.
        if isinstance(sub, nn.modules.batchnorm._BatchNorm):
            return None
        if id(sub) in tables:
            continue
        own = sub.parameters(recurse=type(sub) is SparseLinear)
        if any(p.requires_grad for p in own):
            if not _is_plain_linear(sub):
                return None
            layers.append(sub)
    # Buffers mean state (running statistics, ...) the layerwise path does not
    # isolate from the real module, so such modules take the generic route.
    # The default MLP's input statistics are only read in forward.
    stateful = any(
        next(sub.buffers(recurse=False), None) is not None
        for sub in module.modules()
        if not isinstance(sub, MLP)
    )
    return None if stateful else layers


def _resolve_method(module: nn.Module, method: str) -> tuple[str, list[nn.Module] | None]:
    if method not in META_WEIGHT_METHODS:
        raise ValueError(f"method must be one of {META_WEIGHT_METHODS}, got {method!r}.")
    layers = _layerwise_layers(module) if method in ("auto", "layerwise") else None
    if method == "layerwise" and layers is None:
        raise ValueError(
            "method='layerwise' needs a module whose trainable parameters all belong to "
            "nn.Linear (or SparseLinear) layers, with no BatchNorm layer and no buffers; "
            "use 'jvp' instead."
        )
    resolved = ("jvp" if layers is None else "layerwise") if method == "auto" else method
    if resolved != "layerwise" and any(type(m) is SparseLinear for m in module.modules()):
        how = "" if method == resolved else f" (method={method!r} chose it for this module)"
        raise ValueError(
            f"The {resolved!r} route{how} cannot differentiate through a SparseLinear "
            "layer's sparse gradients: give the module nn.Linear layers in its place, or "
            "make it fit the 'layerwise' route (linear layers only, no BatchNorm)."
        )
    return resolved, layers


def select_method(module: nn.Module, method: str = "auto") -> str:
    """Validate ``method`` and resolve ``"auto"`` for ``module``.

    Parameters
    ----------
    module : torch.nn.Module
        The network whose examples are weighted.
    method : {"auto", "layerwise", "jvp", "lookahead"}, default="auto"
        Requested route. ``"auto"`` resolves to ``"layerwise"`` when every
        trainable parameter belongs to a :class:`torch.nn.Linear` layer and
        the module has no BatchNorm layer and no buffers (the input statistics
        of :class:`~ldam_sklearn.modules.MLP` excepted), else to ``"jvp"``.

    Returns
    -------
    str
        One of ``"layerwise"``, ``"jvp"`` or ``"lookahead"``.

    Raises
    ------
    ValueError
        If ``method`` is unknown, or ``"layerwise"`` is requested for a module
        that does not qualify.

    Notes
    -----
    All routes compute the example weights of Ren et al. [1]_. The
    ``"layerwise"`` route uses the outer-product form of a linear layer's
    per-example gradients [2]_; ``"jvp"`` uses forward-mode differentiation,
    :func:`torch.func.jvp` [3]_.

    References
    ----------
    .. [1] M. Ren, W. Zeng, B. Yang and R. Urtasun, "Learning to Reweight
       Examples for Robust Deep Learning", ICML 2018, arXiv:1803.09050.
    .. [2] I. Goodfellow, "Efficient Per-Example Gradient Computations", 2015,
       arXiv:1510.01799.
    .. [3] PyTorch documentation, "torch.func.jvp",
       https://pytorch.org/docs/stable/generated/torch.func.jvp.html.

    Examples
    --------
    >>> from torch import nn
    >>> from ldam_sklearn.meta_reweighting import select_method
    >>> select_method(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2)))
    'layerwise'
    >>> select_method(nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8)))
    'jvp'
    """
    return _resolve_method(module, method)[0]


def _per_example_losses(loss_fn: LossFn, logits: Tensor, target: Tensor) -> Tensor:
    losses = loss_fn(logits, target)
    if losses.shape != (target.shape[0],):
        raise ValueError(
            "loss_fn must return one loss per example, shape "
            f"({target.shape[0]},), got {tuple(losses.shape)}; use reduction='none'."
        )
    return losses


def _isolated_forward(module: nn.Module, X: Tensor, params: dict[str, Tensor]) -> Tensor:
    # Train-mode BatchNorm updates running statistics in place, and doing so
    # on the real buffers inside torch.func transforms fails or corrupts them.
    # Copies keep the module's statistics exactly as the caller left them.
    buffers = {name: buf.clone() for name, buf in module.named_buffers()}
    return functional_call(module, (params, buffers), (X,))


def _meta_gradient(
    params: dict[str, Tensor], meta_logits: Tensor, y_meta: Tensor, loss_fn: LossFn
) -> tuple[Tensor, tuple[Tensor, ...]]:
    """The detached mean meta loss and its gradient wrt ``params``."""
    meta_loss = _per_example_losses(loss_fn, meta_logits, y_meta).mean()
    grads = torch.autograd.grad(meta_loss, tuple(params.values()), materialize_grads=True)
    return meta_loss.detach(), grads


# (layer, its input a, gradient δ of the summed losses wrt its output), one per call
_LinearCall = tuple[nn.Linear, Tensor, Tensor]


@contextmanager
def _recorded_linear_calls(
    layers: list[nn.Module],
) -> Iterator[list[tuple[nn.Module, Tensor, Tensor]]]:
    calls: list[tuple[nn.Module, Tensor, Tensor]] = []

    def record(layer: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        calls.append((layer, inputs[0], output))

    # Prepended so that user hooks replacing the output cannot hide the
    # layer's own output from us.
    handles = [layer.register_forward_hook(record, prepend=True) for layer in layers]
    try:
        yield calls
    finally:
        for handle in handles:
            handle.remove()


def _layerwise_forward(
    module: nn.Module, layers: list[nn.Module], X: Tensor, y: Tensor, loss_fn: LossFn
) -> tuple[Tensor, list[_LinearCall], Tensor]:
    """One forward/backward recording each linear call's input ``a`` and output gradient ``δ``.

    Returns the detached per-example losses, the records and the detached
    logits. Everything the layerwise route needs about the batch's
    per-example gradients, ``∇_W ℓ_i = δ_i a_iᵀ``, is in the records.
    """
    with _recorded_linear_calls(layers) as calls:
        logits = module(X)
        losses = _per_example_losses(loss_fn, logits, y)
    # The gradient of the summed loss wrt a layer's output holds each
    # example's own δ_i, because examples do not interact in such a module.
    deltas = torch.autograd.grad(losses.sum(), [out for _, _, out in calls], allow_unused=True)
    n = y.shape[0]
    records = []
    for (layer, a, out), delta in zip(calls, deltas, strict=True):
        if delta is None:
            continue
        if out.shape[0] != n:
            raise ValueError("method='layerwise' needs every nn.Linear input to be batch-first.")
        records.append((layer, a.detach(), delta))
    return losses.detach(), records, logits.detach()


def _nonzeros(a: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Rows, columns and values of the non-zeros of a 2-D batch, dense or sparse."""
    a = a.to_sparse().coalesce()  # a COO batch is returned as it is
    rows, cols = a.indices()
    return rows, cols, a.values()


def _table_rows(table: Tensor, index: Tensor) -> Tensor:
    """``table[index]`` for a dense or sparse COO table; rows absent from a sparse one are 0."""
    if table.layout == torch.strided:
        return table[index]
    table = table.coalesce()
    present, values = table.indices()[0], table.values()
    if present.numel() == 0:
        return values.new_zeros(index.shape[0], *values.shape[1:])
    at = torch.searchsorted(present, index).clamp(max=present.numel() - 1)
    return torch.where((present[at] == index).unsqueeze(-1), values[at], 0)


@torch.no_grad()
def _layerwise_dots(
    records: list[_LinearCall], direction: dict[Tensor, Tensor], losses: Tensor
) -> Tensor:
    """``⟨direction, ∇θ ℓ_i⟩`` for each example, from the records of :func:`_layerwise_forward`."""
    n = losses.shape[0]
    scores = torch.zeros_like(losses)
    for layer, a, delta in records:
        if layer.weight.requires_grad and isinstance(layer, SparseLinear):
            # Σ over the non-zeros (i, j, v) of a: v ⟨direction[j], δ_i⟩
            rows, cols, values = _nonzeros(a)
            terms = (_table_rows(direction[layer.weight], cols) * delta[rows]).sum(dim=1)
            scores.index_add_(0, rows, values * terms)
        elif layer.weight.requires_grad:
            # Extra dimensions (e.g. sequence positions) share the weights, so
            # their contributions to the per-example gradient add up. Projecting
            # ``a`` (not δ) keeps sparse input batches sparse.
            scores += ((a @ direction[layer.weight].T) * delta).reshape(n, -1).sum(dim=1)
        if layer.bias is not None and layer.bias.requires_grad:
            scores += (delta @ direction[layer.bias]).reshape(n, -1).sum(dim=1)
    return scores


@torch.no_grad()
def _layerwise_gradients(records: list[_LinearCall], weights: Tensor) -> dict[Tensor, Tensor]:
    """``∇θ Σ_i w_i ℓ_i`` per parameter: ``Σ_i w_i δ_i a_iᵀ`` and ``Σ_i w_i δ_i``."""
    grads: dict[Tensor, Tensor] = {}
    for layer, a, delta in records:
        scaled = (weights.reshape(-1, *[1] * (delta.dim() - 1)) * delta).flatten(0, -2)
        contributions = []
        if layer.weight.requires_grad and isinstance(layer, SparseLinear):
            contributions.append((layer.weight, _table_gradient(a, scaled, layer.weight.shape)))
        elif layer.weight.requires_grad:
            contributions.append((layer.weight, scaled.T @ a.flatten(0, -2)))
        if layer.bias is not None and layer.bias.requires_grad:
            contributions.append((layer.bias, scaled.sum(dim=0)))
        for param, grad in contributions:
            # A layer called more than once (shared weights) sums its calls.
            grads[param] = grads[param] + grad if param in grads else grad
    return grads


def _table_gradient(a: Tensor, scaled: Tensor, shape: torch.Size) -> Tensor:
    """``aᵀ scaled`` for a SparseLinear table: sparse, the rows of ``a``'s features only.

    The layout of the gradient ``nn.EmbeddingBag(sparse=True)`` gives the
    table, which :class:`ldam_sklearn.optim.SGD` updates row by row.
    """
    rows, cols, values = _nonzeros(a)
    return torch.sparse_coo_tensor(
        cols.unsqueeze(0), values.unsqueeze(1) * scaled[rows], shape, check_invariants=False
    ).coalesce()


class _PresetGradient(torch.autograd.Function):
    """Exactly zero in value; backward hands precomputed gradients to the inputs.

    ``apply(grads, *params)`` gives each ``params[k]`` the gradient
    ``grads[k]`` times the incoming gradient (so loss scaling, e.g. by a
    ``GradScaler``, still applies). One autograd node for all parameters
    costs less than one ``⟨g, p - p.detach()⟩`` term per parameter.
    """

    @staticmethod
    def forward(ctx, grads: tuple[Tensor, ...], *params: Tensor) -> Tensor:
        ctx.grads = grads
        return params[0].new_zeros(())

    @staticmethod
    def backward(ctx, grad_output: Tensor) -> tuple[Tensor | None, ...]:
        return (None, *(grad_output * grad for grad in ctx.grads))


def _layerwise_weighted_loss(losses: Tensor, records: list[_LinearCall], weights: Tensor) -> Tensor:
    """``Σ_i w_i ℓ_i`` whose backward writes the exact gradient without a second pass.

    The gradient of the weighted loss wrt a layer's output is ``w_i δ_i``, so
    its parameter gradients are ``Σ_i w_i δ_i a_iᵀ`` and ``Σ_i w_i δ_i``, all
    already at hand. :class:`_PresetGradient` attaches them to the
    parameters; this replaces a full backward through the network by one
    matrix product per layer.
    """
    return _preset_weighted_loss(losses, weights, _layerwise_gradients(records, weights))


def _preset_weighted_loss(losses: Tensor, weights: Tensor, grads: dict[Tensor, Tensor]) -> Tensor:
    """``Σ_i w_i ℓ_i`` whose backward writes ``grads``, its gradient computed beforehand."""
    attached = _PresetGradient.apply(tuple(grads.values()), *grads)
    return (weights * losses).sum() + attached


def _ignore_torch_jit_deprecation() -> None:
    """Silence torch's own ``torch.jit.script`` deprecation, whatever its category.

    torch's first forward-mode AD call in a process scripts its jvp
    decompositions with the deprecated ``torch.jit.script``: a
    ``DeprecationWarning`` in torch 2.13, a ``FutureWarning`` from 2.14. It is
    torch-internal and not actionable by our users, so it is ignored by message
    and only when torch itself issues it; any other warning still shows.
    """
    warnings.filterwarnings(
        "ignore", message="`torch.jit.script` is deprecated", category=Warning, module=r"torch\."
    )


def _jvp_scores(
    module: nn.Module,
    X: Tensor,
    y: Tensor,
    loss_fn: LossFn,
    params: dict[str, Tensor],
    meta_grads: tuple[Tensor, ...],
) -> Tensor:
    # Forward-mode AD has no sparse-layout kernels; a dense copy of the batch
    # costs N x n_features memory but keeps sparse inputs usable here.
    if X.layout != torch.strided:
        X = X.to_dense()
    primals = {name: p.detach() for name, p in params.items()}
    tangents = dict(zip(params, meta_grads, strict=True))
    with warnings.catch_warnings():
        _ignore_torch_jit_deprecation()
        _, scores = jvp(
            lambda p: _per_example_losses(loss_fn, _isolated_forward(module, X, p), y),
            (primals,),
            (tangents,),
        )
    return scores


def _lookahead_scores(
    module: nn.Module,
    X: Tensor,
    y: Tensor,
    X_meta: Tensor,
    y_meta: Tensor,
    loss_fn: LossFn,
    params: dict[str, Tensor],
) -> Tensor:
    losses = _per_example_losses(loss_fn, _isolated_forward(module, X, params), y)
    eps = torch.zeros_like(losses, requires_grad=True)
    grads = torch.autograd.grad(
        (eps * losses).sum(), tuple(params.values()), create_graph=True, materialize_grads=True
    )
    # α = 1: it cancels under normalisation and makes the unnormalised scores
    # the plain dot products, matching the closed-form routes.
    lookahead = {name: p - g for (name, p), g in zip(params.items(), grads, strict=True)}
    meta_loss = _per_example_losses(
        loss_fn, _isolated_forward(module, X_meta, lookahead), y_meta
    ).mean()
    (eps_grad,) = torch.autograd.grad(meta_loss, eps)
    return -eps_grad


def _check_step(
    module: nn.Module, X: Tensor, y: Tensor, X_meta: Tensor, y_meta: Tensor, method: str
) -> tuple[str, list[nn.Module] | None, dict[str, Tensor]]:
    """Validate the batches; the resolved method, its layers and the trainable parameters."""
    if X.shape[0] != y.shape[0] or X_meta.shape[0] != y_meta.shape[0]:
        raise ValueError(
            f"X and y must have the same length ({X.shape[0]} != {y.shape[0]}), and so must "
            f"X_meta and y_meta ({X_meta.shape[0]} != {y_meta.shape[0]})."
        )
    if X.shape[0] == 0 or X_meta.shape[0] == 0:
        raise ValueError("The training batch and the meta batch must both be non-empty.")
    resolved, layers = _resolve_method(module, method)
    params = {name: p for name, p in module.named_parameters() if p.requires_grad}
    if not params:
        raise ValueError("The module has no trainable parameters to weight examples by.")
    return resolved, layers, params


def _warn_lookahead_fallback(stacklevel: int) -> None:
    # Some operations lack forward-mode AD (torch._weight_norm, custom
    # autograd.Functions without ``jvp``); "auto" promises a working route.
    warnings.warn(
        "An operation of the module or loss has no forward-mode AD; falling back to the slower "
        "method='lookahead'. Pass method='lookahead' to silence this warning.",
        RuntimeWarning,
        stacklevel=stacklevel + 1,
    )


class _Scores(NamedTuple):
    scores: Tensor  # ⟨∇θ L_meta(θ), ∇θ ℓ_i(θ)⟩, detached
    meta_loss: Tensor  # L_meta(θ), detached
    # From the layerwise route only: weights -> the weighted training loss
    # built from what the scores already computed, and the batch's detached
    # logits; other routes give None and the caller runs its own forward.
    weighted_loss: Callable[[Tensor], Tensor] | None = None
    logits: Tensor | None = None


def _lookahead_route(module, X, y, X_meta, y_meta, loss_fn, params) -> _Scores:
    scores = _lookahead_scores(module, X, y, X_meta, y_meta, loss_fn, params).detach()
    # The look-ahead graph evaluates the meta loss away from θ; one more
    # forward of the (small) meta batch gives it at θ, as the other routes do.
    with torch.no_grad():
        meta_logits = _isolated_forward(module, X_meta, params)
        meta_loss = _per_example_losses(loss_fn, meta_logits, y_meta).mean()
    return _Scores(scores, meta_loss)


@torch.enable_grad()
def _example_scores(
    module: nn.Module,
    X: Tensor,
    y: Tensor,
    X_meta: Tensor,
    y_meta: Tensor,
    loss_fn: LossFn,
    method: str,
) -> _Scores:
    """Unrectified scores ⟨∇θ L_meta, ∇θ ℓ_i⟩, the meta loss and, where available, a reuse hook."""
    resolved, layers, params = _check_step(module, X, y, X_meta, y_meta, method)
    args = (module, X, y, X_meta, y_meta, loss_fn, params)
    if resolved == "lookahead":
        return _lookahead_route(*args)
    if resolved == "layerwise":
        # Without buffers there is nothing to isolate: a plain call is cheaper.
        meta_loss, meta_grads = _meta_gradient(params, module(X_meta), y_meta, loss_fn)
        losses, records, logits = _layerwise_forward(module, layers, X, y, loss_fn)
        by_param = dict(zip(params.values(), meta_grads, strict=True))
        scores = _layerwise_dots(records, by_param, losses)
        weighted_loss = functools.partial(_layerwise_weighted_loss, losses, records)
        return _Scores(scores, meta_loss, weighted_loss, logits)
    meta_logits = _isolated_forward(module, X_meta, params)
    meta_loss, meta_grads = _meta_gradient(params, meta_logits, y_meta, loss_fn)
    try:
        return _Scores(_jvp_scores(module, X, y, loss_fn, params, meta_grads).detach(), meta_loss)
    except NotImplementedError:
        if method != "auto":
            raise
    _warn_lookahead_fallback(stacklevel=4)
    return _lookahead_route(*args)


def _rectify(scores: Tensor, normalize: bool) -> Tensor:
    weights = scores.clamp(min=0)
    if not normalize:
        return weights
    total = weights.sum()
    # torch.where rather than a Python branch avoids a device sync; the 0/0
    # of the all-zero case is computed but never selected.
    return torch.where(total > 0, weights / total, weights)


def _sign_weights(scores: Tensor, sample_weight: Tensor | None) -> Tensor:
    """``1[score_i > 0] s_i / Σ_j s_j``: an agreeing example keeps its plain-training share.

    Dividing by the batch's total prior weight (its size without
    ``sample_weight``), not by the agreeing examples' total, bounds every
    weight by its share in an ordinary training step, so a step is never
    larger than plain training's. Normalised by the agreeing examples, one
    agreeing example in a batch of 128 took 128 times its share, and the
    fit diverged at lr=0.1 on 5 of 10 real imbalanced data sets (issue #16).
    """
    prior = torch.ones_like(scores) if sample_weight is None else sample_weight.to(scores.dtype)
    total = prior.sum()
    agreeing = (scores > 0).to(scores.dtype) * prior
    # torch.where rather than a Python branch avoids a device sync.
    return torch.where(total > 0, agreeing / total, agreeing)


def l2rw_example_weights(
    module: nn.Module,
    X: Tensor,
    y: Tensor,
    X_meta: Tensor,
    y_meta: Tensor,
    loss_fn: LossFn | None = None,
    *,
    method: str = "auto",
    normalize: bool = True,
) -> Tensor:
    """Per-example weights of Learning to Reweight Examples (Algorithm 1).

    Computes ``w̃_i = max(-∂L_meta/∂ε_i, 0)`` for the training batch
    ``(X, y)`` given the clean meta batch ``(X_meta, y_meta)``, where
    ``L_meta`` is the mean meta loss after a look-ahead step on
    ``Σ_i ε_i ℓ_i``, and normalises them to sum to one [1]_.

    The module is left as found: parameters, ``.grad`` fields, train/eval
    mode and buffers (BatchNorm running statistics included) are untouched.
    Every forward pass runs in the module's current mode; in train mode,
    BatchNorm uses the statistics of the batch being evaluated, so it
    couples the examples of a batch and the weights remain the exact
    derivatives of that batch's vector of losses.

    Parameters
    ----------
    module : torch.nn.Module
        The network being trained.
    X : torch.Tensor of shape (N, ...)
        Training batch inputs, dense or, if ``module`` accepts them, sparse
        (the ``"jvp"`` route then works on a dense copy).
    y : torch.Tensor of shape (N,)
        Training batch targets.
    X_meta : torch.Tensor of shape (M, ...)
        Clean meta batch inputs, ``M >= 1``.
    y_meta : torch.Tensor of shape (M,)
        Clean meta batch targets.
    loss_fn : callable, default=None
        ``loss_fn(logits, target)`` returning per-example losses of shape
        ``(len(target),)``, used for both batches. ``None`` means
        cross-entropy with ``reduction="none"``.
    method : {"auto", "layerwise", "jvp", "lookahead"}, default="auto"
        How to compute the derivative; all are exact. See
        :func:`select_method` and the module docstring. ``"jvp"`` needs
        every operation of ``module`` and ``loss_fn`` to support
        forward-mode automatic differentiation; where one does not,
        ``"auto"`` falls back to ``"lookahead"`` with a
        :class:`RuntimeWarning`, while ``"jvp"`` raises.
    normalize : bool, default=True
        If True, divide the rectified weights by their sum (all zeros stay
        zeros). If False, return the rectified dot products
        ``max(⟨∇θ L_meta, ∇θ ℓ_i⟩, 0)``, i.e. the look-ahead step size taken
        as 1.

    Returns
    -------
    torch.Tensor of shape (N,)
        Detached, non-negative weights.

    Raises
    ------
    ValueError
        If ``method`` is invalid or unsuitable for ``module``, a batch is
        empty, inputs and targets disagree in length, the module has no
        trainable parameters, or ``loss_fn`` does not return per-example
        losses.
    NotImplementedError
        If ``method="jvp"`` meets an operation without forward-mode AD.

    See Also
    --------
    meta_weighted_loss : The weights together with the weighted training loss.

    References
    ----------
    .. [1] M. Ren, W. Zeng, B. Yang and R. Urtasun, "Learning to Reweight
       Examples for Robust Deep Learning", ICML 2018, arXiv:1803.09050.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from ldam_sklearn.meta_reweighting import l2rw_example_weights
    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> X, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    >>> X_meta, y_meta = torch.randn(6, 4), torch.randint(0, 3, (6,))
    >>> w = l2rw_example_weights(net, X, y, X_meta, y_meta)
    >>> w.shape
    torch.Size([16])
    >>> bool((w >= 0).all()), round(w.sum().item(), 4)
    (True, 1.0)
    >>> w_jvp = l2rw_example_weights(net, X, y, X_meta, y_meta, method="jvp")
    >>> torch.allclose(w, w_jvp, atol=1e-5)
    True
    """
    scores = _example_scores(
        module,
        X,
        y,
        X_meta,
        y_meta,
        _default_loss if loss_fn is None else loss_fn,
        method,
    ).scores
    return _rectify(scores, normalize)


def meta_weighted_loss(
    module: nn.Module,
    X: Tensor,
    y: Tensor,
    X_meta: Tensor,
    y_meta: Tensor,
    loss_fn: LossFn | None = None,
    *,
    method: str = "auto",
    sample_weight: Tensor | None = None,
    weighting: str = "exact",
) -> tuple[Tensor, Tensor, Tensor]:
    """Weighted training loss ``Σ_i w_i ℓ_i(θ)`` of one L2RW step.

    Step 5 of Algorithm 1 [1]_: the caller only needs ``loss.backward()``
    and ``optimizer.step()``. The weights come from
    :func:`l2rw_example_weights` (normalised). No ``.grad`` field is
    written before the caller's backward, which accumulates into ``.grad``
    as usual (zero the gradients first).

    The ``"layerwise"`` route reuses the forward and backward pass of its
    weight computation: the parameter gradients ``Σ_i w_i δ_i a_iᵀ`` are
    assembled from quantities already at hand and attached to the
    parameters, so ``loss.backward()`` costs one matrix product per layer
    rather than a pass through the network. That loss propagates gradients
    to the trainable parameters only (not, e.g., to an input that requires
    grad) and does not support higher-order differentiation. The other
    routes run one ordinary forward of ``module`` for the loss, which
    updates BatchNorm running statistics exactly once, as a plain training
    step would.

    Parameters
    ----------
    module : torch.nn.Module
        The network being trained.
    X, y : torch.Tensor
        Training batch, ``N`` examples.
    X_meta, y_meta : torch.Tensor
        Clean meta batch, ``M >= 1`` examples.
    loss_fn : callable, default=None
        Per-example loss ``loss_fn(logits, target)``, as in
        :func:`l2rw_example_weights`.
    method : {"auto", "layerwise", "jvp", "lookahead"}, default="auto"
        How the weights are computed; see :func:`select_method`.
    sample_weight : torch.Tensor of shape (N,), default=None
        Non-negative prior weights ``s_i`` of the training examples (all 1
        when ``None``).
    weighting : {"exact", "sign"}, default="exact"
        ``"exact"``: Algorithm 1's weights ``w_i = s_i w̃_i / Σ_j s_j w̃_j``,
        the rectified scores normalised to sum to 1. One agreeing example
        among disagreeing ones then carries the whole batch's weight.
        ``"sign"``: ``w_i = 1[w̃_i > 0] s_i / Σ_j s_j``, the weights of a
        plain training step with the disagreeing examples set to 0: no
        example weighs more than its plain-training share, so a step is
        never larger than an ordinary one, and a few examples with large
        gradients cannot take over the batch.

    Returns
    -------
    loss : torch.Tensor
        Scalar with a live autograd graph. When every weight is zero it is
        ``0`` and its backward adds zero gradients.
    weights : torch.Tensor of shape (N,)
        The detached weights used.
    logits : torch.Tensor of shape (N, n_classes)
        The detached output of ``module`` on ``X`` (for metrics).

    Raises
    ------
    ValueError, NotImplementedError
        As :func:`l2rw_example_weights`.

    See Also
    --------
    l2rw_example_weights : The weights alone, for inspection.

    References
    ----------
    .. [1] M. Ren, W. Zeng, B. Yang and R. Urtasun, "Learning to Reweight
       Examples for Robust Deep Learning", ICML 2018, arXiv:1803.09050.

    Examples
    --------
    >>> import torch
    >>> from torch import nn
    >>> from ldam_sklearn.meta_reweighting import meta_weighted_loss
    >>> _ = torch.manual_seed(0)
    >>> net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    >>> optimizer = torch.optim.SGD(net.parameters(), lr=0.1)
    >>> X, y = torch.randn(16, 4), torch.randint(0, 3, (16,))
    >>> X_meta, y_meta = torch.randn(6, 4), torch.randint(0, 3, (6,))
    >>> optimizer.zero_grad()
    >>> loss, weights, logits = meta_weighted_loss(net, X, y, X_meta, y_meta)
    >>> loss.backward()
    >>> optimizer.step()
    >>> loss.dim(), weights.shape, round(weights.sum().item(), 4)
    (0, torch.Size([16]), 1.0)
    >>> _, sign_weights, _ = meta_weighted_loss(net, X, y, X_meta, y_meta, weighting="sign")
    >>> bool(sign_weights.max() <= 1 / len(y))
    True
    """
    step = _meta_weighted_step(
        module,
        X,
        y,
        X_meta,
        y_meta,
        _default_loss if loss_fn is None else loss_fn,
        method=method,
        sample_weight=sample_weight,
        weighting=weighting,
    )
    return step.loss, step.weights, step.logits


class _WeightedStep(NamedTuple):
    loss: Tensor
    weights: Tensor
    logits: Tensor
    meta_loss: Tensor  # L_meta(θ), detached, for the estimator's history


@torch.enable_grad()
def _meta_weighted_step(
    module: nn.Module,
    X: Tensor,
    y: Tensor,
    X_meta: Tensor,
    y_meta: Tensor,
    loss_fn: LossFn,
    *,
    method: str,
    sample_weight: Tensor | None,
    weighting: str,
) -> _WeightedStep:
    """:func:`meta_weighted_loss`, and the meta loss it computed on the way."""
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting={weighting!r} is not valid; choose one of {WEIGHTINGS}.")
    scores = _example_scores(module, X, y, X_meta, y_meta, loss_fn, method)
    if weighting == "sign":
        weights = _sign_weights(scores.scores, sample_weight)
    else:
        scaled = scores.scores if sample_weight is None else scores.scores * sample_weight
        weights = _rectify(scaled, True)
    if scores.weighted_loss is None:
        logits = module(X)
        loss = (weights * _per_example_losses(loss_fn, logits, y)).sum()
        return _WeightedStep(loss, weights, logits.detach(), scores.meta_loss)
    return _WeightedStep(scores.weighted_loss(weights), weights, scores.logits, scores.meta_loss)
