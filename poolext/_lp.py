"""Power-average pooling: lp_pool1d/2d/3d with torch.nn.functional's signatures.

A finite, non-zero float (or int) ``norm_type`` on a floating point input runs
poolext's fused kernels (csrc/core/lp_pool.h): one pass forward, one pass
backward.  Everything else takes torch's own formula over poolext's average
pooling, so it behaves as torch does: ``norm_type`` ±inf is max pooling of
``|x|`` (as torch 2.14 has it), 0 is refused, integer inputs follow torch's type
promotion, and a tensor ``norm_type`` is used as given.
"""

import math

import torch

from . import _args
from ._autocast import cast_input
from ._autograd import LpPool
from ._transforms import pick, use_function
from .functional import _avg_pool, _check_input, _lift_1d, _max_pool

__all__ = ["lp_pool1d", "lp_pool2d", "lp_pool3d"]

_ops = torch.ops.poolext


def _volume(k):
    v = 1
    for e in k:
        v *= e
    return v


def composite(rank, input, norm_type, kernel_size, stride, ceil_mode):
    """torch's lp_pool formula, step by step, over poolext's avg_pool (differentiable
    to any order)."""
    k = _args.expand(f"lp_pool{rank}d", "kernel_size", kernel_size, rank)
    out = _avg_pool(f"avg_pool{rank}d", rank, input.pow(norm_type), kernel_size, stride, 0,
                    ceil_mode, True, None)
    return (torch.sign(out) * torch.relu(torch.abs(out))).mul(_volume(k)).pow(1.0 / norm_type)


def _lp_pool(rank, input, norm_type, kernel_size, stride, ceil_mode):
    op = f"lp_pool{rank}d"
    if rank > 1 and isinstance(kernel_size, (tuple, list, torch.Size)) and \
            len(kernel_size) != rank:
        # torch unpacks kernel_size into rank names before anything else
        n = len(kernel_size)
        what = "too many values to unpack" if n > rank else "not enough values to unpack"
        raise ValueError(f"{what} (expected {rank}{'' if n > rank else f', got {n}'}) ({op}: "
                         f"kernel_size must be an int or a tuple of {rank} ints, got "
                         f"kernel_size={kernel_size!r})")
    _check_input(op, input)
    if isinstance(norm_type, (int, float)):
        if norm_type == 0:
            raise ValueError(f"norm_type must be a non-zero value, but got {norm_type}")
        if norm_type in (math.inf, -math.inf):  # max pooling of |x|
            sign = 1 if norm_type > 0 else -1
            y = _max_pool(f"max_pool{rank}d", rank, sign * input.abs(), kernel_size, stride, 0,
                          1, ceil_mode, False)
            return y if sign > 0 else -y
    if rank == 1 and (isinstance(kernel_size, bool) or not hasattr(kernel_size, "__index__")):
        # torch scales by kernel_size itself: Tensor.mul takes no sequence
        raise TypeError(f"mul(): argument 'other' (position 1) must be Tensor, not "
                        f"{type(kernel_size).__name__} (lp_pool1d: kernel_size must be an int, "
                        f"got kernel_size={kernel_size!r})")
    # autocast: torch's first step is Tensor.pow (on CUDA's float32 list), then avg_pool
    input = cast_input(f"avg_pool{rank}d", cast_input("pow.Tensor_Scalar", input))
    fused = (isinstance(norm_type, (int, float)) and not isinstance(norm_type, bool) and
             math.isfinite(norm_type) and input.dtype.is_floating_point)
    if not fused:
        return composite(rank, input, norm_type, kernel_size, stride, ceil_mode)
    k = _args.expand(op, "kernel_size", kernel_size, rank)
    s = _args.expand(op, "stride", stride, rank, allow_none=True) or k
    p = (0,) * rank
    _args.check_values(op, k, s, p, None)
    ceil_mode = _args.check_flag(op, "ceil_mode", ceil_mode)
    _args.out_shape(op, input.shape, k, s, p, None, ceil_mode, min_size=rank == 3)
    input, _, (k, s, _), cl, lifted = _lift_1d(input, rank, (k, s, p))
    norm = float(norm_type)
    if use_function(input):
        out, _ = pick(LpPool).apply(input, norm, k, s, ceil_mode, cl)
    else:
        out, _ = _ops.lp_pool(input, norm, k, s, ceil_mode, cl, False)
    return out.squeeze(-2) if lifted else out


def lp_pool1d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Like torch.nn.functional.lp_pool1d."""
    return _lp_pool(1, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool2d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Like torch.nn.functional.lp_pool2d."""
    return _lp_pool(2, input, norm_type, kernel_size, stride, ceil_mode)


def lp_pool3d(input, norm_type, kernel_size, stride=None, ceil_mode=False):
    """Like torch.nn.functional.lp_pool3d."""
    return _lp_pool(3, input, norm_type, kernel_size, stride, ceil_mode)
