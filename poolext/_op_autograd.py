"""Autograd on the ops themselves (torch.library.register_autograd), so that a direct
``torch.ops.poolext.*`` call, and the graph ``torch.export`` records (which calls the ops, not
poolext's Python Functions), differentiate.

Each formula calls poolext's ops, whose own formulas then give higher orders: max pooling's
backward and the gather at the argmax are each other's adjoints, as are the avg pooling
backward and forward, and unpooling and its backward.  A forward called without its saved
state (``with_argmax`` / ``with_coef`` false) recomputes it in backward from the input.  LP
pooling's backward, under create_graph, runs torch's chain from differentiable pieces; its
backward op itself is not differentiable and says so.
"""

import torch

from . import _args

ops = torch.ops.poolext
_register = getattr(torch.library, "register_autograd", None)


def _nones(n):
    return (None,) * n


def _formula(name, setup, backward):
    if _register is not None:
        _register(f"poolext::{name}", backward, setup_context=setup)


# -- max pooling -------------------------------------------------------------------------


def _max_pool_setup(ctx, inputs, output):
    x, k, s, p, d, ceil_mode, cl, with_argmax, _ = inputs
    ctx.geom = (list(x.shape), k, s, p, d, ceil_mode, cl)
    ctx.with_argmax = with_argmax
    ctx.save_for_backward(output[1] if with_argmax else x)


def _max_pool_backward(ctx, grad_out, _grad_argmax, _grad_indices):
    (saved,) = ctx.saved_tensors
    argmax = saved if ctx.with_argmax else ops.max_pool(saved, *ctx.geom[1:], True, False)[1]
    return (ops.max_pool_backward(grad_out, argmax, *ctx.geom),) + _nones(8)


def _argmax_pair_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[1])
    ctx.rest = inputs[2:]


def _max_pool_backward_backward(ctx, grad):
    (argmax,) = ctx.saved_tensors
    input_size, *geom = ctx.rest
    return (ops.max_pool_gather(grad, argmax, *geom), None) + _nones(7)


def _max_pool_gather_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[1])
    ctx.input_size = list(inputs[0].shape)
    ctx.rest = inputs[2:]


def _max_pool_gather_backward(ctx, grad):
    (argmax,) = ctx.saved_tensors
    return (ops.max_pool_backward(grad, argmax, ctx.input_size, *ctx.rest), None) + _nones(6)


_formula("max_pool", _max_pool_setup, _max_pool_backward)
_formula("max_pool_backward", _argmax_pair_setup, _max_pool_backward_backward)
_formula("max_pool_gather", _max_pool_gather_setup, _max_pool_gather_backward)


# -- average pooling ---------------------------------------------------------------------


def _avg_pool_setup(ctx, inputs, output):
    ctx.input_size = list(inputs[0].shape)
    ctx.rest = inputs[1:]


def _avg_pool_backward(ctx, grad):
    return (ops.avg_pool_backward(grad, ctx.input_size, *ctx.rest),) + _nones(7)


def _avg_pool_backward_setup(ctx, inputs, output):
    ctx.rest = inputs[2:]


def _avg_pool_backward_backward(ctx, grad):
    return (ops.avg_pool(grad, *ctx.rest),) + _nones(8)


_formula("avg_pool", _avg_pool_setup, _avg_pool_backward)
_formula("avg_pool_backward", _avg_pool_backward_setup, _avg_pool_backward_backward)


# -- adaptive pooling --------------------------------------------------------------------


def _adaptive_max_setup(ctx, inputs, output):
    x, output_size, cl, with_argmax, _ = inputs
    ctx.geom = (list(x.shape), output_size, cl)
    ctx.with_argmax = with_argmax
    ctx.save_for_backward(output[1] if with_argmax else x)


def _adaptive_max_backward(ctx, grad_out, _grad_argmax, _grad_indices):
    (saved,) = ctx.saved_tensors
    input_size, output_size, cl = ctx.geom
    _args.check_adaptive_grad("max", len(output_size), grad_out)
    argmax = saved if ctx.with_argmax else \
        ops.adaptive_max_pool(saved, output_size, cl, True, False)[1]
    return (ops.adaptive_max_pool_backward(grad_out, argmax, *ctx.geom),) + _nones(4)


def _adaptive_max_backward_backward(ctx, grad):
    (argmax,) = ctx.saved_tensors
    _input_size, output_size, cl = ctx.rest
    return (ops.adaptive_max_pool_gather(grad, argmax, output_size, cl),) + _nones(4)


def _adaptive_max_gather_backward(ctx, grad):
    (argmax,) = ctx.saved_tensors
    return (ops.adaptive_max_pool_backward(grad, argmax, ctx.input_size, *ctx.rest),) + _nones(3)


def _adaptive_avg_backward(ctx, grad):
    _args.check_adaptive_grad("avg", len(ctx.rest[0]), grad)
    return (ops.adaptive_avg_pool_backward(grad, ctx.input_size, *ctx.rest),) + _nones(2)


def _adaptive_avg_backward_backward(ctx, grad):
    return (ops.adaptive_avg_pool(grad, *ctx.rest),) + _nones(3)


_formula("adaptive_max_pool", _adaptive_max_setup, _adaptive_max_backward)
_formula("adaptive_max_pool_backward", _argmax_pair_setup, _adaptive_max_backward_backward)
_formula("adaptive_max_pool_gather", _max_pool_gather_setup, _adaptive_max_gather_backward)
_formula("adaptive_avg_pool", _avg_pool_setup, _adaptive_avg_backward)
_formula("adaptive_avg_pool_backward", _avg_pool_backward_setup, _adaptive_avg_backward_backward)


# -- max unpooling -----------------------------------------------------------------------


def _indices_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[1])
    ctx.rest = inputs[2:]


def _max_unpool_backward(ctx, grad):
    (indices,) = ctx.saved_tensors
    return (ops.max_unpool_backward(grad, indices, *ctx.rest),) + _nones(3)


def _max_unpool_backward_backward(ctx, grad):
    (indices,) = ctx.saved_tensors
    return (ops.max_unpool(grad, indices, *ctx.rest),) + _nones(3)


_formula("max_unpool", _indices_setup, _max_unpool_backward)
_formula("max_unpool_backward", _indices_setup, _max_unpool_backward_backward)


# -- LP pooling --------------------------------------------------------------------------


def _lp_setup(ctx, inputs, output):
    x, norm_type, k, s, ceil_mode, cl, with_coef = inputs
    ctx.geom = (norm_type, k, s, ceil_mode, cl)
    ctx.with_coef = with_coef
    ctx.save_for_backward(x, output[1] if with_coef else None)


def _lp_backward(ctx, grad_out, _grad_coef):
    x, coef = ctx.saved_tensors
    if torch.is_grad_enabled():  # create_graph: torch's chain, differentiable
        from ._autograd import _lp_grad_differentiable

        return (_lp_grad_differentiable(x, grad_out, *ctx.geom),) + _nones(6)
    if not ctx.with_coef:
        coef = ops.lp_pool(x, *ctx.geom, True)[1]
    return (ops.lp_pool_backward(grad_out, x, coef, *ctx.geom),) + _nones(6)


def _lp_backward_setup(ctx, inputs, output):
    pass


def _lp_backward_backward(ctx, grad):
    raise NotImplementedError(
        "poolext.lp_pool_backward is not differentiable: differentiate lp_pool (or "
        "poolext.functional.lp_pool*d) with create_graph=True instead")


_formula("lp_pool", _lp_setup, _lp_backward)
_formula("lp_pool_backward", _lp_backward_setup, _lp_backward_backward)


# -- fractional max pooling --------------------------------------------------------------


def _fractional_setup(ctx, inputs, output):
    x, k, output_size, samples, cl, with_argmax, _ = inputs
    ctx.geom = (list(x.shape), k, output_size, cl)
    ctx.with_argmax = with_argmax
    ctx.save_for_backward(output[1] if with_argmax else x, samples)


def _fractional_backward(ctx, grad_out, _grad_argmax, _grad_indices):
    saved, samples = ctx.saved_tensors
    input_size, k, output_size, cl = ctx.geom
    argmax = saved if ctx.with_argmax else \
        ops.fractional_max_pool(saved, k, output_size, samples, cl, True, False)[1]
    # torch's input gradient is contiguous whatever the input's layout
    return (ops.fractional_max_pool_backward(grad_out, argmax, samples, input_size, k, False),
            ) + _nones(6)


def _fractional_pair_setup(ctx, inputs, output):
    ctx.save_for_backward(inputs[1], inputs[2])
    ctx.input_size = list(inputs[0].shape)
    ctx.rest = inputs[3:]


def _fractional_backward_backward(ctx, grad):
    argmax, samples = ctx.saved_tensors
    _input_size, k, _cl = ctx.rest
    output_size = list(ctx.input_size[-len(k):])  # grad_output's spatial sizes
    return (ops.fractional_max_pool_gather(grad, argmax, samples, k, output_size, False),
            ) + _nones(5)


def _fractional_gather_backward(ctx, grad):
    argmax, samples = ctx.saved_tensors
    k, _output_size, _cl = ctx.rest
    return (ops.fractional_max_pool_backward(grad, argmax, samples, ctx.input_size, k, False),
            ) + _nones(5)


_formula("fractional_max_pool", _fractional_setup, _fractional_backward)
_formula("fractional_max_pool_backward", _fractional_pair_setup, _fractional_backward_backward)
_formula("fractional_max_pool_gather", _fractional_pair_setup, _fractional_gather_backward)
