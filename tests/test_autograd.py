"""Gradients (gradcheck, gradgradcheck), determinism, saved bytes, opcheck."""

import pytest
import torch
import torch.nn.functional as TF

import poolext
import poolext.functional as PF
from poolext import _args

ops = torch.ops.poolext

# (kind, rank, shape, kwargs): overlapping, strided, padded, dilated, ceil_mode windows.
GRAD_CASES = [
    ("max", 1, (2, 3, 11), dict(kernel_size=3, stride=2, padding=1)),
    ("max", 1, (3, 9), dict(kernel_size=2, dilation=3, ceil_mode=True)),
    ("max", 2, (2, 2, 7, 8), dict(kernel_size=3, stride=2, padding=1)),
    ("max", 2, (1, 2, 7, 7), dict(kernel_size=(2, 3), stride=1, dilation=(2, 1), ceil_mode=True)),
    ("max", 3, (1, 2, 5, 6, 5), dict(kernel_size=3, stride=2, padding=1)),
    ("max", 3, (2, 4, 4, 5), dict(kernel_size=2, stride=1)),
    ("avg", 1, (2, 3, 11), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False)),
    ("avg", 2, (2, 2, 7, 8), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
    ("avg", 2, (1, 2, 6, 6), dict(kernel_size=(3, 2), stride=1, divisor_override=5)),
    ("avg", 3, (1, 2, 5, 6, 5), dict(kernel_size=3, stride=2, padding=1, count_include_pad=False,
                                     ceil_mode=True)),
    ("avg", 3, (2, 4, 4, 5), dict(kernel_size=2, stride=1)),
]


def _fn(kind, rank):
    return getattr(PF, f"{kind}_pool{rank}d")


def _distinct(shape, channels_last=False):
    """Distinct values, so max pooling is differentiable at the point."""
    n = 1
    for s in shape:
        n *= s
    x = (torch.randperm(n, dtype=torch.float64) / n).view(shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last if x.dim() == 4 else torch.channels_last_3d)
    return x.requires_grad_()


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("kind,rank,shape,kw", GRAD_CASES, ids=lambda v: str(v))
def test_gradcheck_and_gradgradcheck(kind, rank, shape, kw, channels_last):
    if channels_last and len(shape) != rank + 2 or (channels_last and rank == 1):
        pytest.skip("channels_last needs a batched 2d/3d input")
    x = _distinct(shape, channels_last)
    f = _fn(kind, rank)
    assert torch.autograd.gradcheck(lambda t: f(t, **kw), (x,))
    assert torch.autograd.gradgradcheck(lambda t: f(t, **kw), (x,))


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_gradcheck_through_return_indices(rank):
    shape = (2, 3) + (7,) * rank
    x = _distinct(shape)
    f = _fn("max", rank)
    assert torch.autograd.gradcheck(lambda t: f(t, 3, 2, 1, return_indices=True)[0], (x,))


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
def test_backward_is_deterministic(kind, rank, layout):
    """Overlapping windows, many contributions per element: two runs bit-identical."""
    if layout == "channels_last" and rank == 1:
        pytest.skip("no channels_last for 1d")
    torch.manual_seed(1)
    shape = (4, 8) + (12,) * rank
    x = torch.randint(-2, 3, shape).float()  # ties everywhere
    if layout == "channels_last":
        x = x.contiguous(memory_format=torch.channels_last if rank == 2 else torch.channels_last_3d)
    g = None
    grads = []
    for _ in range(2):
        xi = x.clone().requires_grad_()
        y = _fn(kind, rank)(xi, 3, 1, 1)
        g = torch.randn_like(y) if g is None else g
        y.backward(g)
        grads.append(xi.grad)
    assert torch.equal(grads[0], grads[1])
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        xi = x.clone().requires_grad_()
        _fn(kind, rank)(xi, 3, 1, 1).backward(g)
        assert torch.equal(xi.grad, grads[0])
    finally:
        torch.use_deterministic_algorithms(before)


def _saved_bytes(fn, x):
    total = 0

    def pack(t):
        nonlocal total
        total += t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = fn(x)
    return total, (y[0] if isinstance(y, tuple) else y).numel()


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("return_indices", [False, True])
def test_max_pool_saves_one_byte_per_output(rank, return_indices):
    x = torch.randn((2, 16) + (16,) * rank, requires_grad=True)
    ours, n_out = _saved_bytes(lambda t: _fn("max", rank)(t, 3, 2, 1,
                                                          return_indices=return_indices), x)
    theirs, _ = _saved_bytes(lambda t: getattr(TF, f"max_pool{rank}d")(
        t, 3, 2, 1, return_indices=return_indices), x)
    assert ours <= n_out, (ours, n_out)
    assert theirs >= 8 * n_out  # torch keeps int64 indices (and the input)


def test_avg_pool_saves_nothing():
    x = torch.randn(2, 4, 16, 16, requires_grad=True)
    saved, _ = _saved_bytes(lambda t: PF.avg_pool2d(t, 3, 2, 1), x)
    assert saved == 0


def test_wide_windows_use_wider_argmax():
    assert _args.argmax_dtype((16, 16)) == torch.uint8
    assert _args.argmax_dtype((17, 16)) == torch.int16
    assert _args.argmax_dtype((300, 300)) == torch.int32
    # A 20x20 window (400 taps) needs two bytes, and its gradient still matches torch.
    x = torch.randn(1, 2, 41, 41, requires_grad=True)
    y = PF.max_pool2d(x, 20, 7, 0)
    saved, n = _saved_bytes(lambda t: PF.max_pool2d(t, 20, 7, 0), x)
    assert saved == 2 * n
    y.backward(torch.ones_like(y))
    x2 = x.detach().clone().requires_grad_()
    TF.max_pool2d(x2, 20, 7, 0).backward(torch.ones_like(y))
    assert torch.equal(x.grad, x2.grad)


def _op_samples():
    x = torch.randn(2, 3, 9, 8)
    xc = x.contiguous(memory_format=torch.channels_last)
    k, s, p, d = [3, 2], [2, 1], [1, 0], [1, 2]
    out, am, _ = ops.max_pool(x, k, s, p, d, True, False, True, False)
    outc, amc, _ = ops.max_pool(xc, k, s, p, d, True, True, True, False)
    g, gc = torch.randn_like(out), torch.randn_like(outc).contiguous(
        memory_format=torch.channels_last)
    a = ops.avg_pool(x, k, s, p, True, False, None, False)
    return [
        (ops.max_pool.default, (x, k, s, p, d, True, False, True, True)),
        (ops.max_pool.default, (xc, k, s, p, d, False, True, False, True)),
        (ops.max_pool.default, (x[0], [3], [2], [1], [1], False, False, True, False)),
        (ops.max_pool_backward.default, (g, am, list(x.shape), k, s, p, d, True, False)),
        (ops.max_pool_backward.default, (gc, amc, list(xc.shape), k, s, p, d, True, True)),
        (ops.max_pool_gather.default, (torch.randn_like(x), am, k, s, p, d, True, False)),
        (ops.avg_pool.default, (x, k, s, p, True, False, None, False)),
        (ops.avg_pool.default, (xc, k, s, p, False, True, 3, True)),
        (ops.avg_pool.default, (x.unsqueeze(2).expand(2, 3, 2, 9, 8), [2, 3, 2], [1, 2, 2],
                                [1, 1, 0], False, True, None, False)),
        (ops.avg_pool_backward.default, (torch.randn_like(a), list(x.shape), k, s, p, True, False,
                                         None, False)),
    ]


@pytest.mark.parametrize("i", range(10))
def test_opcheck(i):
    op, args = _op_samples()[i]
    torch.library.opcheck(op, args)


def test_every_op_is_opchecked():
    covered = {op._overloadpacket._qualified_op_name for op, _ in _op_samples()}
    assert covered == {f"poolext::{n}" for n in ("max_pool", "max_pool_backward",
                                                  "max_pool_gather", "avg_pool",
                                                  "avg_pool_backward")}


class SmallCNN(torch.nn.Module):
    def __init__(self, pool_mod):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.pool1 = pool_mod.MaxPool2d(3, stride=2, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)
        self.pool2 = pool_mod.AvgPool2d(2, ceil_mode=True, count_include_pad=False)
        self.pool3 = pool_mod.MaxPool1d(2)
        self.head = torch.nn.Linear(8 * 4 * 2, 5)

    def forward(self, x):
        x = self.pool1(torch.relu(self.conv1(x)))
        x = self.pool2(torch.relu(self.conv2(x)))
        x = self.pool3(x.flatten(2))
        return self.head(x.flatten(1))


@pytest.mark.slow
@pytest.mark.parametrize("channels_last", [False, True])
def test_torch_compile_fullgraph(channels_last):
    torch.manual_seed(0)
    model = SmallCNN(poolext)
    x = torch.randn(4, 3, 15, 15)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    torch._dynamo.reset()
    compiled = torch.compile(model, fullgraph=True)
    y_eager = model(x)
    y_eager.square().sum().backward()
    g_eager = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    y_comp = compiled(x)
    y_comp.square().sum().backward()
    g_comp = [p.grad.clone() for p in model.parameters()]
    torch.testing.assert_close(y_comp, y_eager)
    for a, b in zip(g_comp, g_eager):
        torch.testing.assert_close(a, b)
    # Same numbers as the torch.nn model with the same weights.
    ref = SmallCNN(torch.nn)
    ref.load_state_dict(model.state_dict())
    torch.testing.assert_close(ref(x), y_eager)


def test_torch_compile_no_graph_break():
    torch._dynamo.reset()
    explain = torch._dynamo.explain(SmallCNN(poolext))(torch.randn(2, 3, 15, 15))
    assert explain.graph_break_count == 0, explain.break_reasons
