"""LP pooling against torch: values, gradients, layouts, special norms, refusals,
and the transforms (gradcheck, opcheck, torch.compile)."""

import inspect
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as TF

import poolext
import poolext.functional as PF
from cases import (assert_bit_equal, assert_raises_like_torch, load_cuda_emulation,
                   random_input, rng_for, same_memory_format)

ops = torch.ops.poolext
NORMS = (1, 2, 3, 4, 1.5, 2.5, 0.5, -1, -0.5)
CUDA = torch.cuda.is_available()


def _fns(rank):
    return getattr(PF, f"lp_pool{rank}d"), getattr(TF, f"lp_pool{rank}d")


def _random_case(rng, dtype):
    rank = rng.choice([1, 2, 3])
    x, layout = random_input(rng, "avg", rank, dtype)
    p = rng.choice(NORMS)
    if p != int(p):  # fractional powers of negative numbers are NaN: keep most finite
        x = x.abs() if rng.random() < 0.8 else x
    k = tuple(rng.randint(1, 3) for _ in range(rank))
    s = tuple(rng.randint(1, 3) for _ in range(rank)) if rng.random() < 0.7 else None
    kernel = k[0] if rank == 1 else (k if rng.random() < 0.7 else k[0])
    return rank, x, layout, p, kernel, s, rng.random() < 0.5


def _close(a, b, dtype, sums=False):
    """Same NaN positions; the rest within a few roundings (torch's separate passes round
    between steps, poolext's one pass does not).  sums: a gradient, a sum over windows of
    terms of either sign, whose error is relative to the terms' scale."""
    assert a.dtype == b.dtype and a.shape == b.shape
    na, nb = torch.isnan(a), torch.isnan(b)
    assert torch.equal(na, nb), "NaN positions differ"
    a, b = a[~na], b[~nb]
    rtol = 4e-6 if dtype == torch.float32 else 4e-15
    atol = 1e-30 if dtype == torch.float32 else 1e-300
    finite = b[torch.isfinite(b)]
    if sums and finite.numel():
        atol = max(atol, 16 * rtol * finite.abs().max().item())
    torch.testing.assert_close(a, b, rtol=rtol, atol=atol)


def _check_layout(ours, theirs, rank, layout):
    if rank == 3 and layout == "channels_last" and ours.numel():
        # torch's CPU avg_pool3d (lp_pool3d's second step) drops channels_last_3d; poolext's
        # avg_pool3d keeps it, and so does lp_pool3d.
        assert ours.is_contiguous(memory_format=torch.channels_last_3d)
    else:
        assert same_memory_format(ours, theirs), (layout, ours.stride(), theirs.stride())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("chunk", range(6))
def test_values_and_gradients_like_torch(dtype, chunk):
    """Random ranks, layouts (channels_last, views, transposed), norms, kernels, strides,
    ceil mode, with ties, NaN and infinities in the input."""
    checked = 0
    for trial in range(50):
        rng = rng_for("lp", dtype, chunk, trial)
        rank, x, layout, p, kernel, s, ceil = _random_case(rng, dtype)
        ours_f, torch_f = _fns(rank)
        try:
            ref = torch_f(x, p, kernel, s, ceil)
        except RuntimeError as e:
            with pytest.raises(RuntimeError) as ours_e:
                ours_f(x, p, kernel, s, ceil)
            assert_raises_like_torch(ours_e.value, e)
            continue
        xt = x.detach().clone(memory_format=torch.preserve_format).requires_grad_()
        xo = x.detach().clone(memory_format=torch.preserve_format).requires_grad_()
        ref = torch_f(xt, p, kernel, s, ceil)
        out = ours_f(xo, p, kernel, s, ceil)
        _close(out.detach(), ref.detach(), dtype)
        _check_layout(out, ref, rank, layout)
        # without grad: the inference path gives the same values
        with torch.no_grad():
            assert_bit_equal(ours_f(x, p, kernel, s, ceil), out.detach())
        g = torch.randn(ref.shape, dtype=dtype, generator=torch.Generator().manual_seed(trial))
        ref.backward(g)
        out.backward(g)
        _close(xo.grad, xt.grad, dtype, sums=True)
        assert same_memory_format(xo.grad, xo) or xo.numel() == 0
        checked += 1
    assert checked > 30


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_types_compute_in_float(dtype):
    """float16/bfloat16 accumulate in float32: the result is the float32 result rounded
    once, and the gradient likewise."""
    for trial in range(40):
        rng = rng_for("lp-half", dtype, trial)
        rank, x, layout, p, kernel, s, ceil = _random_case(rng, dtype)
        ours_f, _ = _fns(rank)
        try:
            ours_f(x, p, kernel, s, ceil)
        except RuntimeError:
            continue
        xh = x.detach().clone(memory_format=torch.preserve_format).requires_grad_()
        xf = x.detach().float().requires_grad_()
        yh = ours_f(xh, p, kernel, s, ceil)
        yf = ours_f(xf, p, kernel, s, ceil)
        assert yh.dtype == dtype
        assert_bit_equal(yh.detach(), yf.detach().to(dtype))
        g = torch.randn(yh.shape, generator=torch.Generator().manual_seed(trial)).to(dtype)
        yh.backward(g)
        yf.backward(g.float())
        assert_bit_equal(xh.grad, xf.grad.to(dtype))


@pytest.mark.parametrize("index32", [True, False])
def test_cpu_loops_equal_the_element_functors(index32):
    """The CPU ops' row loops and the per-element functors the CUDA ops run (here on the
    host, tests/cuda_emulation.cpp) agree bit for bit, forward and backward, in both
    layouts, every dtype, both index widths."""
    emu = load_cuda_emulation()
    emu.set_index32(index32)
    checked = 0
    try:
        for trial in range(60):
            rng = rng_for("lp-emu", index32, trial)
            dtype = rng.choice([torch.float32, torch.float64, torch.float16, torch.bfloat16])
            rank, x, layout, p, kernel, s, ceil = _random_case(rng, dtype)
            k = (kernel,) * rank if isinstance(kernel, int) else tuple(kernel)
            st = k if s is None else s
            if x.dim() != rank + 2 or x.shape[0] == 0 or any(
                    L < kk for L, kk in zip(x.shape[-rank:], k)):
                continue
            cl = layout == "channels_last" and rank > 1
            args = (float(p), list(k), list(st), ceil, cl)
            out, coef = ops.lp_pool(x, *args, True)
            out_e, coef_e = emu.lp_pool(x, *args, True)
            assert_bit_equal(out, out_e)
            assert_bit_equal(coef, coef_e)
            g = torch.randn(out.shape, generator=torch.Generator().manual_seed(trial)).to(dtype)
            assert_bit_equal(ops.lp_pool_backward(g, x, coef, *args),
                             emu.lp_pool_backward(g, x, coef, *args))
            checked += 1
    finally:
        emu.set_index32(True)
    assert checked >= 25


def _torch_has_infinite_norms():
    return "inf" in inspect.getsource(TF.lp_pool2d)


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("norm", [math.inf, -math.inf])
def test_infinite_norms_are_max_pooling(rank, norm):
    x = torch.randn((2, 3) + (7,) * rank, dtype=torch.float64)
    x.view(-1)[::5] = 0.5  # ties in |x|
    x.view(-1)[::5][1::2] = -0.5
    ours_f, torch_f = _fns(rank)
    xo = x.clone().requires_grad_()
    out = ours_f(xo, norm, 3, 2, True)
    sign = 1 if norm > 0 else -1
    xr = x.clone().requires_grad_()
    if _torch_has_infinite_norms():
        ref = torch_f(xr, norm, 3, 2, True)
    else:  # before torch had the rule: what it computes now
        mp = getattr(TF, f"max_pool{rank}d")
        ref = sign * mp(sign * xr.abs(), 3, 2, 0, 1, True)
    assert_bit_equal(out.detach(), ref.detach())
    out.sum().backward()
    ref.sum().backward()
    assert_bit_equal(xo.grad, xr.grad)


def test_norm_zero_is_refused_like_torch():
    x = torch.randn(1, 2, 4, 4)
    with pytest.raises(ValueError) as theirs:
        TF.lp_pool2d(x, 0, 2)
    with pytest.raises(ValueError) as ours:
        PF.lp_pool2d(x, 0, 2)
    assert str(theirs.value) in str(ours.value)


def test_composite_cases_like_torch():
    """What the fused kernels do not take runs torch's formula: integer inputs (torch's
    type promotion), a tensor norm_type, NaN norm_type."""
    x = torch.arange(32, dtype=torch.int64).reshape(2, 4, 4) - 10
    for p in (2, 2.5, 3):
        ref, out = TF.lp_pool2d(x, p, 2), PF.lp_pool2d(x, p, 2)
        assert out.dtype == ref.dtype
        torch.testing.assert_close(out, ref, equal_nan=True)
    xf = torch.rand(1, 2, 6, 6, dtype=torch.float64)
    for p in (torch.tensor(2.5, dtype=torch.float64), math.nan):
        torch.testing.assert_close(PF.lp_pool2d(xf, p, 3, 2), TF.lp_pool2d(xf, p, 3, 2),
                                   equal_nan=True)
    # an int norm is the float norm
    assert_bit_equal(PF.lp_pool2d(xf, 3, 2), PF.lp_pool2d(xf, 3.0, 2))


def test_zero_windows_have_zero_gradient():
    """torch: if the sum of x^p over a window is zero, its gradient is zero (relu's
    gradient at 0), even where x^(p-1) would be infinite."""
    x = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    x[0, 0, 2:, 2:] = torch.tensor([[1.0, -2.0], [0.5, 3.0]])
    for p in (2, 3, 1.5):
        xo, xr = x.clone().requires_grad_(), x.clone().requires_grad_()
        PF.lp_pool2d(xo, p, 2).sum().backward()
        TF.lp_pool2d(xr, p, 2).sum().backward()
        assert torch.equal(torch.isnan(xo.grad), torch.isnan(xr.grad))
        torch.testing.assert_close(xo.grad, xr.grad, equal_nan=True)
        assert (xo.grad[0, 0, :2, :2] == 0).all()


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_gradcheck(rank, ceil_mode):
    g = torch.Generator().manual_seed(rank)
    shape = (2, 3) + (5, 6, 5)[:rank]
    x = (torch.rand(shape, dtype=torch.float64, generator=g) + 0.2).requires_grad_()
    ours_f, _ = _fns(rank)
    for p in (2, 3, 1.5):
        def f(t):
            return ours_f(t, p, 3 if rank == 1 else (2, 3, 2)[:rank], 2, ceil_mode)
        assert torch.autograd.gradcheck(f, (x,))
        assert torch.autograd.gradgradcheck(f, (x,))


def test_gradcheck_channels_last():
    x = (torch.rand(2, 3, 6, 5, dtype=torch.float64) + 0.2).contiguous(
        memory_format=torch.channels_last).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: PF.lp_pool2d(t, 2.5, 3, 2, True), (x,))


def test_saves_input_and_one_coefficient_per_output():
    saved = []

    def pack(t):
        saved.append(t)
        return t

    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        y = PF.lp_pool2d(x, 2, 2)
    assert len(saved) == 2
    assert saved[0] is x or saved[0].data_ptr() == x.data_ptr()
    assert saved[1].shape == y.shape and saved[1].dtype == torch.float32


def _op_samples():
    x = torch.rand(2, 3, 7, 6, dtype=torch.float64) + 0.1
    yield (x, 2.0, [3, 2], [2, 2], True, False, True)
    yield (x.contiguous(memory_format=torch.channels_last), 1.5, [2, 2], [1, 2], False, True,
           True)
    yield (torch.rand(3, 9) + 0.1, 3.0, [3], [2], False, False, False)
    yield (torch.rand(1, 2, 4, 5, 6).half(), 2.0, [2, 2, 2], [2, 1, 2], True, False, True)


def test_opcheck():
    for args in _op_samples():
        torch.library.opcheck(ops.lp_pool, args)
        x, norm, k, s, ceil, cl = args[:6]
        out, coef = ops.lp_pool(x, norm, k, s, ceil, cl, True)
        g = torch.rand_like(out)
        torch.library.opcheck(ops.lp_pool_backward, (g, x, coef, norm, k, s, ceil, cl))


def test_backward_refuses_mismatched_tensors():
    x = torch.rand(1, 2, 6, 6)
    out, coef = ops.lp_pool(x, 2.0, [2, 2], [2, 2], False, False, True)
    with pytest.raises(RuntimeError, match="coef has dtype"):
        ops.lp_pool_backward(out, x, coef.double(), 2.0, [2, 2], [2, 2], False, False)
    with pytest.raises(RuntimeError, match="coef has shape"):
        ops.lp_pool_backward(out, x, coef[..., :2], 2.0, [2, 2], [2, 2], False, False)
    with pytest.raises(RuntimeError, match="grad_output has shape"):
        ops.lp_pool_backward(out[..., :2], x, coef, 2.0, [2, 2], [2, 2], False, False)
    with pytest.raises(RuntimeError, match="norm_type must be finite"):
        ops.lp_pool(x, math.inf, [2, 2], [2, 2], False, False, False)


def test_compile_fullgraph():
    x = torch.rand(2, 3, 9, 9, requires_grad=True)

    def f(t):
        return PF.lp_pool2d(t, 2.5, 3, 2, True).sum()

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    y1 = compiled(x)
    (g1,) = torch.autograd.grad(y1, x)
    y2 = f(x)
    (g2,) = torch.autograd.grad(y2, x)
    assert_bit_equal(y1.detach(), y2.detach())
    assert_bit_equal(g1, g2)


def _refusal_cases():
    x2 = torch.randn(1, 2, 5, 5)
    yield 2, x2, dict(norm_type=2, kernel_size=0)
    yield 2, x2, dict(norm_type=2, kernel_size=2, stride=0)
    yield 2, x2, dict(norm_type=2, kernel_size=6)
    yield 2, x2, dict(norm_type=2, kernel_size=(2, 2, 2))
    yield 2, x2, dict(norm_type=2, kernel_size=(2,))
    yield 3, torch.randn(1, 2, 3, 3, 3), dict(norm_type=math.inf, kernel_size=(2, 2))
    yield 2, x2, dict(norm_type=2, kernel_size=2, ceil_mode=1)
    yield 2, torch.randn(1, 1, 2, 4, 5), dict(norm_type=2, kernel_size=2)
    yield 3, torch.randn(1, 2, 3, 3, 3), dict(norm_type=2, kernel_size=4)
    yield 3, torch.randn(2, 3, 4), dict(norm_type=2, kernel_size=2)
    yield 1, torch.randn(1, 2, 5), dict(norm_type=2, kernel_size=(2,))
    yield 1, torch.randn(1, 2, 5), dict(norm_type=2, kernel_size=7)
    yield 1, torch.randn(5), dict(norm_type=2, kernel_size=2)
    yield 2, torch.randn(0, 2, 5, 5), dict(norm_type=2, kernel_size=2)
    yield 2, torch.randn(1, 0, 5, 5), dict(norm_type=2, kernel_size=2)


@pytest.mark.parametrize("case", list(range(15)))
def test_refusals_like_torch(case):
    rank, x, kw = list(_refusal_cases())[case]
    ours_f, torch_f = _fns(rank)
    try:
        ref = torch_f(x, **kw)
    except Exception as theirs:
        with pytest.raises(Exception) as ours:
            ours_f(x, **kw)
        if rank == 2 and x.dim() < 3:
            pass  # torch's avg_pool2d fails on a dimension lookup there
        else:
            assert_raises_like_torch(ours.value, theirs)
        return
    torch.testing.assert_close(ours_f(x, **kw), ref)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_modules_are_torch_twins(rank):
    theirs = getattr(nn, f"LPPool{rank}d")(2.5, 3, stride=2, ceil_mode=True)
    ours = getattr(poolext, f"LPPool{rank}d")(2.5, 3, stride=2, ceil_mode=True)
    assert isinstance(ours, type(theirs)) and repr(ours) == repr(theirs)
    x = torch.rand((2, 3) + (8,) * rank)
    _close(ours(x), theirs(x), torch.float32)
    assert type(poolext.convert(theirs)) is type(ours)


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16])
def test_cuda_matches_cpu(dtype):
    assert poolext.cuda_kernels_built()
    for trial in range(30):
        rng = rng_for("lp-cuda", dtype, trial)
        rank, x, layout, p, kernel, s, ceil = _random_case(rng, dtype)
        ours_f, _ = _fns(rank)
        try:
            ours_f(x, p, kernel, s, ceil)
        except RuntimeError:
            continue
        xc = x.detach().clone(memory_format=torch.preserve_format).requires_grad_()
        xg = x.detach().cuda().requires_grad_()
        yc, yg = ours_f(xc, p, kernel, s, ceil), ours_f(xg, p, kernel, s, ceil)
        g = torch.randn(yc.shape, generator=torch.Generator().manual_seed(trial)).to(dtype)
        yc.backward(g)
        yg.backward(g.cuda())
        # the same functors on both devices; the GPU may contract a*b+c into one rounding
        _close(yg.detach().cpu().double(), yc.detach().double(), torch.float32)
        _close(xg.grad.cpu().double(), xc.grad.double(), torch.float32, sums=True)
