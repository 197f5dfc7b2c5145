"""Adaptive pooling against torch: values, indices, layouts, gradients, refusals."""

import copy
import pickle

import pytest
import torch
import torch.nn.functional as TF

import poolext
import poolext.functional as PF
from cases import (FLOAT_TYPES, assert_bit_equal, assert_raises_like_torch, avg_tolerance,
                   grad_tolerance, random_input, rng_for, same_memory_format,
                   skip_if_torch_behaves_old)

ops = torch.ops.poolext


def _fns(kind, rank):
    name = f"adaptive_{kind}_pool{rank}d"
    return getattr(PF, name), getattr(TF, name)


def random_output_size(rng, spatial, rank):
    """Divisible, non-divisible, larger than the input, 1 (global), None."""
    out = []
    for L in spatial:
        choice = rng.random()
        if choice < 0.2:
            out.append(1)
        elif choice < 0.4:
            out.append(L + rng.randint(1, 4))
        elif choice < 0.5 and rank > 1:
            out.append(None)
        elif choice < 0.6:
            divisors = [d for d in range(1, L + 1) if L % d == 0]
            out.append(rng.choice(divisors))
        else:
            out.append(rng.randint(1, L + 2))
    if rng.random() < 0.15 and all(o is not None for o in out) and len(set(out)) == 1:
        return out[0]  # a plain int
    return tuple(out)


def _reference(fn, x, *args):
    """torch on a contiguous copy: its channels_last kernels differ on NaN ties."""
    return fn(x.contiguous(), *args)


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("seed", range(12))
def test_forward_matches_torch(kind, rank, dtype, seed):
    if kind == "max" and rank == 3 and dtype == torch.float16:
        skip_if_torch_behaves_old("half-adaptive-max3d-cpu")
    rng = rng_for("adaptive-fwd", kind, rank, dtype, seed)
    x, layout = random_input(rng, kind, rank, dtype)
    if x.dim() == rank + 2 and x.shape[1] == 0:
        x = x[:, :1]
    out_size = random_output_size(rng, x.shape[x.dim() - rank:], rank)
    ours_fn, torch_fn = _fns(kind, rank)
    if kind == "max":
        y, idx = ours_fn(x, out_size, return_indices=True)
        ry, ridx = _reference(torch_fn, x, out_size, True)
        assert_bit_equal(y, ry)
        assert torch.equal(idx, ridx)
        assert same_memory_format(idx, torch_fn(x, out_size, True)[1])
        assert_bit_equal(ours_fn(x, out_size), ry)  # without indices
    else:
        y = ours_fn(x, out_size)
        ry = _reference(torch_fn, x, out_size)
        assert y.dtype == ry.dtype and y.shape == ry.shape
        torch.testing.assert_close(y, ry, equal_nan=True, **avg_tolerance(dtype))
    assert same_memory_format(y, torch_fn(x, out_size) if kind == "avg" else
                              torch_fn(x, out_size, True)[0]), layout


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("dtype", FLOAT_TYPES)
@pytest.mark.parametrize("seed", range(6))
def test_backward_matches_torch(kind, rank, dtype, seed):
    if kind == "max" and rank == 3 and dtype == torch.float16:
        skip_if_torch_behaves_old("half-adaptive-max3d-cpu")
    rng = rng_for("adaptive-bwd", kind, rank, dtype, seed)
    x, _ = random_input(rng, kind, rank, dtype)
    if x.dim() == rank + 2 and x.shape[1] == 0:
        x = x[:, :1]
    x = torch.nan_to_num(x)  # gradients through NaN windows are compared in the forward test
    out_size = random_output_size(rng, x.shape[x.dim() - rank:], rank)
    ours_fn, torch_fn = _fns(kind, rank)
    xa = x.detach().clone().requires_grad_()
    xb = x.detach().contiguous().requires_grad_()
    ya, yb = ours_fn(xa, out_size), torch_fn(xb, out_size)
    g = torch.randn(ya.shape, generator=torch.Generator().manual_seed(seed)).to(dtype)
    ya.backward(g)
    yb.backward(g.contiguous())
    assert xa.grad.dtype == dtype and xa.grad.shape == x.shape
    torch.testing.assert_close(xa.grad, xb.grad, **grad_tolerance(dtype))


# (kind, shape, output_size, channels_last): non-divisible, overlapping,
# larger-than-input, global and divisible windows.
GRAD_CASES = [
    ("max", 1, (2, 3, 11), 4, False),
    ("max", 1, (3, 7), 9, False),
    ("max", 2, (2, 2, 7, 5), (3, 4), False),
    ("max", 2, (2, 3, 7, 5), (3, 4), True),
    ("max", 3, (1, 2, 5, 4, 7), (2, 3, 3), False),
    ("max", 2, (2, 4, 4), (2, 2), False),
    ("avg", 1, (2, 3, 11), 4, False),
    ("avg", 2, (2, 2, 7, 5), (3, 9), False),
    ("avg", 2, (2, 3, 7, 5), (3, 4), True),
    ("avg", 3, (1, 2, 5, 4, 7), (2, None, 3), False),
    ("avg", 2, (2, 6, 6), 1, False),
]


def _distinct(shape, channels_last=False):
    n = 1
    for s in shape:
        n *= s
    x = (torch.randperm(n, dtype=torch.float64) / n).view(shape)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@pytest.mark.parametrize("case", GRAD_CASES, ids=str)
def test_gradcheck(case):
    kind, rank, shape, out_size, cl = case
    fn = _fns(kind, rank)[0]
    x = _distinct(shape, cl).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: fn(t, out_size), (x,))
    assert torch.autograd.gradgradcheck(lambda t: fn(t, out_size), (x,))


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_max_backward_saves_compact_argmax(rank):
    # A non-divisible problem goes through the adaptive kernels; what it saves
    # for backward is the one-byte argmax, not the input or int64 indices.
    shape = (2, 3) + (7,) * rank
    x = torch.randn(shape, requires_grad=True)
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = _fns("max", rank)[0](x, (3,) * rank)
    assert len(saved) == 1 and saved[0].dtype == torch.uint8 and saved[0].shape == y.shape


def test_large_windows_use_wider_argmax():
    # 2d 300x300 pooled to (1, 2) non-divisibly: windows of 300x151 elements.
    x = torch.randn(1, 1, 300, 301, dtype=torch.float64, requires_grad=True)
    y, idx = PF.adaptive_max_pool2d(x, (1, 2), return_indices=True)
    ry, ridx = TF.adaptive_max_pool2d(x.detach(), (1, 2), return_indices=True)
    assert torch.equal(y.detach(), ry) and torch.equal(idx, ridx)
    g = torch.randn_like(y)
    y.backward(g)
    ref = torch.zeros_like(x).view(1, 1, -1)
    ref[0, 0, ridx.view(-1)] += g.view(-1)
    assert torch.equal(x.grad, ref.view_as(x))


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_empty_outputs_and_batches(kind):
    for rank in (1, 2, 3):
        fn, tfn = _fns(kind, rank)
        for shape, out in [((2, 3) + (5,) * rank, (0,) * rank),
                           ((0, 3) + (5,) * rank, (2,) * rank)]:
            x = torch.randn(shape, requires_grad=True)
            xt = x.detach().clone().requires_grad_(True)
            y, ry = fn(x, out), tfn(xt, out)
            assert y.shape == ry.shape
            try:
                ry.sum().backward()
            except RuntimeError as e:
                # an output_size of 0: torch's backward refuses, and so does poolext's, in
                # torch's words
                assert 0 in out
                with pytest.raises(RuntimeError) as info:
                    y.sum().backward()
                assert str(info.value).startswith(str(e).splitlines()[0]), (e, info.value)
                continue
            assert 0 not in out
            y.sum().backward()
            assert torch.equal(x.grad, xt.grad) and torch.equal(x.grad, torch.zeros_like(x))


def test_nan_and_inf_windows():
    x = torch.tensor([[[1.0, float("nan"), 2.0, float("nan"), -float("inf"), -float("inf"),
                        float("inf"), 3.0]]])
    for out in (1, 3, 5, 8, 11):
        y, i = PF.adaptive_max_pool1d(x, out, return_indices=True)
        ry, ri = TF.adaptive_max_pool1d(x, out, return_indices=True)
        assert_bit_equal(y, ry)
        assert torch.equal(i, ri)
        torch.testing.assert_close(PF.adaptive_avg_pool1d(x, out), TF.adaptive_avg_pool1d(x, out),
                                   equal_nan=True)


# (rank, shape, output_size): inputs torch refuses and some it accepts.
ARG_CASES = [
    (2, (2, 3, 7, 9), (0, 3)), (2, (2, 3, 7, 9), (-1, 3)), (2, (2, 3, 7, 9), (None, 4)),
    (2, (2, 3, 7, 9), (3,)), (2, (2, 3, 7, 9), (3, 3, 3)), (2, (2, 3, 7, 9), None),
    (2, (2, 3, 7, 9), (2.5, 3)), (2, (2, 3, 7, 9), (True, 2)), (2, (2, 3, 7, 9), -2),
    (2, (2, 3, 0, 5), 2), (2, (0, 5, 5), 2), (2, (2, 0, 5, 5), 2), (2, (3, 0, 5), 2),
    (2, (5, 5), 2), (2, (1, 2, 3, 5, 5), 2), (2, (1, 2, 3, 4), (None, None)),
    (2, (1, 2, 3, 4), (2, None, 3)),
    (1, (2, 3, 5), -1), (1, (2, 3, 5), (2, 2)), (1, (2, 3, 5), [3]), (1, (2, 3, 5), (None,)),
    (1, (2, 3, 5), True), (1, (2, 3, 5), 2.0), (1, (2, 3, 5), None), (1, (2, 3, 5), 0),
    (1, (5,), 2), (1, (2, 0, 5), 2), (1, (0, 5), 2), (1, (2, 3, 0), 2), (1, (0, 3, 5), 2),
    (3, (2, 0, 3, 4, 5), 2), (3, (0, 3, 4, 5), 2), (3, (0, 2, 3, 4, 5), 2), (3, (2, 3, 4, 5), 2),
    (3, (2, 2, 0, 4, 5), 2), (3, (1, 2, 3, 4, 5), (None, None)), (3, (1, 2, 3, 4, 5), (2, None, 3)),
    (3, (1, 2, 3, 4, 5), (True, 2)), (3, (1, 2, 3, 4, 5), (2, -1, 1)),
]


def _outcome(fn, *args):
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001 - the type is what is compared
        return type(e)
    return None


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", ARG_CASES, ids=str)
def test_refuses_where_torch_refuses(kind, case):
    rank, shape, out_size = case
    fn, tfn = _fns(kind, rank)
    x = torch.randn(shape)
    expected = _outcome(tfn, x, out_size)
    got = _outcome(fn, x, out_size)
    assert got == expected, (expected, got)
    if expected is None:
        assert fn(x, out_size).shape == tfn(x, out_size).shape


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_refuses_dtypes_torch_refuses(kind):
    for dtype in (torch.int64, torch.int32, torch.uint8, torch.bool):
        x = torch.ones(2, 3, 5, 5, dtype=dtype)
        for rank, xx in ((1, x[0]), (2, x), (3, x[None])):
            fn, tfn = _fns(kind, rank)
            with pytest.raises(RuntimeError) as t_info:
                tfn(xx, 2)
            with pytest.raises(NotImplementedError, match="dtype") as p_info:
                fn(xx, 2)
            assert_raises_like_torch(p_info.value, t_info.value)
    with pytest.raises(TypeError):
        _fns(kind, 2)[0]([1.0, 2.0], 2)


def test_tensor_output_sizes():
    skip_if_torch_behaves_old("sizes-as-tensors")
    x = torch.randn(2, 3, 7)
    for out in (torch.tensor(3), (torch.tensor(2),)):
        assert_bit_equal(PF.adaptive_max_pool1d(x, out), TF.adaptive_max_pool1d(x, out))


def test_direct_op_calls_refuse_bad_arguments():
    x = torch.randn(2, 3, 5, 5)
    with pytest.raises(RuntimeError, match="output_size"):
        ops.adaptive_avg_pool(x, [-1, 2], False)
    with pytest.raises(RuntimeError, match="output_size"):
        ops.adaptive_max_pool(x, [2, 2, 2, 2], False, True, False)
    with pytest.raises(RuntimeError, match="channels_last"):
        ops.adaptive_avg_pool(x[0], [2, 2], True)
    with pytest.raises(RuntimeError, match="too large"):
        ops.adaptive_avg_pool(x, [2, 2**61], False)
    _, am, _ = ops.adaptive_max_pool(x, [3, 3], False, True, False)
    g = torch.randn(2, 3, 3, 3)
    with pytest.raises(RuntimeError, match="argmax"):
        ops.adaptive_max_pool_backward(g, am.to(torch.int16), list(x.shape), [3, 3], False)
    with pytest.raises(RuntimeError, match="grad_output"):
        ops.adaptive_max_pool_backward(g[:, :2], am, list(x.shape), [3, 3], False)
    with pytest.raises(RuntimeError, match="grad_output"):
        ops.adaptive_avg_pool_backward(g, list(x.shape), [3, 4], False)
    # A foreign argmax naming taps past the window gathers nothing.
    bad = torch.full_like(am, 255)
    assert torch.equal(ops.adaptive_max_pool_gather(x, bad, [3, 3], False), torch.zeros(g.shape))


def _op_samples():
    x = torch.randn(2, 3, 9, 7)
    xc = x.contiguous(memory_format=torch.channels_last)
    out, am, _ = ops.adaptive_max_pool(x, [4, 5], False, True, False)
    outc, amc, _ = ops.adaptive_max_pool(xc, [4, 5], True, True, True)
    g = torch.randn_like(out)
    gc = torch.randn_like(outc).contiguous(memory_format=torch.channels_last)
    return [
        (ops.adaptive_max_pool.default, (x, [4, 5], False, True, True)),
        (ops.adaptive_max_pool.default, (xc, [4, 5], True, False, True)),
        (ops.adaptive_max_pool.default, (x[0], [4], False, True, False)),
        (ops.adaptive_max_pool_backward.default, (g, am, list(x.shape), [4, 5], False)),
        (ops.adaptive_max_pool_backward.default, (gc, amc, list(xc.shape), [4, 5], True)),
        (ops.adaptive_max_pool_gather.default, (torch.randn_like(x), am, [4, 5], False)),
        (ops.adaptive_avg_pool.default, (x, [4, 5], False)),
        (ops.adaptive_avg_pool.default, (xc, [2, 11], True)),
        (ops.adaptive_avg_pool.default, (x.unsqueeze(2), [2, 4, 5], False)),
        (ops.adaptive_avg_pool_backward.default, (g, list(x.shape), [4, 5], False)),
    ]


@pytest.mark.parametrize("i", range(10))
def test_opcheck(i):
    op, args = _op_samples()[i]
    torch.library.opcheck(op, args)


def test_every_adaptive_op_is_opchecked():
    covered = {op._overloadpacket._qualified_op_name for op, _ in _op_samples()}
    assert covered == {f"poolext::adaptive_{n}" for n in (
        "max_pool", "max_pool_backward", "max_pool_gather", "avg_pool", "avg_pool_backward")}


MODULES = [
    ("AdaptiveMaxPool1d", (5,), (2, 3, 11)),
    ("AdaptiveMaxPool2d", ((3, None),), (2, 3, 7, 8)),
    ("AdaptiveMaxPool3d", ((2, 3, 1),), (1, 2, 5, 7, 4)),
    ("AdaptiveAvgPool1d", (4,), (3, 11)),
    ("AdaptiveAvgPool2d", ((1, 1),), (2, 3, 7, 8)),
    ("AdaptiveAvgPool3d", ((None, 3, 2),), (1, 2, 5, 7, 4)),
]


@pytest.mark.parametrize("name,args,shape", MODULES, ids=[m[0] for m in MODULES])
def test_modules(name, args, shape):
    ours, theirs = getattr(poolext, name)(*args), getattr(torch.nn, name)(*args)
    assert isinstance(ours, type(theirs))
    assert repr(ours) == repr(theirs)
    x = torch.randn(shape)
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-6, atol=1e-6)
    for clone in (copy.deepcopy(ours), pickle.loads(pickle.dumps(ours))):
        assert type(clone) is type(ours) and repr(clone) == repr(ours)
    if "Max" in name:
        ours_i = getattr(poolext, name)(*args, return_indices=True)
        y, idx = ours_i(x)
        ry, ridx = getattr(torch.nn, name)(*args, return_indices=True)(x)
        assert_bit_equal(y, ry)
        assert torch.equal(idx, ridx)


@pytest.mark.slow
def test_torch_compile_fullgraph():
    class Net(torch.nn.Module):
        def __init__(self, mod, functional):
            super().__init__()
            self.functional = functional
            self.conv = torch.nn.Conv2d(3, 4, 3)
            self.pool = mod.AdaptiveMaxPool2d((3, 4))
            self.gap = mod.AdaptiveAvgPool2d(1)

        def forward(self, x):
            y = self.pool(torch.relu(self.conv(x)))
            return self.gap(y).flatten(1) + self.functional.adaptive_avg_pool1d(
                y.flatten(2), 5).sum(-1)

    torch.manual_seed(0)
    ours, ref = Net(poolext, PF), Net(torch.nn, TF)
    ref.load_state_dict(ours.state_dict())
    compiled = torch.compile(ours, fullgraph=True)
    x = torch.randn(2, 3, 12, 11)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    ya, yb = compiled(xa), ref(xb)
    torch.testing.assert_close(ya, yb)
    ya.sum().backward()
    yb.sum().backward()
    torch.testing.assert_close(xa.grad, xb.grad)


GLOBAL_CASES = [
    (2, (2, 3, 4, 5), None), (2, (2, 3, 4, 5), torch.channels_last), (2, (3, 4, 5), None),
    (2, (4, 5), None), (2, (2, 3, 4, 5, 6), None), (2, (1, 2, 3, 4, 5, 6), None),
    (3, (2, 3, 4, 5, 6), torch.channels_last_3d), (3, (2, 3, 4, 5, 6), None), (3, (3, 4, 5), None),
    (1, (2, 3, 7), None), (1, (3, 7), None), (1, (2, 0, 7), None), (2, (2, 0, 4, 5), None),
    (2, (2, 3, 0, 5), None), (1, (2, 3, 0), None), (3, (0, 2, 3, 4, 5), None),
]


@pytest.mark.parametrize("rank,shape,fmt", GLOBAL_CASES, ids=str)
def test_global_average_like_torch(rank, shape, fmt):
    """torch pools adaptive avg to size 1 as a mean over the last dims: any leading dims,
    NaN for empty windows, channels_last kept (3d too)."""
    x = torch.randn(shape, dtype=torch.float64)
    if fmt is not None:
        x = x.contiguous(memory_format=fmt)
    fn, tfn = _fns("avg", rank)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    y, ry = fn(xa, 1), tfn(xb, 1)
    assert y.shape == ry.shape and y.dtype == ry.dtype
    if y.numel() > 1:
        assert y.stride() == ry.stride()
    torch.testing.assert_close(y, ry, equal_nan=True)
    if y.numel():
        y.sum().backward()
        ry.sum().backward()
        torch.testing.assert_close(xa.grad, xb.grad, equal_nan=True)


def test_global_average_refuses_like_torch():
    for dtype in (torch.int64, torch.bool):
        x = torch.ones(2, 3, 4, 5, dtype=dtype)
        with pytest.raises(RuntimeError):
            TF.adaptive_avg_pool2d(x, 1)
        with pytest.raises(RuntimeError, match="dtype"):
            PF.adaptive_avg_pool2d(x, 1)
    for fn in (PF.adaptive_avg_pool2d, TF.adaptive_avg_pool2d):
        with pytest.raises(IndexError):
            fn(torch.randn(4), 1)
        with pytest.raises(ValueError):
            fn(torch.randn(4), (1, 1))
