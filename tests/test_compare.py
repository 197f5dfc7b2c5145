"""poolext against torch.nn.functional on many random problems (CPU)."""

import itertools
import os

import pytest
import torch
import torch.nn.functional as TF

import poolext.functional as PF
from cases import (FLOAT_TYPES, INT_TYPES, assert_bit_equal, avg_tolerance, grad_tolerance,
                   op_pair, empty_windows, random_args, random_input, random_values, rng_for,
                   same_memory_format, skip_if_torch_behaves_old)

# POOLEXT_TEST_SEEDS trims the draw (test_isa.py reruns a subset per instruction set).
SEEDS = range(int(os.environ.get("POOLEXT_TEST_SEEDS", "40")))


def _torch_or_none(fn, x, kw):
    try:
        return fn(x, **kw)
    except (RuntimeError, ValueError, TypeError, NotImplementedError):
        return None


def _valid_problem(rng, kind, rank, dtype):
    """Draw until torch accepts the problem."""
    for _ in range(50):
        kw = random_args(rng, kind, rank)
        x, layout = random_input(rng, kind, rank, dtype)
        ref = _torch_or_none(op_pair(kind, rank)[1], x, kw)
        if ref is not None:
            return x, kw, layout, ref
    raise AssertionError("no valid problem drawn")


def _check_forward(kind, rank, dtype, seed):
    rng = rng_for("fwd", kind, rank, str(dtype), seed)
    ours, theirs = op_pair(kind, rank)
    x, kw, layout, ref = _valid_problem(rng, kind, rank, dtype)
    if kind == "max":
        # Without indices (and without grad) poolext folds values only.
        assert_bit_equal(ours(x, **kw), ref)
        kw = dict(kw, return_indices=True)
        ref, ref_idx_layout = theirs(x, **kw)
        out, idx = ours(x, **kw)
        assert_bit_equal(out, ref)
        assert same_memory_format(idx, ref_idx_layout)
        # Indices mean the same in every layout; torch's channels_last 3d kernel
        # misreports windows whose maximum is the initial lowest value, so the
        # reference indices come from its contiguous kernel.
        ref_idx = theirs(x.contiguous(), **kw)[1]
        assert torch.equal(idx, ref_idx), f"indices differ ({layout}, {kw})"
    else:
        out = ours(x, **kw)
        assert out.dtype == ref.dtype and out.shape == ref.shape
        torch.testing.assert_close(out, ref, equal_nan=True, **avg_tolerance(dtype))
    if kind == "avg" and rank == 3 and layout == "channels_last" and x.dim() == 5:
        # torch's CPU avg_pool3d drops channels_last_3d; poolext keeps it, as every other op does.
        assert out.numel() == 0 or out.is_contiguous(memory_format=torch.channels_last_3d)
    else:
        assert same_memory_format(out, ref), (layout, out.stride(), ref.stride())


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("dtype", FLOAT_TYPES, ids=str)
def test_forward_float(kind, rank, dtype, seed):
    if kind == "avg" and rank == 3 and dtype in (torch.float16, torch.bfloat16):
        pytest.skip("torch has no CPU avg_pool3d for half types to compare with")
    _check_forward(kind, rank, dtype, seed)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("rank", [2, 3])
@pytest.mark.parametrize("dtype", INT_TYPES, ids=str)
def test_forward_max_integer(rank, dtype, seed):
    skip_if_torch_behaves_old("integer-max-padding")
    _check_forward("max", rank, dtype, seed)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_forward_avg_int64(rank, seed):
    _check_forward("avg", rank, torch.int64, seed)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
def test_backward(kind, rank, dtype, seed):
    if kind == "avg" and rank == 3 and dtype == torch.bfloat16:
        pytest.skip("torch has no CPU avg_pool3d for half types to compare with")
    rng = rng_for("bwd", kind, rank, str(dtype), seed)
    ours, theirs = op_pair(kind, rank)
    x, kw, layout, ref = _valid_problem(rng, kind, rank, dtype)
    # x keeps its layout (channels_last, strided view, ...).  Reference values
    # come from torch on a contiguous copy: torch's channels_last 3d max kernel
    # sends the gradient of a window whose maximum is -inf to the wrong element.
    x1 = x.detach().requires_grad_()
    x2 = x.detach().clone().requires_grad_()
    x3 = x.detach().contiguous().requires_grad_()
    out, ref, ref_c = ours(x1, **kw), theirs(x2, **kw), theirs(x3, **kw)
    g = torch.randn(ref.shape).to(dtype)
    if rng.random() < 0.3 and g.dim() >= 1 and g.shape[-1] > 1:
        g = torch.randn(list(ref.shape[:-1]) + [ref.shape[-1] * 2]).to(dtype)[..., ::2]
    out.backward(g)
    empty = empty_windows(x.shape, rank, kw) if kind == "max" else None
    if empty is not None and bool(empty.any()):
        # A window with no in-bounds element (dilation only) has no winner to
        # send its gradient to.  torch's backward adds it at the index it
        # reported, which can lie past the end of the tensor (a heap write out
        # of bounds), so the reference is built from torch's forward indices
        # without those windows.
        idx = theirs(x3.detach(), **kw, return_indices=True)[1]
        keep = ~empty.expand_as(idx)
        plane = 1
        for n in x.shape[-rank:]:
            plane *= n
        flat_g = g.masked_fill(~keep, 0).flatten(-rank).to(torch.float64)
        flat_i = idx.masked_fill(~keep, 0).flatten(-rank)
        want = torch.zeros(list(x.shape[:-rank]) + [plane], dtype=torch.float64)
        want.scatter_add_(-1, flat_i, flat_g)
        want = want.view(x.shape).to(dtype)
    else:
        ref.backward(g)
        ref_c.backward(g)
        want = x3.grad
        if not (kind == "avg" and rank == 3 and layout == "channels_last" and x.dim() == 5):
            assert same_memory_format(x1.grad, x2.grad), (layout, x1.grad.stride(), x2.grad.stride())
    torch.testing.assert_close(x1.grad, want, equal_nan=True, **grad_tolerance(dtype))
    assert x1.grad.dtype == dtype


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_float16_backward(kind):
    x = torch.randn(2, 3, 10, 10).half().requires_grad_()
    y = x.detach().clone().requires_grad_()
    ours, theirs = op_pair(kind, 2)
    a, b = ours(x, 3, 2, 1), theirs(y, 3, 2, 1)
    g = torch.randn(a.shape).half()
    a.backward(g)
    b.backward(g)
    torch.testing.assert_close(x.grad, y.grad, **grad_tolerance(torch.float16))


def test_nan_and_ties_semantics():
    """First maximum on ties, last NaN wins, all -inf windows report their first element."""
    x = torch.tensor([[[1.0, 3.0, 3.0, float("nan"), 2.0, float("nan"),
                        float("-inf"), float("-inf")]]])
    for k, s in [(3, 1), (4, 4), (2, 2)]:
        a, ia = torch.nn.functional.max_pool1d(x, k, s, return_indices=True)
        b, ib = op_pair("max", 1)[0](x, k, s, return_indices=True)
        assert_bit_equal(b, a)
        assert torch.equal(ib, ia)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
def test_max_vector_rows(rank, dtype, seed):
    """Max pooling over rows and channel blocks wide enough for the vector
    groups, which fold with a plain max (and a compare for the argmax) and
    fold again where a NaN turns up: a few NaNs (either sign) among many
    windows, infinities, values whose sum overflows, signed zeros.  Values
    without and with indices, bit for bit as torch's (bfloat16 channels_last:
    NaN positions, see test_max_nan_bits_exhaustive); indices as torch's
    contiguous kernel gives them."""
    rng = rng_for("values-only", rank, str(dtype), seed)
    big = {torch.float32: 3e38, torch.bfloat16: 3e38, torch.float16: 6e4}[dtype]
    ours, theirs = op_pair("max", rank)
    shape = [2, rng.choice([8, 32, 40])] + [rng.randint(4, 9) for _ in range(rank - 1)]
    shape.append(rng.choice([64, 128, rng.randint(40, 160)]))  # whole rows of 8 outputs, or not
    gen = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=gen) * 3).round().to(dtype)
    flat = x.view(-1)
    pick = lambda n: torch.randint(0, flat.numel(), (n,), generator=gen)
    flat[pick(4)] = float("inf")
    flat[pick(4)] = -float("inf")
    flat[pick(40)] = big
    flat[::7] = -0.0
    flat[3::11] = 0.0
    flat[pick(3)] = float("nan")  # last, so nothing overwrites them
    flat[pick(2)] = -float("nan")
    layouts = [x, x.contiguous(memory_format=torch.channels_last if rank == 2
                               else torch.channels_last_3d)] if rank > 1 else [x]
    saw_nan = False
    for k, s, p in [(2, 2, 0), (3, 2, 1), (3, 1, 1), (4, 4, 0), (2, 1, 0)]:
        for i, xx in enumerate(layouts):
            with torch.no_grad():
                a, b = ours(xx, k, s, p), theirs(xx, k, s, p)
            saw_nan |= bool(torch.isnan(b).any())
            ai, ia = ours(xx, k, s, p, return_indices=True)
            bi, _ = theirs(xx, k, s, p, return_indices=True)
            ib = theirs(x, k, s, p, return_indices=True)[1]
            assert torch.equal(ia, ib), (k, s, p, i)
            for got, ref in ((a, b), (ai, bi)):
                if dtype == torch.bfloat16 and i == 1:
                    assert_bit_equal(got, ref)
                else:
                    bits = torch.int32 if dtype == torch.float32 else torch.int16
                    assert torch.equal(got.contiguous().view(bits), ref.contiguous().view(bits)), (k, s, p, i)
    assert saw_nan  # the stride-1 windows cover every element


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_every_row_width(dtype):
    """The contiguous forward folds a row's interior windows in groups of
    eight outputs, four groups at a time; the last 9-31 outputs of a row go
    as four groups whose last ones overlap.  Every output width from 1 to 80,
    for strides 1 and 2 with and without padding and dilation, so every
    remainder and overlap is reached: max values, max with indices and avg,
    against torch, on values with ties, signed zeros, infinities and NaN."""
    gen = torch.Generator().manual_seed(7)
    for k, s, p, d in [(3, 1, 1, 1), (3, 2, 1, 1), (2, 1, 0, 1), (2, 2, 0, 1), (3, 2, 1, 2),
                       (5, 1, 2, 1)]:
        for ow in range(1, 81):
            L = (ow - 1) * s + d * (k - 1) + 1 - 2 * p
            if L < 1:
                continue
            x = (torch.randn(2, 3, 2, L, generator=gen) * 2).round().to(dtype)
            flat = x.view(-1)
            flat[::5] = -0.0
            if ow % 3 == 0:
                flat[torch.randint(0, flat.numel(), (2,), generator=gen)] = float("nan")
            if ow % 4 == 0:
                flat[torch.randint(0, flat.numel(), (2,), generator=gen)] = -float("inf")
            kw = dict(kernel_size=(1, k), stride=(1, s), padding=(0, p))
            with torch.no_grad():
                a = PF.max_pool2d(x, dilation=(1, d), **kw)
                b = TF.max_pool2d(x, dilation=(1, d), **kw)
            assert b.shape[-1] == ow
            assert_bit_equal(a, b)
            ai, ia = PF.max_pool2d(x, dilation=(1, d), return_indices=True, **kw)
            bi, ib = TF.max_pool2d(x, dilation=(1, d), return_indices=True, **kw)
            assert_bit_equal(ai, bi)
            assert torch.equal(ia, ib), (k, s, p, d, ow)
            if d == 1:
                for cip in (True, False):
                    torch.testing.assert_close(PF.avg_pool2d(x, count_include_pad=cip, **kw),
                                               TF.avg_pool2d(x, count_include_pad=cip, **kw),
                                               equal_nan=True, **avg_tolerance(dtype))


# ---- Paths the small random problems above do not reach: channels_last with
# C >= 8 (blocks of 8 channels in registers, vector bfloat16 / half
# conversion), global windows (planes folded together in the contiguous
# forward; a gather without buffers for disjoint windows in the backward).
# The contiguous and channels_last kernels sum in the same order, so they
# must agree bit for bit, float16 and bfloat16 included.

def _fwd_bwd(fn, x, kw, g, fmt):
    x = x.detach().contiguous(memory_format=fmt).requires_grad_()
    out = fn(x, **kw)
    if isinstance(out, tuple):
        out = out[0]
    out.backward(g.contiguous(memory_format=fmt))
    return out.detach(), x.grad


@pytest.mark.parametrize("seed", range(int(os.environ.get("POOLEXT_TEST_SEEDS", "40")) // 4 + 1))
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("dtype", FLOAT_TYPES, ids=str)
def test_channels_last_wide(kind, dtype, seed):
    rng = rng_for("cl-wide", kind, str(dtype), seed)
    half = dtype in (torch.float16, torch.bfloat16)
    rank = 2 if kind == "avg" and half else rng.choice([2, 2, 3])  # torch: no half avg_pool3d
    ours, theirs = op_pair(kind, rank)
    for _ in range(50):
        kw = random_args(rng, kind, rank)
        c = rng.choice([8, 16, 11, 19, 24, 35, 32, 64])
        shape = [rng.randint(1, 2), c] + [rng.randint(1, 7) for _ in range(rank)]
        x = random_values(rng, shape, dtype)
        if _torch_or_none(theirs, x, kw) is not None:
            break
    cl = torch.channels_last if rank == 2 else torch.channels_last_3d
    ref = theirs(x, **kw)
    g = torch.randn(ref.shape).to(dtype)
    out_c, gi_c = _fwd_bwd(ours, x, kw, g, torch.contiguous_format)
    out_l, gi_l = _fwd_bwd(ours, x, kw, g, cl)
    assert out_l.is_contiguous(memory_format=cl) and gi_l.is_contiguous(memory_format=cl)
    assert_bit_equal(out_l, out_c)
    assert_bit_equal(gi_l, gi_c)
    if kind == "max":
        assert_bit_equal(out_l, ref)
        if not bool(empty_windows(x.shape, rank, kw).any()):
            x2 = x.detach().clone().requires_grad_()
            theirs(x2, **kw).backward(g)
            torch.testing.assert_close(gi_l, x2.grad, equal_nan=True, **grad_tolerance(dtype))
    else:
        torch.testing.assert_close(out_l, ref, equal_nan=True, **avg_tolerance(dtype))
        x2 = x.detach().clone().requires_grad_()
        theirs(x2, **kw).backward(g)
        torch.testing.assert_close(gi_l, x2.grad, equal_nan=True, **grad_tolerance(dtype))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
def test_channels_last_conversions_exhaustive(dtype):
    """Every 16-bit pattern through the vector loads and stores of the
    channels_last kernels, against the scalar conversions of the contiguous ones."""
    bits = torch.arange(-(2 ** 15), 2 ** 15, dtype=torch.int32).to(torch.int16)
    # 64 channels: the channels_last gather's blocks of 32 (rounded two
    # vectors at a time) and its blocks of 8; 16 channels: blocks of 8 only.
    cases = [((1, 16, 64, 64), "max", dict(kernel_size=1)),
             ((1, 16, 64, 64), "max", dict(kernel_size=(1, 2))),
             ((1, 16, 64, 64), "avg", dict(kernel_size=1, divisor_override=3)),
             ((1, 16, 64, 64), "avg", dict(kernel_size=(2, 1), count_include_pad=False, padding=(1, 0))),
             ((1, 64, 32, 32), "max", dict(kernel_size=3, stride=2, padding=1)),
             ((1, 64, 32, 32), "avg", dict(kernel_size=3, stride=2, padding=1)),
             ((1, 64, 32, 32), "avg", dict(kernel_size=(2, 1), divisor_override=3))]
    for shape, kind, kw in cases:
        x = bits.view(dtype).reshape(shape)
        fn = op_pair(kind, 2)[0]
        g = fn(x, **kw).detach()  # gradients with every pattern as well
        if g.numel() < bits.numel():  # or a random draw of them (NaN in some vectors)
            pick = torch.randperm(bits.numel(), generator=torch.Generator().manual_seed(len(kw)))
            g = bits[pick[: g.numel()]].view(dtype).reshape(g.shape)
        out_c, gi_c = _fwd_bwd(fn, x, kw, g, torch.contiguous_format)
        out_l, gi_l = _fwd_bwd(fn, x, kw, g, torch.channels_last)
        assert_bit_equal(out_l, out_c)
        assert_bit_equal(gi_l, gi_c)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16], ids=str)
@pytest.mark.parametrize("kernel_size", [1, 2, 3, 4])
@pytest.mark.parametrize("rank", [1, 2])
def test_max_nan_bits_exhaustive(dtype, kernel_size, rank):
    """Max pooling's values bit for bit, NaN payloads included, over every
    16-bit pattern: torch's plain 1d path returns the winning element itself;
    its other paths narrow a float result, half as F16C does (payload kept),
    bfloat16 to the canonical NaN.  One exception is left to value equality:
    torch's bfloat16 channels_last kernel writes NaN as 0xFFFF in the channels
    its vector loop covers and 0x7FC0 in the rest."""
    bits = torch.arange(-(2 ** 15), 2 ** 15, dtype=torch.int32).to(torch.int16)
    x = bits.view(dtype)[torch.randperm(2 ** 16, generator=torch.Generator().manual_seed(5))]
    x = x.reshape(4, 16, 1024) if rank == 1 else x.reshape(1, 16, 64, 64)
    ours, theirs = op_pair("max", rank)
    kws = [dict(kernel_size=kernel_size), dict(kernel_size=kernel_size, return_indices=True)]
    if kernel_size > 1:
        kws.append(dict(kernel_size=kernel_size, stride=1, padding=kernel_size // 2))
    layouts = [x, x.transpose(-1, -2).contiguous().transpose(-1, -2)]
    if rank == 2:
        layouts.append(x.contiguous(memory_format=torch.channels_last))
    for kw in kws:
        for i, xx in enumerate(layouts):
            for training in (False, True):
                xg = xx.detach().clone().requires_grad_(training)
                a, b = ours(xg, **kw), theirs(xg, **kw)
                if kw.get("return_indices"):
                    assert torch.equal(a[1], b[1])
                    a, b = a[0], b[0]
                a, b = a.detach(), b.detach()
                # channels_last: the 2d one, and the 1d transposed input that
                # torch's indices/training path lifts to it
                cl = i == 2 or (rank == 1 and i == 1 and (training or kw.get("return_indices")))
                if dtype == torch.bfloat16 and cl:
                    assert_bit_equal(a, b)
                else:
                    assert torch.equal(a.contiguous().view(torch.int16),
                                       b.contiguous().view(torch.int16)), (kw, i, training)


@pytest.mark.parametrize("seed", range(int(os.environ.get("POOLEXT_TEST_SEEDS", "40")) // 4 + 1))
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("dtype", FLOAT_TYPES, ids=str)
def test_global_windows(kind, dtype, seed):
    """Windows as large as the input (or nearly), any number of planes, both layouts."""
    rng = rng_for("global", kind, str(dtype), seed)
    half = dtype in (torch.float16, torch.bfloat16)
    rank = rng.choice([1, 2, 2] if kind == "avg" and half else [1, 2, 2, 3])
    ours, theirs = op_pair(kind, rank)
    spatial = [rng.randint(1, 8) for _ in range(rank)]
    shape = [rng.randint(1, 3), rng.randint(1, 21)] + spatial
    kw = {"kernel_size": [max(1, n - rng.choice([0, 0, 0, 1])) for n in spatial]}
    kw["stride"] = [k + rng.choice([0, 0, 1, 2]) for k in kw["kernel_size"]]
    if rng.random() < 0.3:
        kw["padding"] = [rng.randint(0, k // 2) for k in kw["kernel_size"]]
    kw["ceil_mode"] = rng.random() < 0.5
    if kind == "avg":
        kw["count_include_pad"] = rng.random() < 0.5
        if rank > 1 and rng.random() < 0.3:
            kw["divisor_override"] = rng.choice([1, 3, -2])
    x = random_values(rng, shape, dtype)
    ref = _torch_or_none(theirs, x, kw)
    if ref is None:
        pytest.skip(f"torch refuses {kw} on {shape}")
    g = torch.randn(ref.shape).to(dtype)
    fmts = [torch.contiguous_format]
    if rank >= 2:
        fmts.append(torch.channels_last if rank == 2 else torch.channels_last_3d)
    results = [_fwd_bwd(ours, x, kw, g, f) for f in fmts]
    for out, gi in results[1:]:
        assert_bit_equal(out, results[0][0])
        assert_bit_equal(gi, results[0][1])
    out, gi = results[0]
    if kind == "max":
        assert_bit_equal(out, ref)
        idx = ours(x, **kw, return_indices=True)[1]
        assert torch.equal(idx, theirs(x, **kw, return_indices=True)[1])
    else:
        torch.testing.assert_close(out, ref, equal_nan=True, **avg_tolerance(dtype))
    x2 = x.detach().clone().requires_grad_()
    theirs(x2, **kw).backward(g)
    torch.testing.assert_close(gi, x2.grad, equal_nan=True, **grad_tolerance(dtype))


@pytest.mark.parametrize("rank", [1, 2, 3])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16], ids=str)
@pytest.mark.parametrize("k", [1, 2, 3, 5])
@pytest.mark.parametrize("seed", range(3))
def test_max_backward_exact_tiling(rank, channels_last, dtype, k, seed):
    """Windows that tile the input (kernel == stride, sizes multiples of it) take their own
    backward path: the same bits as torch's, ties, NaN and -0.0 gradients included."""
    if channels_last and rank == 1:
        pytest.skip("no channels_last for 1d")
    rng = rng_for("tiling", rank, channels_last, str(dtype), k, seed)
    # Rows of 1 to 19 windows: the vector path takes eight at a time, then the rest.
    shape = [2, 5] + [k * rng.randint(1, 4) for _ in range(rank - 1)] + [k * rng.choice(
        [1, 3, 8, 11, 16, 19])]
    x = random_values(rng, shape, dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last if rank == 2 else torch.channels_last_3d)
    ours, theirs = op_pair("max", rank)
    x1, x2 = x.detach().requires_grad_(), x.detach().contiguous().requires_grad_()
    y1, y2 = ours(x1, k), theirs(x2, k)
    g = torch.randn(y2.shape).to(dtype)
    g.view(-1)[::7] = -0.0
    y1.backward(g)
    y2.backward(g)
    assert_bit_equal(x1.grad, x2.grad)
    assert same_memory_format(x1.grad, x) or x.numel() == 0


@pytest.mark.parametrize("channels_last", [False, True])
def test_large_outputs(channels_last):
    """Outputs and gradients of 4 MiB and more (whose pages poolext asks the kernel to back
    with huge pages, csrc/cpu/memory.h) hold the same values as torch's."""
    x = torch.randn(4, 32, 96, 96)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    for kw in (dict(kernel_size=2), dict(kernel_size=3, stride=1, padding=1)):
        x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
        y1, i1 = PF.max_pool2d(x1, **kw, return_indices=True)
        y2, i2 = TF.max_pool2d(x2, **kw, return_indices=True)
        assert_bit_equal(y1, y2)
        assert torch.equal(i1, i2)
        g = torch.randn_like(y2)
        y1.backward(g)
        y2.backward(g)
        torch.testing.assert_close(x1.grad, x2.grad, rtol=1e-6, atol=1e-6)
        assert x1.grad.nbytes >= 4 << 20
        a1, a2 = PF.avg_pool2d(x, **kw), TF.avg_pool2d(x, **kw)
        torch.testing.assert_close(a1, a2, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(6, 5, 6, 7), (1, 5, 6, 7), (6, 1, 6, 7), (6, 5, 1, 1)])
@pytest.mark.parametrize("order", list(itertools.permutations(range(4))),
                         ids=lambda o: "".join(map(str, o)))
def test_unbatched_max_pool3d_layout_like_torch(shape, order):
    """An unbatched 4-D input to max_pool3d, stored in any dim order: torch's CPU kernel
    gives the output of a channels-last one (C innermost) the layout of its batch of one
    (channels_last_3d), the input gradient a contiguous one; poolext does the same."""
    base = torch.randn([shape[d] for d in order], generator=torch.Generator().manual_seed(3))
    x = base.permute(*[order.index(d) for d in range(4)])
    assert x.shape == shape
    for grad in (False, True):
        xt = x.detach().clone(memory_format=torch.preserve_format).requires_grad_(grad)
        assert xt.stride() == x.stride()
        try:
            yt, it = TF.max_pool3d(xt, 2 if min(shape[1:]) > 1 else 1, return_indices=True)
        except RuntimeError as e:
            # torch's CPU kernel refuses a 4-D input that is channels_last in the 2d sense
            # (docs/semantics.md); poolext pools it.
            assert "memory format" in str(e)
            continue
        xp = x.detach().clone(memory_format=torch.preserve_format).requires_grad_(grad)
        yp, ip = PF.max_pool3d(xp, 2 if min(shape[1:]) > 1 else 1, return_indices=True)
        assert torch.equal(yt, yp) and torch.equal(it, ip)
        assert yt.stride() == yp.stride() and it.stride() == ip.stride()
        if grad:
            g = torch.randn(yt.shape, generator=torch.Generator().manual_seed(4))
            (gt,) = torch.autograd.grad(yt, xt, g)
            (gp,) = torch.autograd.grad(yp, xp, g)
            assert torch.equal(gt, gp) and gt.stride() == gp.stride()
