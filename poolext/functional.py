"""Pooling functions with the signatures and defaults of torch.nn.functional."""

import functools

import torch
import torch.fx

from . import _args
from ._autocast import cast_input
from ._autograd import AdaptiveAvgPool, AdaptiveMaxPool, AvgPool, MaxPool
from ._transforms import jvp_twin, pick, use_function, wrapped
from ._unpool import max_unpool1d, max_unpool2d, max_unpool3d
from ._fractional import fractional_max_pool2d, fractional_max_pool3d

__all__ = [
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_max_pool3d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_avg_pool3d",
    "max_unpool1d",
    "max_unpool2d",
    "max_unpool3d",
    "lp_pool1d",
    "lp_pool2d",
    "lp_pool3d",
    "fractional_max_pool2d",
    "fractional_max_pool3d",
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
    # autocast: the aten op torch.nn.functional calls decides (see _autocast.py)
    input = cast_input(op + "_with_indices" if return_indices else op, input)
    k = _args.expand(op, "kernel_size", kernel_size, rank)
    s = _args.expand(op, "stride", stride, rank, allow_none=True) or k
    p = _args.expand(op, "padding", padding, rank)
    d = _args.expand(op, "dilation", dilation, rank)
    ceil_mode = _args.check_flag(op, "ceil_mode", ceil_mode)
    training = use_function(input)
    # torch's 1d max pooling without indices checks its arguments in words of its own,
    # and (without grad either) takes 64-bit strides; every other path refuses values
    # past int32.
    plain_1d = rank == 1 and not return_indices
    _args.check_values(op, k, s, p, d, int32_stride=not (plain_1d and not training),
                       plain_1d=plain_1d)
    _args.out_shape(op, input.shape, k, s, p, d, ceil_mode, plain_1d=plain_1d)
    if input.dtype == torch.bool or input.is_complex():
        raise NotImplementedError(f"{op}: input dtype {input.dtype} is not supported")
    lifted = unbatched_3d = False
    if rank == 3 and input.dim() == 4 and input.device.type == "cpu" and \
            not wrapped(input) and not input.is_contiguous() and \
            input.unsqueeze(0).is_contiguous(memory_format=torch.channels_last_3d):
        # torch's CPU max_pool3d lays out the output of an unbatched input stored channels
        # last (C innermost, dense) as that of its batch of one (channels_last_3d), while
        # the input gradient stays contiguous.
        x = pick(_ContiguousGrad).apply(input) if training else input
        input, cl, unbatched_3d = x.unsqueeze(0), True, True
    elif training or return_indices:  # torch's plain 1d inference path keeps no layout
        input, rank, (k, s, p, d), cl, lifted = _lift_1d(input, rank, (k, s, p, d))
    else:
        cl = _args.is_channels_last(input, rank)
    if training:
        out, indices, _ = pick(MaxPool).apply(input, k, s, p, d, ceil_mode, cl,
                                              bool(return_indices))
    else:
        out, _, indices = _ops.max_pool(input, k, s, p, d, ceil_mode, cl, False,
                                        bool(return_indices))
    if lifted or unbatched_3d:
        dim = 0 if unbatched_3d else -2
        out = out.squeeze(dim)
        indices = indices.squeeze(dim) if return_indices else indices
    return (out, indices) if return_indices else out


class _ContiguousGrad(torch.autograd.Function):
    """Identity whose backward hands on a contiguous gradient (its tangent: the tangent)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return x.view_as(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, grad):
        return grad.contiguous()

    @staticmethod
    def _tangent(ctx, tangent):
        return tangent.view_as(tangent)  # a view, as the forward's output is


jvp_twin(_ContiguousGrad)


def _avg_pool(op, rank, input, kernel_size, stride, padding, ceil_mode, count_include_pad,
              divisor_override):
    _check_input(op, input)
    input = cast_input(op, input)  # autocast, as torch's aten::avg_pool{1,2,3}d
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
    if use_function(input):
        out = pick(AvgPool).apply(input, *args)
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


def _adaptive_setup(op, rank, input, out, is_max):
    """Checks the input as torch does; returns (input, rank, output_size,
    channels_last, lifted) with 1d inputs strided like (N, L, C) lifted to
    2d, as torch pools them."""
    ndim = input.dim()
    if ndim not in (rank + 1, rank + 2):
        _args._wrong_rank(op, rank, input.shape)
    # torch lets dim 0 be empty (batch, or the channels of an unbatched
    # input); adaptive avg 1d/2d only needs the spatial dims non-empty.
    first = ndim - rank if (not is_max and rank < 3) else 1
    kind = "max" if is_max else "avg"
    _args.check_adaptive_input(op, kind, rank, input.shape, first)
    if not input.dtype.is_floating_point:
        _args._refuse(NotImplementedError, _args.not_implemented_sentence(
            _args.adaptive_kernel_name(kind, rank, input.device.type), input.dtype), op,
            f"input dtype {input.dtype} is not supported; floating point types only")
    if rank == 1 and ndim == 3:
        x2 = input.unsqueeze(-2)
        if _args.is_channels_last(x2, 2):
            return x2, 2, (1,) + out, True, True
    return input, rank, out, rank == 2 and _args.is_channels_last(input, 2), False


def _even_kernel(input, rank, out):
    """kernel = stride = L/S when every output size divides its input size
    (and the window fits the fixed-window kernels), else None.  Inputs
    without elements take the adaptive kernels, which allow empty channels."""
    spatial = input.shape[input.dim() - rank:]
    if torch.compiler.is_compiling() or any(isinstance(L, torch.SymInt) for L in spatial):
        # traced (compile, export): sizes may be symbolic, and a kernel made from them would
        # pin them; the adaptive kernels take output_size alone
        return None
    if input.numel() == 0 or any(S == 0 or L % S for L, S in zip(spatial, out)):
        return None
    k = tuple(L // S for L, S in zip(spatial, out))
    vol = 1
    for v in k:
        vol *= v
    return k if vol <= _args._INT32_MAX else None


def _adaptive_max_pool(op, rank, input, output_size, return_indices):
    _check_input(op, input)
    input = cast_input(op, input)  # autocast, as torch's aten::adaptive_max_pool{1,2,3}d
    out = _args.adaptive_output_size(op, rank, output_size, input.shape)
    input, rank, out, cl, lifted = _adaptive_setup(op, rank, input, out, True)
    training = use_function(input)
    return_indices = bool(return_indices)
    k = _even_kernel(input, rank, out)
    if k is not None:  # the fixed-window kernels, with their fast paths
        p, d = (0,) * rank, (1,) * rank
        if training:
            y, indices, _ = pick(MaxPool).apply(input, k, k, p, d, False, cl, return_indices)
        else:
            y, _, indices = _ops.max_pool(input, k, k, p, d, False, cl, False, return_indices)
    elif training:
        y, indices, _ = pick(AdaptiveMaxPool).apply(input, out, cl, return_indices)
    else:
        y, _, indices = _ops.adaptive_max_pool(input, out, cl, False, return_indices)
    if lifted:
        y = y.squeeze(-2)
        indices = indices.squeeze(-2) if return_indices else indices
    return (y, indices) if return_indices else y


def _adaptive_avg(input, rank, out, cl):
    training = use_function(input)
    k = _even_kernel(input, rank, out)
    if k is not None:
        args = (k, k, (0,) * rank, False, True, None, cl)
        return pick(AvgPool).apply(input, *args) if training else _ops.avg_pool(input, *args)
    if training:
        return pick(AdaptiveAvgPool).apply(input, out, cl)
    return _ops.adaptive_avg_pool(input, out, cl)


def _global_avg(op, rank, input):
    """torch's adaptive avg pooling to size 1 everywhere is a mean over the last `rank` dims
    (1d: over an unsqueezed 2d view): it takes any number of leading dims, gives NaN for empty
    windows, keeps channels_last (3d included) and refuses non-float types as mean() does."""
    if input.dim() < max(rank, 2):
        raise IndexError(f"{op}: output_size 1 pools the last {rank} dims, got input of shape "
                         f"{tuple(input.shape)}")
    if input.dtype.is_complex:
        raise NotImplementedError(f"{op}: complex inputs are not supported")
    if not input.dtype.is_floating_point:
        raise RuntimeError(f"{op}: input dtype {input.dtype} is not supported (a mean needs a "
                           "floating point type)")
    r = rank
    lead, spatial = tuple(input.shape[:input.dim() - r]), tuple(input.shape[input.dim() - r:])
    ones = (1,) * r
    if any(L == 0 for L in spatial):  # the mean of nothing, as torch gives it
        return input.sum(dim=tuple(range(-r, 0)), keepdim=True) / 0
    if len(lead) in (1, 2):
        if rank == 1 and len(lead) == 2:
            x2 = input.unsqueeze(-2)
            if _args.is_channels_last(x2, 2):
                return _adaptive_avg(x2, 2, (1, 1), True).squeeze(-2)
        return _adaptive_avg(input, r, ones, r > 1 and _args.is_channels_last(input, r))
    flat = input.reshape((-1,) + spatial)  # any other number of leading dims
    return _adaptive_avg(flat, r, ones, False).reshape(lead + ones)


def _adaptive_avg_pool(op, rank, input, output_size):
    _check_input(op, input)
    # autocast, as torch's aten op (1d pools through aten::adaptive_avg_pool2d)
    input = cast_input("adaptive_avg_pool2d" if rank == 1 else op, input)
    out = _args.adaptive_output_size(op, rank, output_size, input.shape, check_rank=False)
    if all(S == 1 for S in out) and (rank > 1 or input.dim() in (2, 3)):
        return _global_avg(op, rank, input)
    input, rank, out, cl, lifted = _adaptive_setup(op, rank, input, out, False)
    y = _adaptive_avg(input, rank, out, cl)
    return y.squeeze(-2) if lifted else y


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Like torch.nn.functional.adaptive_max_pool1d."""
    return _adaptive_max_pool("adaptive_max_pool1d", 1, input, output_size, return_indices)


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Like torch.nn.functional.adaptive_max_pool2d."""
    return _adaptive_max_pool("adaptive_max_pool2d", 2, input, output_size, return_indices)


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """Like torch.nn.functional.adaptive_max_pool3d."""
    return _adaptive_max_pool("adaptive_max_pool3d", 3, input, output_size, return_indices)


def adaptive_avg_pool1d(input, output_size):
    """Like torch.nn.functional.adaptive_avg_pool1d."""
    return _adaptive_avg_pool("adaptive_avg_pool1d", 1, input, output_size)


def adaptive_avg_pool2d(input, output_size):
    """Like torch.nn.functional.adaptive_avg_pool2d."""
    return _adaptive_avg_pool("adaptive_avg_pool2d", 2, input, output_size)


def adaptive_avg_pool3d(input, output_size):
    """Like torch.nn.functional.adaptive_avg_pool3d."""
    return _adaptive_avg_pool("adaptive_avg_pool3d", 3, input, output_size)


from ._lp import lp_pool1d, lp_pool2d, lp_pool3d  # noqa: E402  (_lp uses the helpers above)


def _fx_leaf(fn):
    """fn, as a leaf of torch.fx.symbolic_trace: called with a Proxy, it records a call of
    itself in the graph instead of running on the Proxy."""

    @functools.wraps(fn)
    def call(*args, **kwargs):
        for a in args + tuple(kwargs.values()):
            if isinstance(a, torch.fx.Proxy):
                return a.tracer.create_proxy("call_function", call, args, kwargs)
        return fn(*args, **kwargs)

    return call


for _name in __all__:
    globals()[_name] = _fx_leaf(globals()[_name])
