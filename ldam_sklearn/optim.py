"""Optimizers: SGD that updates sparse-gradient parameters lazily, row by row."""

from __future__ import annotations

import torch

__all__ = ["SGD"]


class SGD(torch.optim.SGD):
    """``torch.optim.SGD`` that also takes sparse gradients, with lazy row updates.

    Parameters whose gradient is dense are updated by ``torch.optim.SGD``
    itself, with the same numbers. A parameter whose gradient is a sparse
    COO tensor (the weight of :class:`ldam_sklearn.modules.SparseLinear`,
    or of ``nn.Embedding(sparse=True)``) is updated *lazily*, as
    :class:`torch.optim.SparseAdam` [2]_ and TensorFlow's lazy optimizers
    update theirs: weight decay, the momentum buffer and the step act on the
    rows present in the gradient only, with torch's formulas restricted to
    those rows,

    .. math::

        g_r \\leftarrow \\nabla_r f(\\theta) + \\lambda \\theta_r, \\quad
        b_r \\leftarrow \\mu b_r + g_r, \\quad
        \\theta_r \\leftarrow \\theta_r - \\gamma
        \\,(g_r + \\mu b_r \\text{ if nesterov else } b_r),

    for each row :math:`r` in the gradient (negated with ``maximize``), the
    buffer :math:`b` starting at zero: the heavy-ball or Nesterov momentum
    of Sutskever et al. [1]_ (with torch's placement of the learning rate). Rows
    absent from the gradient keep their values and their momentum. A step
    costs O(touched rows x width) instead of O(rows x width); when every row
    is in every gradient, the result is torch's SGD on the densified
    gradient (up to float rounding). The momentum buffer is a dense tensor
    allocated once and updated in place.

    Parameters
    ----------
    params : iterable of torch.Tensor or dict
        Parameters to optimize, or parameter groups.
    lr : float or torch.Tensor, default=1e-3
        Learning rate :math:`\\gamma`.
    momentum : float, default=0
        Momentum factor :math:`\\mu`.
    dampening : float, default=0
        Dampening of the momentum. Only ``0`` is supported for parameters
        with sparse gradients (torch starts the buffer at the first gradient
        undamped, which has no row-wise counterpart); ``step`` raises a
        ``ValueError`` otherwise.
    weight_decay : float or torch.Tensor, default=0
        L2 penalty :math:`\\lambda`.
    nesterov : bool, default=False
        Nesterov momentum.
    maximize : bool, default=False
        Maximize the objective instead of minimizing it.
    foreach, fused, differentiable : optional
        As in ``torch.optim.SGD``, for parameters with dense gradients;
        ``fused=True`` and ``differentiable=True`` are rejected for
        parameters with sparse gradients.

    Attributes
    ----------
    supports_sparse_gradients : bool
        ``True``: the estimators give their default network a
        :class:`~ldam_sklearn.modules.SparseLinear` first layer for sparse
        input only with an optimizer that has this attribute set.
    param_groups : list of dict
        As in every torch optimizer.
    state : dict
        Per parameter, ``"momentum_buffer"``: a tensor of the parameter's
        shape (dense for sparse-gradient parameters too).

    References
    ----------
    .. [1] I. Sutskever, J. Martens, G. Dahl and G. Hinton, "On the importance
       of initialization and momentum in deep learning", ICML 2013.
    .. [2] PyTorch documentation, "torch.optim.SparseAdam" and "torch.optim.SGD",
       https://pytorch.org/docs/stable/generated/torch.optim.SparseAdam.html;
       A. Paszke et al., "PyTorch: An Imperative Style, High-Performance Deep
       Learning Library", NeurIPS 2019, arXiv:1912.01703.

    Examples
    --------
    >>> import torch
    >>> table = torch.nn.Embedding(4, 2, sparse=True)
    >>> opt = SGD(table.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    >>> before = table.weight.detach().clone()
    >>> table(torch.tensor([0, 2])).sum().backward()
    >>> opt.step()
    >>> changed = (table.weight != before).any(dim=1)
    >>> changed.tolist()  # rows 1 and 3 were not in the batch
    [True, False, True, False]
    """

    supports_sparse_gradients = True

    def step(self, closure=None):
        """Perform one optimization step.

        Parameters
        ----------
        closure : callable, default=None
            Re-evaluates the model and returns the loss.

        Returns
        -------
        loss : torch.Tensor or None
            What ``closure`` returned.

        Examples
        --------
        >>> import torch
        >>> w = torch.nn.Parameter(torch.ones(2))
        >>> opt = SGD([w], lr=0.5)
        >>> w.sum().backward()
        >>> opt.step()
        >>> w.tolist()
        [0.5, 0.5]
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        sparse = [
            (group, p)
            for group in self.param_groups
            for p in group["params"]
            if p.grad is not None and p.grad.is_sparse
        ]
        for group, _ in sparse:
            _check_sparse_group(group)
        # torch's SGD updates the parameters with dense gradients; it skips
        # parameters without one, so the sparse ones are hidden from it.
        grads = [p.grad for _, p in sparse]
        for _, p in sparse:
            p.grad = None
        try:
            _torch_sgd_step(self)
        finally:
            for (_, p), grad in zip(sparse, grads, strict=True):
                p.grad = grad
        with torch.no_grad():
            for group, p in sparse:
                self._lazy_update(group, p)
        return loss

    def _lazy_update(self, group: dict, p: torch.Tensor) -> None:
        rows, g = _row_gradient(p.grad)
        if group["maximize"]:
            g = -g
        lr, weight_decay, momentum = (
            _scalar(group["lr"]),
            _scalar(group["weight_decay"]),
            group["momentum"],
        )
        p_rows = p.index_select(0, rows)
        if weight_decay != 0:
            g = g.add(p_rows, alpha=weight_decay)
        if momentum != 0:
            state = self.state[p]
            buf = state.get("momentum_buffer")
            if buf is None:
                # Zeros, then mu * 0 + g = g: torch's first step (buffer = g).
                buf = state["momentum_buffer"] = torch.zeros_like(
                    p, memory_format=torch.preserve_format
                )
            b = buf.index_select(0, rows).mul_(momentum).add_(g)
            buf.index_copy_(0, rows, b)
            g = g.add(b, alpha=momentum) if group["nesterov"] else b
        p.index_copy_(0, rows, p_rows.add_(g, alpha=-lr))


def _check_sparse_group(group: dict) -> None:
    unsupported = {
        "dampening": group["dampening"] != 0,
        "fused": bool(group.get("fused")),
        "differentiable": bool(group.get("differentiable")),
    }
    for option, given in unsupported.items():
        if given:
            raise ValueError(
                f"ldam_sklearn.optim.SGD updates parameters with sparse gradients lazily, "
                f"which does not support {option}={group[option]!r}. Use the default "
                f"{option}, or a dense first layer (module__sparse_input=False)."
            )


def _row_gradient(grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The touched rows of a sparse COO gradient (sorted, unique) and their values."""
    grad = grad.coalesce()
    indices, values = grad.indices(), grad.values()
    if grad.sparse_dim() == 1:  # nn.EmbeddingBag / nn.Embedding: whole rows
        return indices[0], values
    rows, inverse = torch.unique(indices[0], sorted=True, return_inverse=True)
    block = values.new_zeros((len(rows), *grad.shape[1:]))
    block[(inverse, *indices[1:])] = values
    return rows, block


def _scalar(value) -> float:
    return value.item() if isinstance(value, torch.Tensor) else value


def _torch_sgd_step(optimizer: SGD) -> None:
    step = torch.optim.SGD.step
    # Optimizer.__init__ wraps each class's step once in a wrapper that runs
    # the step hooks ("hooked"); they already ran around this class's step.
    if getattr(step, "hooked", False):
        step = step.__wrapped__
    step(optimizer)
