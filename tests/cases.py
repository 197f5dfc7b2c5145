"""Random pooling problems and exact comparison helpers shared by the tests."""

import os
import random
import re
import zlib

import pytest
import torch
import torch.nn.functional as TF

import poolext.functional as PF
from poolext._args import pooled_size

FLOAT_TYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
INT_TYPES = (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)


TORCH_VERSION = tuple(int(v) for v in re.match(r"(\d+)\.(\d+)", torch.__version__).groups())

# Pooling behaviours of torch's own that changed inside poolext's supported
# range (torch 2.4 onward).  poolext follows the newest torch everywhere; the
# tests that take torch as the oracle adapt, on an older torch, where its own
# kernels behave the old way.  Each entry: the releases that behave the old way,
# [first, end), as the compatibility runs (scripts/compat.sh, torch 2.4.0,
# 2.5.1, 2.6.0, 2.7.1, 2.8.0, 2.9.1, 2.10.0, 2.11.0) found them.
TORCH_CHANGES = {
    "integer-max-padding": (
        (2, 4), (2, 5), "integer max pooling with padding counts the padding as 0"),
    "divisor-int64": (
        (2, 4), (2, 5), "avg_pool keeps only the low 32 bits of divisor_override"),
    "half-unpool-cpu": (
        (2, 4), (2, 5), "the CPU max_unpool kernels refuse float16 and bfloat16"),
    "half-adaptive-max3d-cpu": (
        (2, 4), (2, 6), "the CPU adaptive_max_pool3d kernel refuses float16"),
    "not-implemented-error": (
        (2, 4), (2, 8), "a dtype no kernel takes raises RuntimeError, not NotImplementedError"),
    "sizes-as-tensors": (
        (2, 4), (2, 10), "kernel_size and output_size refuse 0-d tensors"),
    "avg-stride-overflow": (
        (2, 5), (2, 10), "avg_pool takes a stride whose output-size arithmetic overflows"),
    "unpool1d-strides": (
        (2, 4), (2, 11), "max_unpool1d returns a contiguous output, whatever the input's strides"),
}


def torch_behaves_old(change):
    """True if this torch behaves the old way for TORCH_CHANGES[change]."""
    first, end, _ = TORCH_CHANGES[change]
    return first <= TORCH_VERSION < end


def _old_torch_reason(change):
    _, end, what = TORCH_CHANGES[change]
    return (f"torch {torch.__version__}: {what} (torch {end[0]}.{end[1]} and later do not; "
            "poolext follows them)")


def skip_if_torch_behaves_old(change):
    """Skips the calling test where this torch is the wrong oracle for it."""
    if torch_behaves_old(change):
        pytest.skip(_old_torch_reason(change))


def old_torch_skip(change):
    """A skipif mark for parameters where this torch is the wrong oracle."""
    return pytest.mark.skipif(torch_behaves_old(change), reason=_old_torch_reason(change))


def assert_raises_like_torch(ours, theirs):
    """poolext raised `ours` where torch raised `theirs`: the same class, or, on
    a torch that raised RuntimeError for an unimplemented dtype, the
    NotImplementedError (a RuntimeError subclass) that later releases raise."""
    if (torch_behaves_old("not-implemented-error") and type(theirs) is RuntimeError
            and "not implemented for" in str(theirs)):
        assert type(ours) is NotImplementedError, (ours, theirs)
    else:
        assert type(ours) is type(theirs), (ours, theirs)


def op_pair(kind, rank):
    name = f"{kind}_pool{rank}d"
    return getattr(PF, name), getattr(TF, name)


def random_args(rng, kind, rank):
    """Keyword arguments of a valid-looking pooling call (torch decides validity)."""
    k = [rng.randint(1, 4) for _ in range(rank)]
    kw = {"kernel_size": k if rng.random() < 0.7 else k[0]}
    if rng.random() < 0.8:
        s = [rng.randint(1, 3) for _ in range(rank)]
        kw["stride"] = s if rng.random() < 0.7 else s[0]
    ks = k if isinstance(kw["kernel_size"], list) else [k[0]] * rank
    if rng.random() < 0.6:
        kw["padding"] = [rng.randint(0, kk // 2) for kk in ks]
    if kind == "max" and rng.random() < 0.4:
        kw["dilation"] = [rng.randint(1, 3) for _ in range(rank)]
    kw["ceil_mode"] = rng.random() < 0.5
    if kind == "avg":
        kw["count_include_pad"] = rng.random() < 0.5
        if rank > 1 and rng.random() < 0.3:
            kw["divisor_override"] = rng.choice([1, 2, 3, 7, -2])
    return kw


def random_values(rng, shape, dtype, special=True):
    """Values with many ties (small integers), and NaN / +-inf sprinkled in."""
    g = torch.Generator().manual_seed(rng.randint(0, 2**31))
    if dtype.is_floating_point:
        style = rng.random()
        if style < 0.4:
            x = torch.randint(-3, 4, shape, generator=g).to(dtype)
        else:
            x = torch.randn(shape, generator=g).to(dtype)
        if special and x.numel() and rng.random() < 0.5:
            flat = x.view(-1)
            n = max(1, flat.numel() // 10)
            for v in (float("nan"), float("inf"), float("-inf")):
                idx = torch.randint(0, flat.numel(), (n,), generator=g)
                if rng.random() < 0.6:
                    flat[idx] = v
        return x
    info = torch.iinfo(dtype)
    lo, hi = max(info.min, -5), min(info.max, 5)
    if rng.random() < 0.3:
        lo, hi = info.min, info.max  # extremes, including the lowest value
        x = torch.randint(0, 4, shape, generator=g)
        table = torch.tensor([info.min, info.max, 0, info.min], dtype=torch.int64)
        return table[x].to(dtype)
    return torch.randint(lo, hi + 1, shape, generator=g).to(dtype)


def random_input(rng, kind, rank, dtype):
    """A random input with a random layout: contiguous, channels_last, or a strided view."""
    batched = rng.random() < 0.85
    n = rng.choice([0, 1, 2, 3]) if batched else None
    c = rng.randint(1, 5)
    spatial = [rng.randint(1, 9) for _ in range(rank)]
    shape = ([n] if batched else []) + [c] + spatial
    layout = rng.choice(["contiguous", "channels_last", "view", "transposed"])
    if layout == "channels_last" and batched and rank >= 2:
        x = random_values(rng, shape, dtype)
        fmt = torch.channels_last if rank == 2 else torch.channels_last_3d
        return x.contiguous(memory_format=fmt), layout
    if layout == "view":
        big = list(shape)
        big[-1] = big[-1] * 2
        x = random_values(rng, big, dtype)
        return x[..., ::2], layout
    if layout == "transposed" and len(shape) >= 2:
        s = list(shape)
        s[-1], s[-2] = s[-2], s[-1]
        x = random_values(rng, s, dtype)
        return x.transpose(-1, -2), layout
    return random_values(rng, shape, dtype), "contiguous"


def assert_bit_equal(a, b):
    """Same dtype, shape and values, bit for bit (NaN matches NaN)."""
    assert a.dtype == b.dtype, (a.dtype, b.dtype)
    assert a.shape == b.shape, (a.shape, b.shape)
    if a.dtype.is_floating_point:
        na, nb = torch.isnan(a), torch.isnan(b)
        assert torch.equal(na, nb), "NaN positions differ"
        bits = {torch.float32: torch.int32, torch.float64: torch.int64,
                torch.float16: torch.int16, torch.bfloat16: torch.int16}[a.dtype]
        ia = a.contiguous().view(bits)[~na]
        ib = b.contiguous().view(bits)[~nb]
        assert torch.equal(ia, ib), f"values differ: max abs diff {(a - b)[~na].abs().max()}"
    else:
        assert torch.equal(a, b)


def same_memory_format(a, b):
    """Both tensors laid out alike (compared on the formats torch names)."""
    if a.numel() == 0:
        return True
    fmts = [torch.contiguous_format]
    if a.dim() == 4:
        fmts.append(torch.channels_last)
    if a.dim() == 5:
        fmts.append(torch.channels_last_3d)
    return all(a.is_contiguous(memory_format=f) == b.is_contiguous(memory_format=f) for f in fmts)


def avg_tolerance(dtype):
    return {
        torch.float16: dict(rtol=2e-3, atol=2e-3),
        torch.bfloat16: dict(rtol=1.6e-2, atol=1e-2),
        torch.float32: dict(rtol=1e-5, atol=1e-6),
        torch.float64: dict(rtol=1e-12, atol=1e-12),
    }.get(dtype, dict(rtol=0, atol=0))


def grad_tolerance(dtype):
    # torch accumulates half-type gradients in the half type; poolext in float.
    return {
        torch.float16: dict(rtol=1e-2, atol=1e-2),
        torch.bfloat16: dict(rtol=5e-2, atol=5e-2),
    }.get(dtype, avg_tolerance(dtype))


def rng_for(*key):
    """A generator seeded by the test's key, the same in every run."""
    return random.Random(zlib.crc32(repr(key).encode()))


def empty_windows(shape, rank, kw):
    """Boolean mask over the output: max windows with no in-bounds element.

    Only dilation makes them; torch still reports an index for them (which can
    name an unrelated element) and sends their gradient there; poolext sends
    none."""
    def expand(v, default):
        v = default if v is None else v
        return list(v) * (rank if len(v) == 1 else 1) if isinstance(v, (list, tuple)) else [v] * rank

    k = expand(kw["kernel_size"], None)
    s = expand(kw.get("stride"), k) if kw.get("stride") not in (None, []) else k
    p = expand(kw.get("padding", 0), None)
    d = expand(kw.get("dilation", 1), None)
    mask = None
    for a in range(rank):
        L = shape[len(shape) - rank + a]
        out = pooled_size(L, k[a], s[a], p[a], d[a], kw.get("ceil_mode", False))
        o = torch.arange(out)
        taps = o[:, None] * s[a] - p[a] + torch.arange(k[a])[None, :] * d[a]
        empty = ~((taps >= 0) & (taps < L)).any(1)
        view = [1] * rank
        view[a] = out
        empty = empty.view(view)
        mask = empty if mask is None else (mask | empty)
    return mask


def load_cuda_emulation():
    """Builds tests/cuda_emulation.cpp (the CUDA ops' host code run on the host) once per
    process and returns torch.ops.poolext_emulated."""
    from torch.utils.cpp_extension import load

    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    # One build folder per torch release: torch's default folder is shared by releases of
    # the same CUDA version, and a lock file that a newer release leaves in it makes an
    # older one (2.11) wait forever.
    build = os.path.join(os.environ.get("TORCH_EXTENSIONS_DIR") or
                         os.path.join(os.path.expanduser("~"), ".cache", "torch_extensions"),
                         f"poolext_cuda_emulation-torch{torch.__version__}")
    os.makedirs(build, exist_ok=True)
    load(
        name="poolext_cuda_emulation",
        build_directory=build,
        # memory.cpp: the CPU output buffers that new_output (csrc/core/problem.h) takes.
        sources=[os.path.join(here, "cuda_emulation.cpp"),
                 os.path.join(root, "csrc", "cpu", "memory.cpp")],
        extra_include_paths=[os.path.join(root, "csrc")],
        extra_cflags=["-O1"],
        is_python_module=False,
        verbose=False,
    )
    return torch.ops.poolext_emulated
