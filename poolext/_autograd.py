"""autograd.Functions over torch.ops.poolext.*.

Max pooling saves only the compact argmax (1 byte per output for windows up to
256 elements) and shapes; average pooling saves only shapes; LP pooling the
input and one coefficient per output.  Every backward is itself
differentiable: max-pool backward and the gather at the argmax are each
other's adjoints, avg-pool backward's adjoint is avg-pool forward, and LP
pooling's backward, under create_graph, differentiates torch's formula.

The Functions take PyTorch's transforms (_transforms.py): each has a vmap rule
and a tangent for forward-mode AD, computed by poolext's own ops: max pooling's
tangent is the input's tangent gathered at the argmax, and each linear op's is
the op applied to the tangent.  Max pooling returns its argmax as a third,
non-differentiable output, so that setup_context can save it.
"""

import torch

from . import _args
from ._transforms import call, function, linear_pair, pick, transforms_active

ops = torch.ops.poolext
_NONE8 = (None,) * 8


def _rank_k(i):
    """The spatial rank of a Function's call: the length of its argument i (a kernel_size
    or output_size)."""
    return lambda args: len(args[i])


@function(tensors=(0,), cl=6, rank=_rank_k(1))
class MaxPool(torch.autograd.Function):
    """(x, kernel_size, stride, padding, dilation, ceil_mode, channels_last, return_indices)
    -> (out, indices, argmax)."""

    @staticmethod
    def forward(x, kernel_size, stride, padding, dilation, ceil_mode, channels_last,
                return_indices):
        out, argmax, indices = ops.max_pool(x, kernel_size, stride, padding, dilation, ceil_mode,
                                            channels_last, True, return_indices)
        return out, indices, argmax

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, kernel_size, stride, padding, dilation, ceil_mode, channels_last, _ = inputs
        _, indices, argmax = output
        ctx.save_for_backward(argmax)
        ctx.save_for_forward(argmax)
        ctx.geom = (x.shape, kernel_size, stride, padding, dilation, ceil_mode, channels_last)
        ctx.mark_non_differentiable(indices, argmax)

    @staticmethod
    def backward(ctx, grad_output, _grad_indices, _grad_argmax):
        (argmax,) = ctx.saved_tensors
        return (call(MaxPoolBackward, ops.max_pool_backward, grad_output, argmax, *ctx.geom),
                ) + _NONE8[:7]

    @staticmethod
    def _tangent(ctx, x_t, *_):
        (argmax,) = ctx.saved_tensors
        return pick(MaxPoolGather).apply(x_t, argmax, *ctx.geom), None, None


# grad_input from grad_output at the argmax, and out[o] = source[winner of window o]:
# (x, argmax, input_size, kernel_size, stride, padding, dilation, ceil_mode, channels_last).
MaxPoolBackward, MaxPoolGather = linear_pair(
    ("MaxPoolBackward", "MaxPoolGather"),
    (ops.max_pool_backward,
     lambda source, argmax, input_size, *geom: ops.max_pool_gather(source, argmax, *geom)),
    saved=(1,), tensors=(0, 1), shapes=(2,), cl=8, rank=_rank_k(3))


@function(tensors=(0,), cl=7, rank=_rank_k(1))
class AvgPool(torch.autograd.Function):
    """(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
    channels_last) -> out."""

    @staticmethod
    def forward(x, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
                channels_last):
        return ops.avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                            divisor_override, channels_last)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.geom = (inputs[0].shape,) + tuple(inputs[1:])

    @staticmethod
    def backward(ctx, grad_output):
        return (call(AvgPoolBackward, ops.avg_pool_backward, grad_output, *ctx.geom),
                ) + _NONE8[:7]

    @staticmethod
    def _tangent(ctx, x_t, *_):
        return pick(AvgPool).apply(x_t, *ctx.geom[1:])


@function(tensors=(0,), shapes=(1,), cl=8, rank=_rank_k(2))
class AvgPoolBackward(torch.autograd.Function):
    """grad_input from grad_output; its adjoint is the forward pooling."""

    @staticmethod
    def forward(grad_output, input_size, kernel_size, stride, padding, ceil_mode,
                count_include_pad, divisor_override, channels_last):
        return ops.avg_pool_backward(grad_output, input_size, kernel_size, stride, padding,
                                     ceil_mode, count_include_pad, divisor_override, channels_last)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.input_size, ctx.geom = inputs[1], inputs[2:]

    @staticmethod
    def backward(ctx, grad_grad_input):
        return (pick(AvgPool).apply(grad_grad_input, *ctx.geom),) + _NONE8

    @staticmethod
    def _tangent(ctx, grad_output_t, *_):
        return pick(AvgPoolBackward).apply(grad_output_t, ctx.input_size, *ctx.geom)


@function(tensors=(0,), cl=2, rank=_rank_k(1))
class AdaptiveMaxPool(torch.autograd.Function):
    """(x, output_size, channels_last, return_indices) -> (out, indices, argmax)."""

    @staticmethod
    def forward(x, output_size, channels_last, return_indices):
        out, argmax, indices = ops.adaptive_max_pool(x, output_size, channels_last, True,
                                                     return_indices)
        return out, indices, argmax

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, output_size, channels_last, _ = inputs
        _, indices, argmax = output
        ctx.save_for_backward(argmax)
        ctx.save_for_forward(argmax)
        ctx.geom = (x.shape, output_size, channels_last)
        ctx.mark_non_differentiable(indices, argmax)

    @staticmethod
    def backward(ctx, grad_output, _grad_indices, _grad_argmax):
        _args.check_adaptive_grad("max", len(ctx.geom[1]), grad_output)
        (argmax,) = ctx.saved_tensors
        return (call(AdaptiveMaxPoolBackward, ops.adaptive_max_pool_backward, grad_output, argmax,
                     *ctx.geom), None, None, None)

    @staticmethod
    def _tangent(ctx, x_t, *_):
        (argmax,) = ctx.saved_tensors
        return pick(AdaptiveMaxPoolGather).apply(x_t, argmax, *ctx.geom), None, None


# (x, argmax, input_size, output_size, channels_last)
AdaptiveMaxPoolBackward, AdaptiveMaxPoolGather = linear_pair(
    ("AdaptiveMaxPoolBackward", "AdaptiveMaxPoolGather"),
    (ops.adaptive_max_pool_backward,
     lambda source, argmax, input_size, output_size, channels_last:
     ops.adaptive_max_pool_gather(source, argmax, output_size, channels_last)),
    saved=(1,), tensors=(0, 1), shapes=(2,), cl=4, rank=_rank_k(3))


@function(tensors=(0,), cl=2, rank=_rank_k(1))
class AdaptiveAvgPool(torch.autograd.Function):
    """(x, output_size, channels_last) -> out."""

    @staticmethod
    def forward(x, output_size, channels_last):
        return ops.adaptive_avg_pool(x, output_size, channels_last)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.geom = (inputs[0].shape, inputs[1], inputs[2])

    @staticmethod
    def backward(ctx, grad_output):
        _args.check_adaptive_grad("avg", len(ctx.geom[1]), grad_output)
        return (call(AdaptiveAvgPoolBackward, ops.adaptive_avg_pool_backward, grad_output,
                     *ctx.geom), None, None)

    @staticmethod
    def _tangent(ctx, x_t, *_):
        return pick(AdaptiveAvgPool).apply(x_t, *ctx.geom[1:])


@function(tensors=(0,), shapes=(1,), cl=3, rank=_rank_k(2))
class AdaptiveAvgPoolBackward(torch.autograd.Function):
    """grad_input from grad_output; its adjoint is the forward pooling."""

    @staticmethod
    def forward(grad_output, input_size, output_size, channels_last):
        return ops.adaptive_avg_pool_backward(grad_output, input_size, output_size,
                                              channels_last)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.input_size, ctx.geom = inputs[1], inputs[2:]

    @staticmethod
    def backward(ctx, grad_grad_input):
        return pick(AdaptiveAvgPool).apply(grad_grad_input, *ctx.geom), None, None, None

    @staticmethod
    def _tangent(ctx, grad_output_t, *_):
        return pick(AdaptiveAvgPoolBackward).apply(grad_output_t, ctx.input_size, *ctx.geom)


@function(tensors=(0,), cl=5, rank=_rank_k(2))
class LpPool(torch.autograd.Function):
    """(x, norm_type, kernel_size, stride, ceil_mode, channels_last) -> (out, coef)."""

    @staticmethod
    def forward(x, norm_type, kernel_size, stride, ceil_mode, channels_last):
        return ops.lp_pool(x, norm_type, kernel_size, stride, ceil_mode, channels_last, True)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x = inputs[0]
        coef = output[1]
        ctx.save_for_backward(x, coef)
        ctx.save_for_forward(x, coef)
        ctx.geom = tuple(inputs[1:6])
        ctx.mark_non_differentiable(coef)

    @staticmethod
    def backward(ctx, grad_output, _grad_coef):
        x, coef = ctx.saved_tensors
        if torch.is_grad_enabled() or transforms_active():
            grad = _lp_grad_differentiable(x, grad_output, *ctx.geom)
        else:
            grad = ops.lp_pool_backward(grad_output, x, coef, *ctx.geom)
        return grad, None, None, None, None, None

    @staticmethod
    def _tangent(ctx, x_t, *_):
        # dy/dx_i = coef * p x_i^(p-1) over the window: the window sum of p x^(p-1) x_t
        # (avg pooling with divisor 1), times coef; exactly 0 where coef is (torch's relu)
        x, coef = ctx.saved_tensors
        norm_type, kernel_size, stride, ceil_mode, channels_last = ctx.geom
        v = x_t * (norm_type * x.pow(norm_type - 1))
        s = pick(AvgPool).apply(v, kernel_size, stride, [0] * len(kernel_size), ceil_mode, True, 1,
                                channels_last)
        t = coef * s.to(coef.dtype)
        return torch.where(coef == 0, torch.zeros_like(t), t).to(x_t.dtype), None


def _lp_grad_differentiable(x, grad_output, norm_type, kernel_size, stride, ceil_mode,
                            channels_last):
    """LP pooling's input gradient as torch's chain computes it, from differentiable pieces
    (elementwise ops and poolext's avg pooling Functions), for create_graph and the
    transforms: u = avg(x^p), w = K u, grad = avgT(grad_y (1/p) w^(1/p-1) K [u != 0])
    p x^(p-1)."""
    r = len(kernel_size)
    pad = [0] * r
    K = 1
    for k in kernel_size:
        K *= k
    avg = (kernel_size, stride, pad, ceil_mode, True, None, channels_last)
    u = pick(AvgPool).apply(x.pow(norm_type), *avg)
    w = u * K
    g_u = grad_output * ((1.0 / norm_type) * w.pow(1.0 / norm_type - 1) * K)
    g_u = torch.where(u == 0, torch.zeros_like(g_u), g_u)
    g_xp = pick(AvgPoolBackward).apply(g_u, x.shape, *avg)
    return g_xp * (norm_type * x.pow(norm_type - 1))
