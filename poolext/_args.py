"""Argument normalisation and the shape rules, in Python.

The functional layer uses these to refuse what torch refuses (with a message
naming the argument and its value) before any kernel runs, and the fake
kernels use them to compute output shapes under torch.compile.  The C++ side
(csrc/core/problem.h) repeats the checks that memory safety depends on.
"""

import operator

import torch
from torch._prims_common import suggest_memory_format

_INT32_MAX = 2**31 - 1
_NAMES = {1: "one", 2: "two", 3: "three"}


def _as_int(op, name, value, element):
    if isinstance(value, torch.SymInt):
        return value
    if isinstance(element, bool) or not hasattr(element, "__index__"):
        raise TypeError(
            f"{op}: {name} must be an int or a tuple of ints, got {name}={value!r} "
            f"(an element of type {type(element).__name__})"
        )
    return operator.index(element)


def expand(op, name, value, n, allow_none=False):
    """An int, or a sequence of 1 or n ints, as a tuple of n ints.

    With allow_none (stride), None or an empty sequence gives None.
    """
    if value is None:
        if allow_none:
            return None
        raise TypeError(f"{op}: {name} must be an int or a tuple of ints, got {name}=None")
    if isinstance(value, (int, torch.SymInt)) or (
        hasattr(value, "__index__") and not isinstance(value, (tuple, list, torch.Size))
    ):
        v = _as_int(op, name, value, value)
        return (v,) * n
    try:
        seq = tuple(value)
    except TypeError:
        raise TypeError(
            f"{op}: {name} must be an int or a tuple of ints, got {name}={value!r}"
        ) from None
    if allow_none and len(seq) == 0:
        return None
    if len(seq) == 1:
        seq = seq * n
    if len(seq) != n:
        what = "a single int" if n == 1 else f"a single int or a tuple of {_NAMES[n]} ints"
        raise RuntimeError(f"{op}: {name} must be {what}, got {name}={value!r}")
    return tuple(_as_int(op, name, value, e) for e in seq)


def pooled_size(L, k, s, p, d, ceil_mode):
    """Output length of one spatial dim (DESIGN.md section 2)."""
    # Any stride from L + 2p + d(k-1) + 2 on gives the same single window.
    s = min(s, L + 2 * p + d * (k - 1) + 2)
    out = (L + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= L + p:
        out = out - 1
    return out


def check_flag(op, name, value):
    """torch takes only a real bool for ceil_mode and count_include_pad."""
    if not isinstance(value, bool):
        raise TypeError(f"{op}: {name} must be a bool, got {name}={value!r}")
    return value


def check_values(op, kernel_size, stride, padding, dilation, int32_stride=True):
    """Refuse non-positive kernel/stride/dilation, negative or over-half padding,
    and (as torch does on every path but plain 1d max pooling) values past int32."""
    for name, vals, lo in (
        ("kernel_size", kernel_size, 1),
        ("stride", stride, 1),
        ("dilation", dilation, 1),
        ("padding", padding, 0),
    ):
        if vals is None:
            continue
        for v in vals:
            if v < lo:
                rule = "positive" if lo else "non-negative"
                raise RuntimeError(f"{op}: {name} must be {rule}, got {name}={vals}")
            if v > _INT32_MAX and (name != "stride" or int32_stride):
                raise RuntimeError(f"{op}: {name} must fit in int32, got {name}={vals}")
    vol = 1
    for k in kernel_size:
        vol *= k
    if vol > _INT32_MAX:
        raise RuntimeError(
            f"{op}: a window of kernel_size={kernel_size} has more than 2^31-1 elements"
        )
    for p, k in zip(padding, kernel_size):
        if p > k // 2:
            raise RuntimeError(
                f"{op}: padding must be at most half the kernel size, got padding={padding} "
                f"with kernel_size={kernel_size}"
            )


def out_shape(op, sizes, kernel_size, stride, padding, dilation, ceil_mode, min_size=False):
    """Checks the input's shape and returns the output's.  With min_size, each
    spatial size must be at least the kernel (torch's avg_pool3d rule)."""
    r = len(kernel_size)
    ndim = len(sizes)
    if ndim not in (r + 1, r + 2):
        raise RuntimeError(
            f"{op}: expected a {r + 1}D (unbatched) or {r + 2}D (batched) input, "
            f"got input of shape {tuple(sizes)}"
        )
    first = 1 if ndim == r + 2 else 0
    for i in range(first, ndim):
        if sizes[i] == 0:
            raise RuntimeError(
                f"{op}: input dims other than the batch dim must be non-zero, "
                f"got input of shape {tuple(sizes)}"
            )
    dilation = dilation if dilation is not None else (1,) * r
    spatial = tuple(sizes[ndim - r:])
    if min_size and any(L < k for L, k in zip(spatial, kernel_size)):
        raise RuntimeError(
            f"{op}: input of shape {tuple(sizes)} is smaller than kernel_size={tuple(kernel_size)}"
        )
    out = list(sizes)
    for a in range(r):
        o = pooled_size(sizes[ndim - r + a], kernel_size[a], stride[a], padding[a], dilation[a],
                        ceil_mode)
        if o < 1:
            raise RuntimeError(
                f"{op}: output size is too small: input of shape {tuple(sizes)} with "
                f"kernel_size={tuple(kernel_size)}, stride={tuple(stride)}, "
                f"padding={tuple(padding)}, dilation={tuple(dilation)}, ceil_mode={ceil_mode} "
                f"gives a spatial output dim of {o}"
            )
        out[ndim - r + a] = o
    return out


def is_channels_last(x, rank):
    """Whether x is pooled in channels_last layout, as torch decides it
    (Tensor.suggest_memory_format)."""
    if rank < 2 or x.dim() != rank + 2:
        return False
    cl = torch.channels_last if rank == 2 else torch.channels_last_3d
    # The common unambiguous cases with two C-level checks; the rest (views,
    # tensors dense in both layouts) as torch decides them.
    if all(n > 1 for n in x.shape):
        contiguous, channels_last = x.is_contiguous(), x.is_contiguous(memory_format=cl)
        if contiguous != channels_last:
            return channels_last
    return suggest_memory_format(x) != torch.contiguous_format


def memory_format(rank, channels_last):
    if not channels_last:
        return torch.contiguous_format
    return torch.channels_last if rank == 2 else torch.channels_last_3d


def argmax_dtype(kernel_size):
    vol = 1
    for k in kernel_size:
        vol *= k
    if vol <= 256:
        return torch.uint8
    if vol <= 65536:
        return torch.int16
    return torch.int32


def adaptive_argmax_dtype(spatial, output_size):
    """The compact argmax dtype of adaptive max pooling (csrc/core/adaptive.h):
    by the widest window, bounded per dim by L/S, or L//S + 2 when S does not
    divide L."""
    if any(S == 0 for S in output_size):
        return torch.uint8
    window = 1
    for L, S in zip(spatial, output_size):
        window *= L // S if L % S == 0 else L // S + 2
    return argmax_dtype((window,))


def adaptive_output_size(op, rank, output_size, sizes, check_rank=True):
    """output_size as torch's adaptive pooling reads it, checked in torch's order: an int, or
    a sequence of `rank` ints (None keeps the input's size, except in 1d).  With check_rank,
    the input must have rank + 1 or rank + 2 dims."""
    ndim = len(sizes)
    scalar = isinstance(output_size, (int, torch.SymInt)) if rank > 1 else (
        isinstance(output_size, (int, torch.SymInt)) or
        (hasattr(output_size, "__index__") and not isinstance(output_size, (tuple, list))))
    if isinstance(output_size, bool):
        raise TypeError(f"{op}: output_size must be an int or a tuple of ints, got "
                        f"output_size={output_size!r}")
    if scalar:
        seq = (output_size,) * rank
    else:
        try:
            seq = tuple(output_size)
        except TypeError:
            raise TypeError(f"{op}: output_size must be an int or a tuple of ints, got "
                            f"output_size={output_size!r}") from None
        if rank > 1:
            if ndim <= len(seq):  # torch needs an input dim for every entry, and one more
                raise ValueError(f"{op}: output_size={output_size!r} needs an input of at "
                                 f"least {len(seq) + 1} dims, got input of shape {tuple(sizes)}")
            seq = tuple(sizes[ndim - len(seq) + i] if e is None else e for i, e in enumerate(seq))
    for i, e in enumerate(seq):
        # torch's parser checks the first element's type only; a later bool counts as an int.
        if not isinstance(e, torch.SymInt) and ((isinstance(e, bool) and i == 0) or
                                                not hasattr(e, "__index__")):
            raise TypeError(f"{op}: output_size must be an int or a tuple of ints"
                            f"{' (or None)' if rank > 1 else ''}, got output_size={output_size!r}")
    if check_rank and rank > 1 and ndim not in (rank + 1, rank + 2):
        _wrong_rank(op, rank, sizes)
    if len(seq) != rank:
        what = "one int" if rank == 1 else f"{_NAMES[rank]} entries"
        raise RuntimeError(f"{op}: output_size must have {what}, got output_size={output_size!r}")
    if rank == 1 and ndim not in (2, 3):
        _wrong_rank(op, rank, sizes)
    out = tuple(e if isinstance(e, torch.SymInt) else operator.index(e) for e in seq)
    if any(S < 0 for S in out):
        raise RuntimeError(f"{op}: elements of output_size must be non-negative, got "
                           f"output_size={output_size!r}")
    return out


def _wrong_rank(op, rank, sizes):
    raise RuntimeError(f"{op}: expected a {rank + 1}D (unbatched) or {rank + 2}D (batched) "
                       f"input, got input of shape {tuple(sizes)}")
