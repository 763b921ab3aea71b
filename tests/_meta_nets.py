"""The small float64 networks on which the meta-reweighting tests check exact gradients."""

import torch
from torch import nn

from ldam_sklearn.modules import SparseLinear


def make_mlp(seed: int, n_features: int, n_classes: int) -> nn.Sequential:
    """Linear layers only (the layerwise route), with ReLU and Tanh between them."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(n_features, 12), nn.ReLU(), nn.Linear(12, 8), nn.Tanh(), nn.Linear(8, n_classes)
    ).double()


def make_bn_net(seed: int, n_features: int, n_classes: int) -> nn.Sequential:
    """A BatchNorm1d between two linear layers: the routes that isolate buffers."""
    torch.manual_seed(seed)
    net = nn.Sequential(
        nn.Linear(n_features, 12), nn.BatchNorm1d(12), nn.ReLU(), nn.Linear(12, n_classes)
    ).double()
    # Non-trivial running statistics, so that "unchanged" and eval mode mean something.
    net[1].running_mean.normal_()
    net[1].running_var.uniform_(0.5, 2.0)
    return net


def make_sparse_net(seed: int, n_features: int, n_classes: int) -> tuple[nn.Module, nn.Module]:
    """A SparseLinear first layer (the default for sparse training data), and a dense twin.

    The twin computes the same function with ``nn.Linear`` layers (the
    SparseLinear weight transposed), for dense input.
    """
    torch.manual_seed(seed)
    net = nn.Sequential(
        SparseLinear(n_features, 12),
        nn.ReLU(),
        nn.Linear(12, 8),
        nn.Tanh(),
        nn.Linear(8, n_classes),
    ).double()
    twin = make_mlp(seed, n_features, n_classes)
    with torch.no_grad():
        twin[0].weight.copy_(net[0].weight.T)
        twin[0].bias.copy_(net[0].bias)
    twin[2:].load_state_dict(net[2:].state_dict())
    return net, twin


def sparse_rows(X: torch.Tensor, seed: int) -> torch.Tensor:
    """``X`` with about two thirds of its entries zeroed, as a coalesced sparse COO tensor."""
    gen = torch.Generator().manual_seed(seed)
    keep = torch.rand(X.shape, generator=gen) < 1 / 3
    return (X * keep).to_sparse().coalesce()
