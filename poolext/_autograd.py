"""autograd.Functions over torch.ops.poolext.*.

Max pooling saves only the compact argmax (1 byte per output for windows up to
256 elements) and shapes; average pooling saves only shapes; LP pooling the
input and one coefficient per output.  Every backward is itself
differentiable: max-pool backward and the gather at the argmax are each
other's adjoints, avg-pool backward's adjoint is avg-pool forward, and LP
pooling's backward, under create_graph, differentiates torch's formula.
"""

import torch

from . import _args

ops = torch.ops.poolext


class MaxPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation, ceil_mode, channels_last,
                return_indices):
        out, argmax, indices = ops.max_pool(x, kernel_size, stride, padding, dilation, ceil_mode,
                                            channels_last, True, return_indices)
        ctx.save_for_backward(argmax)
        ctx.geom = (x.shape, kernel_size, stride, padding, dilation, ceil_mode, channels_last)
        ctx.mark_non_differentiable(indices)
        return out, indices

    @staticmethod
    def backward(ctx, grad_output, _grad_indices):
        (argmax,) = ctx.saved_tensors
        if torch.is_grad_enabled():  # create_graph: the backward is differentiated too
            grad = MaxPoolBackward.apply(grad_output, argmax, *ctx.geom)
        else:  # the common case: one op call, no second Function on the tape
            grad = ops.max_pool_backward(grad_output, argmax, *ctx.geom)
        return grad, None, None, None, None, None, None, None


class MaxPoolBackward(torch.autograd.Function):
    """grad_input from grad_output: linear in grad_output."""

    @staticmethod
    def forward(ctx, grad_output, argmax, input_size, kernel_size, stride, padding, dilation,
                ceil_mode, channels_last):
        ctx.save_for_backward(argmax)
        ctx.geom = (kernel_size, stride, padding, dilation, ceil_mode, channels_last)
        ctx.input_size = input_size
        return ops.max_pool_backward(grad_output, argmax, input_size, kernel_size, stride, padding,
                                     dilation, ceil_mode, channels_last)

    @staticmethod
    def backward(ctx, grad_grad_input):
        (argmax,) = ctx.saved_tensors
        return (MaxPoolGather.apply(grad_grad_input, argmax, ctx.input_size, *ctx.geom),
                None, None, None, None, None, None, None, None)


class MaxPoolGather(torch.autograd.Function):
    """out[o] = source[winner of window o]: the adjoint of MaxPoolBackward."""

    @staticmethod
    def forward(ctx, source, argmax, input_size, kernel_size, stride, padding, dilation, ceil_mode,
                channels_last):
        ctx.save_for_backward(argmax)
        ctx.geom = (kernel_size, stride, padding, dilation, ceil_mode, channels_last)
        ctx.input_size = input_size
        return ops.max_pool_gather(source, argmax, kernel_size, stride, padding, dilation,
                                   ceil_mode, channels_last)

    @staticmethod
    def backward(ctx, grad_out):
        (argmax,) = ctx.saved_tensors
        return (MaxPoolBackward.apply(grad_out, argmax, ctx.input_size, *ctx.geom),
                None, None, None, None, None, None, None, None)


class AvgPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                divisor_override, channels_last):
        ctx.geom = (x.shape, kernel_size, stride, padding, ceil_mode, count_include_pad,
                    divisor_override, channels_last)
        return ops.avg_pool(x, kernel_size, stride, padding, ceil_mode, count_include_pad,
                            divisor_override, channels_last)

    @staticmethod
    def backward(ctx, grad_output):
        if torch.is_grad_enabled():  # create_graph: the backward is differentiated too
            grad = AvgPoolBackward.apply(grad_output, *ctx.geom)
        else:
            grad = ops.avg_pool_backward(grad_output, *ctx.geom)
        return grad, None, None, None, None, None, None, None


class AvgPoolBackward(torch.autograd.Function):
    """grad_input from grad_output; its adjoint is the forward pooling."""

    @staticmethod
    def forward(ctx, grad_output, input_size, kernel_size, stride, padding, ceil_mode,
                count_include_pad, divisor_override, channels_last):
        ctx.geom = (kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override,
                    channels_last)
        return ops.avg_pool_backward(grad_output, input_size, kernel_size, stride, padding,
                                     ceil_mode, count_include_pad, divisor_override, channels_last)

    @staticmethod
    def backward(ctx, grad_grad_input):
        return (AvgPool.apply(grad_grad_input, *ctx.geom),
                None, None, None, None, None, None, None, None)


class AdaptiveMaxPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, output_size, channels_last, return_indices):
        out, argmax, indices = ops.adaptive_max_pool(x, output_size, channels_last, True,
                                                     return_indices)
        ctx.save_for_backward(argmax)
        ctx.geom = (x.shape, output_size, channels_last)
        ctx.mark_non_differentiable(indices)
        return out, indices

    @staticmethod
    def backward(ctx, grad_output, _grad_indices):
        _args.check_adaptive_grad("max", len(ctx.geom[1]), grad_output)
        (argmax,) = ctx.saved_tensors
        if torch.is_grad_enabled():
            grad = AdaptiveMaxPoolBackward.apply(grad_output, argmax, *ctx.geom)
        else:
            grad = ops.adaptive_max_pool_backward(grad_output, argmax, *ctx.geom)
        return grad, None, None, None


class AdaptiveMaxPoolBackward(torch.autograd.Function):
    """grad_input from grad_output; its adjoint is the gather at the argmax."""

    @staticmethod
    def forward(ctx, grad_output, argmax, input_size, output_size, channels_last):
        ctx.save_for_backward(argmax)
        ctx.geom = (input_size, output_size, channels_last)
        return ops.adaptive_max_pool_backward(grad_output, argmax, input_size, output_size,
                                              channels_last)

    @staticmethod
    def backward(ctx, grad_grad_input):
        (argmax,) = ctx.saved_tensors
        return (AdaptiveMaxPoolGather.apply(grad_grad_input, argmax, *ctx.geom),
                None, None, None, None)


class AdaptiveMaxPoolGather(torch.autograd.Function):
    """out[o] = source[winner of window o]: the adjoint of AdaptiveMaxPoolBackward."""

    @staticmethod
    def forward(ctx, source, argmax, input_size, output_size, channels_last):
        ctx.save_for_backward(argmax)
        ctx.geom = (input_size, output_size, channels_last)
        return ops.adaptive_max_pool_gather(source, argmax, output_size, channels_last)

    @staticmethod
    def backward(ctx, grad_out):
        (argmax,) = ctx.saved_tensors
        return (AdaptiveMaxPoolBackward.apply(grad_out, argmax, *ctx.geom),
                None, None, None, None)


class AdaptiveAvgPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, output_size, channels_last):
        ctx.geom = (x.shape, output_size, channels_last)
        return ops.adaptive_avg_pool(x, output_size, channels_last)

    @staticmethod
    def backward(ctx, grad_output):
        _args.check_adaptive_grad("avg", len(ctx.geom[1]), grad_output)
        if torch.is_grad_enabled():
            grad = AdaptiveAvgPoolBackward.apply(grad_output, *ctx.geom)
        else:
            grad = ops.adaptive_avg_pool_backward(grad_output, *ctx.geom)
        return grad, None, None


class AdaptiveAvgPoolBackward(torch.autograd.Function):
    """grad_input from grad_output; its adjoint is the forward pooling."""

    @staticmethod
    def forward(ctx, grad_output, input_size, output_size, channels_last):
        ctx.geom = (output_size, channels_last)
        return ops.adaptive_avg_pool_backward(grad_output, input_size, output_size,
                                              channels_last)

    @staticmethod
    def backward(ctx, grad_grad_input):
        return AdaptiveAvgPool.apply(grad_grad_input, *ctx.geom), None, None, None


class LpPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, norm_type, kernel_size, stride, ceil_mode, channels_last, rank):
        out, coef = ops.lp_pool(x, norm_type, kernel_size, stride, ceil_mode, channels_last, True)
        ctx.save_for_backward(x, coef)
        ctx.geom = (norm_type, kernel_size, stride, ceil_mode, channels_last)
        ctx.rank = rank
        return out

    @staticmethod
    def backward(ctx, grad_output):
        x, coef = ctx.saved_tensors
        if torch.is_grad_enabled():
            # create_graph: the gradient as a differentiable function of x and grad_output,
            # from torch's formula (over poolext's avg pooling)
            from ._lp import composite

            norm_type, kernel_size, stride, ceil_mode, _ = ctx.geom
            with torch.enable_grad():
                y = composite(ctx.rank, x, norm_type, kernel_size, stride, ceil_mode)
                (grad,) = torch.autograd.grad(y, x, grad_output, create_graph=True)
        else:
            grad = ops.lp_pool_backward(grad_output, x, coef, *ctx.geom)
        return grad, None, None, None, None, None, None
