"""Pooling functions with the signatures and defaults of torch.nn.functional."""

import torch

from . import _args
from ._autograd import AvgPool, MaxPool
from ._unpool import max_unpool1d, max_unpool2d, max_unpool3d

__all__ = [
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "max_unpool1d",
    "max_unpool2d",
    "max_unpool3d",
]

_ops = torch.ops.poolext


def _check_input(op, input):
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")


def _lift_1d(input, rank, args_1d):
    """torch pools a batched 1d input as 2d over input.unsqueeze(-2) (on the
    paths that keep a layout), so a (N, L, C)-strided input comes back
    channels_last-strided.  Returns (input, rank, args, channels_last,
    lifted) with the 2d view when that applies."""
    if rank == 1 and input.dim() == 3:
        x2 = input.unsqueeze(-2)
        if _args.is_channels_last(x2, 2):
            lifted = tuple((pad,) + a for a, pad in zip(args_1d, (1, 1, 0, 1)))
            return x2, 2, lifted, True, True
    return input, rank, args_1d, _args.is_channels_last(input, rank), False


def _max_pool(op, rank, input, kernel_size, stride, padding, dilation, ceil_mode, return_indices):
    _check_input(op, input)
    k = _args.expand(op, "kernel_size", kernel_size, rank)
    s = _args.expand(op, "stride", stride, rank, allow_none=True) or k
    p = _args.expand(op, "padding", padding, rank)
    d = _args.expand(op, "dilation", dilation, rank)
    ceil_mode = _args.check_flag(op, "ceil_mode", ceil_mode)
    training = torch.is_grad_enabled() and input.requires_grad
    # torch's plain 1d max pooling (no indices, no grad) takes 64-bit strides;
    # every other path refuses values past int32.
    _args.check_values(op, k, s, p, d,
                       int32_stride=not (rank == 1 and not return_indices and not training))
    _args.out_shape(op, input.shape, k, s, p, d, ceil_mode)
    if input.dtype == torch.bool or input.is_complex():
        raise NotImplementedError(f"{op}: input dtype {input.dtype} is not supported")
    lifted = False
    if training or return_indices:  # torch's plain 1d inference path keeps no layout
        input, rank, (k, s, p, d), cl, lifted = _lift_1d(input, rank, (k, s, p, d))
    else:
        cl = _args.is_channels_last(input, rank)
    if training:
        out, indices = MaxPool.apply(input, k, s, p, d, ceil_mode, cl, bool(return_indices))
    else:
        out, _, indices = _ops.max_pool(input, k, s, p, d, ceil_mode, cl, False,
                                        bool(return_indices))
    if lifted:
        out = out.squeeze(-2)
        indices = indices.squeeze(-2) if return_indices else indices
    return (out, indices) if return_indices else out


def _avg_pool(op, rank, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    _check_input(op, input)
    k = _args.expand(op, "kernel_size", kernel_size, rank)
    s = _args.expand(op, "stride", stride, rank, allow_none=True) or k
    p = _args.expand(op, "padding", padding, rank)
    _args.check_values(op, k, s, p, None)
    if divisor_override is not None:
        if isinstance(divisor_override, bool) or not hasattr(divisor_override, "__index__"):
            raise TypeError(
                f"{op}: divisor_override must be an int or None, got "
                f"divisor_override={divisor_override!r}"
            )
        divisor_override = int(divisor_override)
        if divisor_override == 0:
            raise RuntimeError(f"{op}: divisor_override must be non-zero, got divisor_override=0")
    ceil_mode = _args.check_flag(op, "ceil_mode", ceil_mode)
    count_include_pad = _args.check_flag(op, "count_include_pad", count_include_pad)
    _args.out_shape(op, input.shape, k, s, p, None, ceil_mode, min_size=rank == 3)
    dt = input.dtype
    if not (dt.is_floating_point or (dt == torch.int64 and input.device.type == "cpu")):
        raise NotImplementedError(
            f"{op}: input dtype {dt} is not supported on {input.device.type} "
            f"(floating point types{', and int64 on cpu' if input.device.type == 'cpu' else ''})"
        )
    input, rank, (k, s, p), cl, lifted = _lift_1d(input, rank, (k, s, p))
    args = (k, s, p, ceil_mode, count_include_pad, divisor_override, cl)
    if torch.is_grad_enabled() and input.requires_grad:
        out = AvgPool.apply(input, *args)
    else:
        out = _ops.avg_pool(input, *args)
    return out.squeeze(-2) if lifted else out


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Like torch.nn.functional.max_pool1d."""
    return _max_pool("max_pool1d", 1, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Like torch.nn.functional.max_pool2d."""
    return _max_pool("max_pool2d", 2, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Like torch.nn.functional.max_pool3d."""
    return _max_pool("max_pool3d", 3, input, kernel_size, stride, padding, dilation, ceil_mode,
                     return_indices)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """Like torch.nn.functional.avg_pool1d."""
    return _avg_pool("avg_pool1d", 1, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, None)


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Like torch.nn.functional.avg_pool2d."""
    return _avg_pool("avg_pool2d", 2, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True,
               divisor_override=None):
    """Like torch.nn.functional.avg_pool3d."""
    return _avg_pool("avg_pool3d", 3, input, kernel_size, stride, padding, ceil_mode,
                     count_include_pad, divisor_override)
