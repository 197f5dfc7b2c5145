"""The CUDA ops' code, run on the host, against the CPU kernels.

tests/cuda_emulation.cpp compiles csrc/cuda/impl.h and csrc/cuda/elements.h
(the CUDA kernels' per-element bodies) for the host and registers them as
torch.ops.poolext_emulated.*.  Every element is computed serially by the same
code a CUDA thread runs, so this checks the CUDA index arithmetic, layouts,
tap order and argument handling on machines without a GPU.  Results must be
bit-identical to the CPU kernels: both follow the same order of operations.
"""

import math

import pytest
import torch

import poolext  # noqa: F401  (registers torch.ops.poolext.*)
from cases import (FLOAT_TYPES, INT_TYPES, assert_bit_equal, load_cuda_emulation, random_args,
                   random_input, random_values, rng_for)
from poolext import _args

cpu = torch.ops.poolext


@pytest.fixture(scope="module")
def emu():
    return load_cuda_emulation()


def test_fastdiv(emu):
    """The int32 path's multiply-and-shift divider equals integer division."""
    assert emu.fastdiv_mismatches(0, 2_000_000) == 0


def assert_same(a, b):
    assert a.stride() == b.stride(), (a.stride(), b.stride())
    assert_bit_equal(a, b)


def raw_problem(rng, kind, rank, dtype):
    """(x, op args) in the normalised form torch.ops.poolext.* takes, drawn until valid."""
    op = f"{kind}_pool{rank}d"
    while True:
        kw = random_args(rng, kind, rank)
        x, _ = random_input(rng, kind, rank, dtype)
        k = _args.expand(op, "kernel_size", kw["kernel_size"], rank)
        s = _args.expand(op, "stride", kw.get("stride"), rank, allow_none=True) or k
        p = _args.expand(op, "padding", kw.get("padding", 0), rank)
        d = _args.expand(op, "dilation", kw.get("dilation", 1), rank)
        try:
            _args.check_values(op, k, s, p, d)
            # (torch's avg_pool3d, and so the op, refuses inputs smaller than the kernel)
            _args.out_shape(op, x.shape, k, s, p, d, kw["ceil_mode"],
                            min_size=kind == "avg" and rank == 3)
        except RuntimeError:
            continue
        cl = _args.is_channels_last(x, rank)
        if kind == "max":
            return x, (list(k), list(s), list(p), list(d), kw["ceil_mode"], cl)
        return x, (list(k), list(s), list(p), kw["ceil_mode"], kw["count_include_pad"],
                   kw.get("divisor_override"), cl)


@pytest.mark.parametrize("index32", [True, False])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_max_pool(emu, rank, index32):
    emu.set_index32(index32)
    for seed in range(60):
        rng = rng_for("emu-max", rank, seed)
        dtype = rng.choice(FLOAT_TYPES + INT_TYPES)
        x, args = raw_problem(rng, "max", rank, dtype)
        want = cpu.max_pool(x, *args, True, True)
        got = emu.max_pool(x, *args, True, True)
        for a, b in zip(got, want):
            assert_same(a, b)
        out_only = emu.max_pool(x, *args, False, False)
        assert_same(out_only[0], want[0])
        assert out_only[1].numel() == 0 and out_only[2].numel() == 0
        if not dtype.is_floating_point:
            continue
        argmax = want[1]
        gy = random_values(rng, want[0].shape, dtype)
        assert_same(emu.max_pool_backward(gy, argmax, list(x.shape), *args),
                    cpu.max_pool_backward(gy, argmax, list(x.shape), *args))
        src = random_values(rng, x.shape, dtype)
        assert_same(emu.max_pool_gather(src, argmax, *args), cpu.max_pool_gather(src, argmax, *args))


@pytest.mark.parametrize("index32", [True, False])
@pytest.mark.parametrize("rank", [1, 2, 3])
def test_avg_pool(emu, rank, index32):
    emu.set_index32(index32)
    for seed in range(60):
        rng = rng_for("emu-avg", rank, seed)
        dtype = rng.choice(FLOAT_TYPES)
        x, args = raw_problem(rng, "avg", rank, dtype)
        want = cpu.avg_pool(x, *args)
        assert_same(emu.avg_pool(x, *args), want)
        gy = random_values(rng, want.shape, dtype)
        assert_same(emu.avg_pool_backward(gy, list(x.shape), *args),
                    cpu.avg_pool_backward(gy, list(x.shape), *args))


@pytest.mark.parametrize("rank", [2, 3])
def test_channel_groups(emu, rank):
    """channels_last inputs whose C is a multiple of the fast path's channels per thread
    (16 bytes of them), and views whose data are not 16-byte aligned (one channel per
    thread): both give the CPU kernels' bits."""
    emu.set_index32(True)
    fmt = torch.channels_last if rank == 2 else torch.channels_last_3d
    for seed in range(24):
        rng = rng_for("emu-groups", rank, seed)
        dtype = rng.choice(list(FLOAT_TYPES) + [torch.uint8, torch.int64])
        kind = "max" if not dtype.is_floating_point else rng.choice(["max", "avg"])
        C = rng.choice([8, 16, 24, 40])
        spatial = [rng.randint(3, 9) for _ in range(rank)]
        k = [rng.randint(1, 3) for _ in range(rank)]
        s = [rng.randint(1, 3) for _ in range(rank)]
        p = [rng.randint(0, kk // 2) for kk in k]
        ceil = rng.random() < 0.5
        n = 2 * C * math.prod(spatial)
        flat = random_values(rng, (n + 1,), dtype)
        # Every fourth input is a view whose data start one element into its storage.
        flat = flat[1:] if seed % 4 == 3 else flat[:n]
        x = flat.view(2, *spatial, C).movedim(-1, 1)
        assert x.is_contiguous(memory_format=fmt)
        if kind == "max":
            args = (k, s, p, [1] * rank, ceil, True)
            want = cpu.max_pool(x, *args, True, True)
            for a, b in zip(emu.max_pool(x, *args, True, True), want):
                assert_same(a, b)
            if dtype.is_floating_point:
                gy = random_values(rng, want[0].shape, dtype).contiguous(memory_format=fmt)
                assert_same(emu.max_pool_backward(gy, want[1], list(x.shape), *args),
                            cpu.max_pool_backward(gy, want[1], list(x.shape), *args))
        else:
            args = (k, s, p, ceil, rng.random() < 0.5, rng.choice([None, 5]), True)
            want = cpu.avg_pool(x, *args)
            assert_same(emu.avg_pool(x, *args), want)
            gy = random_values(rng, want.shape, dtype).contiguous(memory_format=fmt)
            assert_same(emu.avg_pool_backward(gy, list(x.shape), *args),
                        cpu.avg_pool_backward(gy, list(x.shape), *args))


@pytest.mark.parametrize("channels_last", [False, True])
def test_windows_without_in_bounds_taps(emu, channels_last):
    # Dilation 3 over 2 elements with padding 1: taps at -1 and 2 miss the input.
    for shape, args in (((2, 3, 9, 2), ([2, 2], [3, 1], [1, 1], [3, 3], False)),
                        ((1, 2, 2, 3, 4), ([2, 2, 2], [1, 1, 2], [1, 1, 1], [3, 3, 2], True))):
        x = torch.randn(shape)
        args = args + (channels_last,)
        want = cpu.max_pool(x, *args, True, True)
        got = emu.max_pool(x, *args, True, True)
        assert torch.isneginf(want[0]).any()
        for a, b in zip(got, want):
            assert_same(a, b)
        gy = torch.randn(want[0].shape)
        assert_same(emu.max_pool_backward(gy, want[1], list(shape), *args),
                    cpu.max_pool_backward(gy, want[1], list(shape), *args))
        src = torch.randn(shape)
        assert_same(emu.max_pool_gather(src, want[1], *args), cpu.max_pool_gather(src, want[1], *args))


def test_wide_windows(emu):
    # uint16 and int32 argmax (windows over 256 and 65536 taps).
    emu.set_index32(True)
    for k, shape in (((3, 10, 10), (1, 2, 4, 12, 11)), ((1, 300, 300), (1, 1, 1, 301, 302))):
        x = torch.randn(shape)
        args = (list(k), [1, 1, 1], [0, k[1] // 2, 0], [1, 1, 1], False, False)
        want = cpu.max_pool(x, *args, True, True)
        got = emu.max_pool(x, *args, True, True)
        for a, b in zip(got, want):
            assert_same(a, b)
        gy = torch.randn(want[0].shape)
        assert_same(emu.max_pool_backward(gy, want[1], list(shape), *args),
                    cpu.max_pool_backward(gy, want[1], list(shape), *args))


@pytest.mark.parametrize("channels_last", [False, True])
def test_tiling_backward(emu, channels_last):
    """Windows that tile the input (kernel == stride, no padding) take the window-major
    backward: every input element written once, the uncovered tails of floor mode and the
    clipped last windows of ceil mode included, in every layout, dtype and argmax width."""
    emu.set_index32(True)
    for seed in range(40):
        rng = rng_for("emu-tiles", channels_last, seed)
        rank = rng.choice([1, 2, 3])
        dtype = rng.choice(FLOAT_TYPES)
        k = [rng.randint(1, 4) for _ in range(rank)]
        if seed % 10 == 9:  # windows over 256 taps: a 16-bit argmax
            k = [1] * (rank - 1) + [rng.randint(257, 300)]
        # Sizes with tails: up to k - 1 elements past the last full window.
        spatial = [kk * rng.randint(1, 4) + rng.randint(0, kk - 1) for kk in k]
        ceil = rng.random() < 0.5
        C = rng.choice([1, 3, 8, 16, 24])
        n = rng.choice([1, 2])
        x = random_values(rng, (n, C, *spatial), dtype)
        if channels_last:
            x = x.movedim(1, -1).contiguous().movedim(-1, 1)
        args = (k, k, [0] * rank, [1] * rank, ceil, channels_last and rank > 1)
        want = cpu.max_pool(x, *args, True, False)
        got = emu.max_pool(x, *args, True, False)
        assert_same(got[0], want[0])
        assert_same(got[1], want[1])
        gy = random_values(rng, want[0].shape, dtype)
        if seed % 5 == 0:
            gy = -torch.zeros_like(gy)  # 0 + (-0) is +0, as the gather forms it
        if channels_last and rank > 1:
            gy = gy.movedim(1, -1).contiguous().movedim(-1, 1)
        assert_same(emu.max_pool_backward(gy, want[1], list(x.shape), *args),
                    cpu.max_pool_backward(gy, want[1], list(x.shape), *args))
        # Entries naming no tap of the window, or a tap past the input: 0 flows.
        bad = want[1].clone()
        every_third = torch.arange(bad.numel()).reshape(bad.shape) % 3 == 0
        bad[every_third] = 255 if bad.dtype == torch.uint8 else 30000
        assert_same(emu.max_pool_backward(gy, bad, list(x.shape), *args),
                    cpu.max_pool_backward(gy, bad, list(x.shape), *args))


def test_foreign_argmax(emu):
    # Entries that name no in-bounds tap are never used as addresses: 0 flows.
    x = torch.randn(1, 2, 5, 5)
    args = ([3, 3], [2, 2], [1, 1], [1, 1], False, False)
    _, argmax, _ = cpu.max_pool(x, *args, True, False)
    bad = argmax.clone()
    bad[0, 0, 0, 0] = 0    # tap 0 of the first window lies in the padding
    bad[0, 1, 1, 1] = 200  # past the window
    got = emu.max_pool_gather(x, bad, *args)
    assert got[0, 0, 0, 0] == 0 and got[0, 1, 1, 1] == 0
    assert_same(got, cpu.max_pool_gather(x, bad, *args))
    gy = torch.ones(argmax.shape)
    assert_same(emu.max_pool_backward(gy, bad, [1, 2, 5, 5], *args),
                cpu.max_pool_backward(gy, bad, [1, 2, 5, 5], *args))


def test_refusals_match_cpu(emu):
    x = torch.randn(1, 1, 4, 4)
    cases = [
        ("max_pool", (x, [3, 3], [1, 1], [2, 2], [1, 1], False, False, True, False)),
        ("max_pool", (x.bool(), [2, 2], [1, 1], [0, 0], [1, 1], False, False, True, False)),
        ("max_pool", (x[0], [2, 2], [1, 1], [0, 0], [1, 1], False, True, True, False)),
        ("avg_pool", (x, [2, 2], [1, 1], [0, 0], False, True, 0, False)),
        ("avg_pool", (x, [9, 9], [1, 1], [0, 0], False, True, None, False)),
        ("avg_pool_backward", (torch.randn(1, 1, 2, 2), [1, 1, 4, 4], [2, 2], [1, 1], [0, 0],
                               False, True, None, False)),
        ("max_pool_backward", (torch.randn(1, 1, 3, 3), torch.zeros(1, 1, 3, 3, dtype=torch.int32),
                               [1, 1, 4, 4], [2, 2], [1, 1], [0, 0], [1, 1], False, False)),
        ("max_pool_gather", (x.long(), torch.zeros(1, 1, 3, 3, dtype=torch.uint8), [2, 2], [1, 1],
                             [0, 0], [1, 1], False, False)),
    ]
    for name, args in cases:
        with pytest.raises((RuntimeError, NotImplementedError)) as want:
            getattr(cpu, name)(*args)
        with pytest.raises(type(want.value)) as got:
            getattr(emu, name)(*args)
        assert str(got.value).splitlines()[0] == str(want.value).splitlines()[0]
