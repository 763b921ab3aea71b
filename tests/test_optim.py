"""Optimizers: torch's SGD for dense gradients, lazy row updates for sparse ones."""

import copy

import pytest
import torch
from torch import nn

from ldam_sklearn.modules import SparseLinear
from ldam_sklearn.optim import SGD

CONFIGS = [
    {"lr": 0.1},
    {"lr": 0.1, "momentum": 0.9, "weight_decay": 2e-4},
    {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-2, "nesterov": True},
    {"lr": 0.1, "momentum": 0.5, "weight_decay": 1e-3, "maximize": True},
]
IDS = ["plain", "momentum_wd", "nesterov", "maximize"]


def _coo(indices, values, size):
    return torch.sparse_coo_tensor(indices, values, size, check_invariants=True)


def _states_equal(a, b):
    for p, q in zip(a.param_groups[0]["params"], b.param_groups[0]["params"], strict=True):
        buf_a = a.state[p].get("momentum_buffer")
        buf_b = b.state[q].get("momentum_buffer")
        assert (buf_a is None) == (buf_b is None)
        if buf_a is not None:
            torch.testing.assert_close(buf_a, buf_b, rtol=0, atol=0)


@pytest.mark.parametrize(
    "config", CONFIGS + [{"lr": 0.1, "momentum": 0.9, "dampening": 0.3}], ids=IDS + ["dampening"]
)
def test_dense_gradients_get_exactly_torch_sgd(config):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    ref = copy.deepcopy(net)
    ours, theirs = SGD(net.parameters(), **config), torch.optim.SGD(ref.parameters(), **config)
    for _ in range(6):
        X, y = torch.randn(16, 6), torch.randint(0, 3, (16,))
        for model, opt in ((net, ours), (ref, theirs)):
            opt.zero_grad()
            nn.functional.cross_entropy(model(X), y).backward()
            opt.step()
    for p, q in zip(net.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    _states_equal(ours, theirs)


def _as_sparse(grad, form):
    if form == "rows":  # what nn.EmbeddingBag(sparse=True) gives: whole rows
        return grad.to_sparse(sparse_dim=1)
    if form == "entries":  # one index per entry
        return grad.to_sparse()
    # uncoalesced: every row twice, halves of the gradient
    n = grad.shape[0]
    rows = torch.arange(n).repeat(2)[None]
    return _coo(rows, torch.cat([grad / 2, grad / 2]), grad.shape)


@pytest.mark.parametrize("form", ["rows", "entries", "uncoalesced"])
@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_sparse_gradient_touching_every_row_matches_torch_sgd(config, form):
    torch.manual_seed(0)
    w = nn.Parameter(torch.randn(10, 4))
    w_ref = nn.Parameter(w.detach().clone())
    ours, theirs = SGD([w], **config), torch.optim.SGD([w_ref], **config)
    for _ in range(8):
        grad = torch.randn(10, 4)
        w.grad, w_ref.grad = _as_sparse(grad, form), grad
        ours.step()
        theirs.step()
    torch.testing.assert_close(w, w_ref, rtol=0, atol=1e-6)
    if config.get("momentum"):
        buf = ours.state[w]["momentum_buffer"]
        assert buf.layout == torch.strided
        torch.testing.assert_close(buf, theirs.state[w_ref]["momentum_buffer"], rtol=0, atol=1e-6)


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_rows_never_touched_stay_unchanged(config):
    torch.manual_seed(0)
    w = nn.Parameter(torch.randn(8, 3))
    before = w.detach().clone()
    touched = torch.tensor([0, 2, 5])
    # The touched rows follow torch's SGD on the table of those rows alone.
    sub = nn.Parameter(before[touched].clone())
    ours, theirs = SGD([w], **config), torch.optim.SGD([sub], **config)
    for step in range(6):
        grad = torch.randn(3, 3)
        rows = touched if step % 2 else touched.flip(0)  # order does not matter
        w.grad = _coo(rows[None], grad if step % 2 else grad.flip(0), (8, 3))
        sub.grad = grad
        ours.step()
        theirs.step()
    untouched = torch.tensor([1, 3, 4, 6, 7])
    torch.testing.assert_close(w[untouched], before[untouched], rtol=0, atol=0)
    torch.testing.assert_close(w[touched], sub, rtol=0, atol=1e-6)
    if config.get("momentum"):
        assert not ours.state[w]["momentum_buffer"][untouched].any()


def test_rows_absent_from_a_step_keep_their_value_and_momentum():
    # Lazy, not dense: with a zero gradient, torch's SGD would go on moving
    # row 0 by its momentum and shrink it by weight decay.
    w = nn.Parameter(torch.randn(3, 2))
    opt = SGD([w], lr=0.1, momentum=0.9, weight_decay=1e-2)
    w.grad = _coo(torch.tensor([[0, 1]]), torch.ones(2, 2), (3, 2))
    opt.step()
    row0, buf0 = w[0].detach().clone(), opt.state[w]["momentum_buffer"][0].clone()
    assert buf0.abs().sum() > 0
    for _ in range(3):
        w.grad = _coo(torch.tensor([[1]]), torch.ones(1, 2), (3, 2))
        opt.step()
    torch.testing.assert_close(w[0], row0, rtol=0, atol=0)
    torch.testing.assert_close(opt.state[w]["momentum_buffer"][0], buf0, rtol=0, atol=0)


def test_momentum_buffer_is_updated_in_place():
    torch.manual_seed(0)
    w = nn.Parameter(torch.randn(50, 4))
    opt = SGD([w], lr=0.1, momentum=0.9, weight_decay=1e-4)
    pointers = []
    for _ in range(5):
        rows = torch.randperm(50)[:7]
        w.grad = _coo(rows[None], torch.randn(7, 4), (50, 4))
        opt.step()
        buf = opt.state[w]["momentum_buffer"]
        assert buf.layout == torch.strided and buf.shape == w.shape
        pointers.append(buf.data_ptr())
    assert len(set(pointers)) == 1
    # the parameter keeps its storage too
    ptr = w.data_ptr()
    opt.step()
    assert w.data_ptr() == ptr


def test_sparse_linear_trained_lazily_matches_nn_linear_when_every_feature_is_present():
    # Every column has a non-zero in every batch, so the lazy update is the
    # dense one; the rest of the network has dense gradients either way.
    torch.manual_seed(0)
    first = SparseLinear(6, 5)
    net = nn.Sequential(first, nn.ReLU(), nn.Linear(5, 3))
    ref_first = nn.Linear(6, 5)
    with torch.no_grad():
        ref_first.weight.copy_(first.weight.T)
        ref_first.bias.copy_(first.bias)
    ref = nn.Sequential(ref_first, nn.ReLU(), copy.deepcopy(net[2]))
    config = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-3, "nesterov": True}
    ours, theirs = SGD(net.parameters(), **config), torch.optim.SGD(ref.parameters(), **config)
    for _ in range(5):
        X = torch.randn(12, 6) * (torch.rand(12, 6) < 0.5)
        X[torch.arange(6), torch.arange(6)] = 1.0  # every column present
        y = torch.randint(0, 3, (12,))
        for model, opt, batch in ((net, ours, X.to_sparse()), (ref, theirs, X)):
            opt.zero_grad()
            nn.functional.cross_entropy(model(batch), y).backward()
            opt.step()
    assert first.weight.grad.layout == torch.sparse_coo
    torch.testing.assert_close(first.weight, ref_first.weight.T, rtol=0, atol=1e-6)
    torch.testing.assert_close(first.bias, ref_first.bias, rtol=0, atol=1e-6)
    torch.testing.assert_close(net[2].weight, ref[2].weight, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "option", [{"dampening": 0.1}, {"differentiable": True}], ids=["dampening", "differentiable"]
)
def test_unsupported_options_for_sparse_gradients_raise(option):
    w = nn.Parameter(torch.randn(4, 2))
    opt = SGD([w], lr=0.1, momentum=0.9, **option)
    w.grad = torch.randn(4, 2).to_sparse(sparse_dim=1)
    before = w.detach().clone()
    name = next(iter(option))
    with pytest.raises(ValueError, match=f"does not support {name}="):
        opt.step()
    assert w.grad.is_sparse  # the gradient is left as it was
    torch.testing.assert_close(w, before, rtol=0, atol=0)


def test_closure_and_step_hooks_run_once():
    torch.optim.SGD([nn.Parameter(torch.ones(1))])  # torch's own step gets its hook wrapper
    table = nn.Embedding(5, 2, sparse=True)
    bias = nn.Parameter(torch.zeros(2))
    opt = SGD([table.weight, bias], lr=0.1, momentum=0.9)
    calls = []
    opt.register_step_pre_hook(lambda *args: calls.append("pre"))
    opt.register_step_post_hook(lambda *args: calls.append("post"))

    def closure():
        opt.zero_grad()
        loss = (table(torch.tensor([1, 3])) + bias).square().sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert isinstance(loss, torch.Tensor)
    assert calls == ["pre", "post"]
    assert bias.grad is not None and table.weight.grad.is_sparse


def test_state_dict_round_trip_continues_identically():
    torch.manual_seed(0)
    w = nn.Parameter(torch.randn(6, 2))
    opt = SGD([w], lr=0.1, momentum=0.9, weight_decay=1e-3)
    grads = [_coo(torch.tensor([[i, 5]]), torch.randn(2, 2), (6, 2)) for i in range(4)]
    w.grad = grads[0]
    opt.step()
    w2 = nn.Parameter(w.detach().clone())
    opt2 = SGD([w2], lr=0.1, momentum=0.9, weight_decay=1e-3)
    opt2.load_state_dict(copy.deepcopy(opt.state_dict()))
    for grad in grads[1:]:
        w.grad, w2.grad = grad, grad
        opt.step()
        opt2.step()
    torch.testing.assert_close(w, w2, rtol=0, atol=0)


def test_supports_sparse_gradients():
    assert SGD.supports_sparse_gradients is True
    assert issubclass(SGD, torch.optim.SGD)
