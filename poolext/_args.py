"""Argument normalisation and the shape rules, in Python.

The functional layer uses these to refuse what torch refuses (with a message
naming the argument and its value) before any kernel runs, and the fake
kernels use them to compute output shapes under torch.compile.  The C++ side
(csrc/core/problem.h) repeats the checks that memory safety depends on.
"""

import operator

import torch
from torch._prims_common import suggest_memory_format

from ._transforms import wrapped

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
    """Output length of one spatial dim (DESIGN.md section 2).  (The C++ side clamps the
    stride to L + 2p + d(k-1) + 2, past which every stride gives the same single window,
    against overflow; Python's integers need no clamp, and symbolic sizes stay free of it.)"""
    out = (L + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    # The last window of ceil mode can start in the right padding only if
    # s - 2 + p - d(k-1) >= 0 ((out-1)*s is at most L + p + that): deciding it from the
    # integer arguments first keeps symbolic sizes free of the comparison.
    if ceil_mode and s - 2 + p - d * (k - 1) >= 0 and (out - 1) * s >= L + p:
        out = out - 1
    return out


def check_flag(op, name, value):
    """torch takes only a real bool for ceil_mode and count_include_pad."""
    if not isinstance(value, bool):
        raise TypeError(f"{op}: {name} must be a bool, got {name}={value!r}")
    return value


def _refuse(cls, sentence, op, detail):
    """torch's own sentence for the refusal first (user code matches it), then
    poolext's: the op, the argument and its value."""
    raise cls(f"{sentence} ({op}: {detail})")


def _letters(rank, prefix):
    """How torch's shape checks name per-dim values: kH kW, kT kH kW, dilationH ..."""
    return [prefix + c for c in ("HW" if rank < 3 else "THW")]


def _lift(vals, rank, fill):
    """torch checks a 1d pooling as 2d, with a dummy leading dim holding `fill`."""
    return (fill,) + tuple(vals) if rank == 1 else tuple(vals)


def _lifted_shape(sizes):
    """The shape torch reports for a 1d input it pools as 2d: a dim of 1 before the last."""
    shape = list(sizes)
    return shape[:-1] + [1] + shape[-1:]


def _per_dim(rank, prefix, vals, fill):
    return " ".join(f"{n}: {v}" for n, v in zip(_letters(rank, prefix), _lift(vals, rank, fill)))


def check_values(op, kernel_size, stride, padding, dilation, int32_stride=True, plain_1d=False):
    """Refuse non-positive kernel/stride/dilation, negative or over-half padding,
    and (as torch does on every path but plain 1d max pooling) values past int32.
    plain_1d: torch's 1d max pooling path without indices, which has its own words."""
    r = len(kernel_size)
    dil = dilation if dilation is not None else (1,) * r
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
                detail = f"{name} must be {rule}, got {name}={vals}"
                if plain_1d:
                    what = {"kernel_size": "kernel_size must be greater than zero",
                            "stride": "stride must be greater than zero",
                            "dilation": "dilation must be greater than zero",
                            "padding": "padding must be non-negative"}[name]
                    _refuse(RuntimeError, f"max_pool1d() {what}, but got {v}", op, detail)
                if name == "stride" and 0 in vals or name == "kernel_size" and 0 in vals \
                        and tuple(stride) == tuple(kernel_size):
                    # torch sizes the output before its other checks; a zero stride
                    # (the default stride of a zero kernel) stops it there
                    sentence = "stride should not be zero"
                elif name == "padding":
                    sentence = f"pad must be non-negative, but got pad: {v}"
                else:
                    word, prefix, fill = {"kernel_size": ("kernel size", "k", 1),
                                          "stride": ("stride", "d", 1),
                                          "dilation": ("dilation", "dilation", 1)}[name]
                    sentence = (f"{word} should be greater than zero, but got "
                                f"{_per_dim(r, prefix, vals, fill)}")
                _refuse(RuntimeError, sentence, op, detail)
            if v > _INT32_MAX and (name != "stride" or int32_stride):
                raise RuntimeError(f"{op}: {name} must fit in int32, got {name}={vals}")
    vol = 1
    for k in kernel_size:
        vol *= k
    if vol > _INT32_MAX:
        raise RuntimeError(
            f"{op}: a window of kernel_size={kernel_size} has more than 2^31-1 elements"
        )
    detail = (f"padding must be at most half the kernel size, got padding={padding} "
              f"with kernel_size={kernel_size}")

    def plain_1d_padding(p, k):
        _refuse(RuntimeError, f"max_pool1d() padding should be at most half of kernel size, "
                f"but got padding={p} and kernel_size={k}", op, detail)

    # torch checks padding against the dilated window while sizing the output, dim by dim,
    # then against the plain kernel size
    for p, k, d in zip(padding, kernel_size, dil):
        if p > ((k - 1) * d + 1) // 2:
            if plain_1d:
                plain_1d_padding(p, k)
            _refuse(RuntimeError, f"pad should be at most half of effective kernel size, but got "
                    f"pad={p}, kernel_size={k} and dilation={d}", op, detail)
    for p, k in zip(padding, kernel_size):
        if p > k // 2:
            if plain_1d:
                plain_1d_padding(p, k)
            kk, pp = _lift(kernel_size, r, 1), _lift(padding, r, 0)
            if r == 3:
                sentence = (f"pad should be smaller than or equal to half of kernel size, but got "
                            f"kT: {kk[0]} kW: {kk[2]} kH: {kk[1]} padT: {pp[0]} padW: {pp[2]} "
                            f"padH: {pp[1]}")
            else:
                sentence = (f"pad should be smaller than or equal to half of kernel size, but got "
                            f"padW = {pp[1]}, padH = {pp[0]}, kW = {kk[1]}, kH = {kk[0]}")
            _refuse(RuntimeError, sentence, op, detail)


def _empty_dims_sentence(op, r, sizes, plain_1d):
    """torch's words for an input with a zero-size dim other than the batch dim."""
    shape = list(sizes)
    if op == "max_pool3d":
        return ("max_pool3d_with_indices_out_cpu_template(): Expected input's non-batch "
                f"dimensions to have positive length, but input has a shape of {shape} and "
                "non-batch dimension 0 has length zero!")
    if op == "avg_pool3d":
        return ("avg_pool3d(): Expected input's non-batch dimensions to have positive length, "
                f"but input has a shape of {shape} and non-batch dimension 0 has length zero!")
    if r == 1 and plain_1d:
        return ("max_pool1d: Expected 2D or 3D (batch mode) tensor with optional 0 dim batch "
                f"size for input, but got:{shape}")
    if r == 1:
        shape = _lifted_shape(shape)
    return ("Expected 3D or 4D (batch mode) tensor with optional 0 dim batch size for input, "
            f"but got:{shape}")


def out_shape(op, sizes, kernel_size, stride, padding, dilation, ceil_mode, min_size=False,
              plain_1d=False):
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
            _refuse(RuntimeError, _empty_dims_sentence(op, r, sizes, plain_1d), op,
                    f"input dims other than the batch dim must be non-zero, got input of shape "
                    f"{tuple(sizes)}")
    dilation = dilation if dilation is not None else (1,) * r
    spatial = tuple(sizes[ndim - r:])
    if min_size and any(L < k for L, k in zip(spatial, kernel_size)):
        _refuse(RuntimeError,
                f"input image (T: {spatial[0]} H: {spatial[1]} W: {spatial[2]}) smaller than "
                f"kernel size (kT: {kernel_size[0]} kH: {kernel_size[1]} kW: {kernel_size[2]})",
                op, f"input of shape {tuple(sizes)} is smaller than "
                f"kernel_size={tuple(kernel_size)}")
    out = list(sizes)
    for a in range(r):
        out[ndim - r + a] = pooled_size(sizes[ndim - r + a], kernel_size[a], stride[a],
                                        padding[a], dilation[a], ceil_mode)
    bad = [o for o in out[ndim - r:] if o < 1]
    if bad:
        detail = (f"output size is too small: input of shape {tuple(sizes)} with "
                  f"kernel_size={tuple(kernel_size)}, stride={tuple(stride)}, "
                  f"padding={tuple(padding)}, dilation={tuple(dilation)}, ceil_mode={ceil_mode} "
                  f"gives a spatial output dim of {bad[0]}")
        if plain_1d:
            _refuse(RuntimeError, f"max_pool1d() Invalid computed output size: {out[-1]}", op,
                    detail)
        C = sizes[first]
        ins = (C, *_lift(spatial, r, 1))
        outs = (C, *_lift(out[ndim - r:], r, 1))
        _refuse(RuntimeError,
                f"Given input size: ({'x'.join(map(str, ins))}). Calculated output size: "
                f"({'x'.join(map(str, outs))}). Output size is too small", op, detail)
    return out


def is_channels_last(x, rank):
    """Whether x is pooled in channels_last layout, as torch decides it
    (Tensor.suggest_memory_format)."""
    if rank < 2 or x.dim() != rank + 2:
        return False
    if wrapped(x):
        return False  # under torch.func transforms: pooled as contiguous (strides hidden)
    cl = torch.channels_last if rank == 2 else torch.channels_last_3d
    if torch.jit.is_tracing():  # stride arithmetic would be traced: the C-level checks only
        return x.is_contiguous(memory_format=cl) and not x.is_contiguous()
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


_TYPE_NAMES = {
    torch.bool: "Bool", torch.uint8: "Byte", torch.int8: "Char", torch.int16: "Short",
    torch.int32: "Int", torch.int64: "Long", torch.float16: "Half", torch.bfloat16: "BFloat16",
    torch.float32: "Float", torch.float64: "Double", torch.complex64: "ComplexFloat",
    torch.complex128: "ComplexDouble",
}


def not_implemented_sentence(kernel, dtype):
    """torch's words when no kernel takes a dtype: "kernel" not implemented for 'Long'."""
    return f'"{kernel}" not implemented for \'{_TYPE_NAMES.get(dtype, str(dtype))}\''


def adaptive_kernel_name(kind, rank, device_type):
    """The name torch's adaptive {kind} pooling kernels give in their dtype refusals
    (1d runs as 2d; the 3d kernels carry the device)."""
    return f"adaptive_{kind}_pool2d" if rank < 3 else f"adaptive_{kind}_pool3d_{device_type}"


def check_adaptive_input(op, kind, rank, sizes, first):
    """torch's refusal of empty non-batch dims (from `first` on) in adaptive pooling."""
    for i in range(first, len(sizes)):
        if sizes[i] == 0:
            shape = list(sizes)
            name = op
            if kind == "avg" and rank == 1:  # torch pools it as 2d, over an unsqueezed view
                shape, name, i = _lifted_shape(shape), "adaptive_avg_pool2d", i + 1
            _refuse(RuntimeError, f"{name}(): Expected input to have non-zero size for "
                    f"non-batch dimensions, but input has sizes {shape} with dimension {i} "
                    "being empty", op, "expected input to have non-zero size for non-batch "
                    f"dimensions, got input of shape {tuple(sizes)}")


def check_adaptive_grad(kind, rank, grad_output):
    """torch's adaptive pooling backward refuses a grad_output with an empty dim past
    the first (an output_size of 0, or no channels)."""
    sizes = list(grad_output.shape)
    if rank == 1:  # torch's 1d backward is the 2d one, over an unsqueezed view
        sizes = _lifted_shape(sizes)
    name = f"adaptive_{kind}_pool{max(rank, 2)}d_backward"
    for i in range(1, len(sizes)):
        if sizes[i] == 0:
            _refuse(RuntimeError, f"{name}(): Expected grad_output to have non-zero size for "
                    f"non-batch dimensions, but grad_output has sizes {sizes} with dimension "
                    f"{i} being empty", name, f"grad_output of shape {tuple(grad_output.shape)} "
                    "has an empty dim past the first")
