"""The small float64 networks on which the meta-reweighting tests check exact gradients."""

import torch
from torch import nn


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
