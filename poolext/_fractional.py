"""fractional_max_pool{2,3}d: the functions, their autograd.Functions and fake kernels.

Semantics are torch.nn.functional.fractional_max_pool{2,3}d's (the window rule is in
csrc/core/fractional.h).  Arguments go through the steps torch takes, in its order, so that
the same call raises the same exception with torch's words:

1. torch's Python function: output_size or output_ratio (output_size = int(L * ratio)), then
   the samples, drawn as ``torch.rand(N, C, rank, dtype=input.dtype, device=input.device)``
   when not given, so that under the same ``torch.manual_seed`` poolext pools with torch's
   windows;
2. torch's argument parser (kernel_size and output_size: an int or a sequence of ints);
3. its autograd layer (the samples must not require grad);
4. its shape checks (kernel_size and output_size lengths, positive kernel, input rank, empty
   dims, windows that fit; the 3d rule is strict: S + k - 1 < L), its output allocation
   (negative sizes), then the samples' dtype and shape; an empty output returns there, before
   any dtype is refused.

Sample values are the C++ layer's: on CPU, samples that put a window outside the input raise
as torch's CPU kernel does (for bfloat16 even some samples in [0, 1) do: its interval
arithmetic rounds to bfloat16 at every step); on CUDA starts are clamped into the input.

Training saves only the compact argmax (one byte per output for windows up to 256 elements)
and the samples; the backward recomputes the windows from the samples.  Backward and the
gather at the argmax are each other's adjoints, so double backward is exact.
"""

import torch
from torch.nn.modules.utils import _pair, _triple

from . import _args
from ._autocast import cast_input
from ._transforms import function, linear_pair, pick, transforms_active, use_function

__all__ = ["fractional_max_pool2d", "fractional_max_pool3d"]

ops = torch.ops.poolext


# -- autograd --------------------------------------------------------------------------------


def _rank(i):
    return lambda args: len(args[i])


@function(tensors=(0,), samples=1, cl=4, rank=_rank(2))
class FractionalMaxPool(torch.autograd.Function):
    """(x, samples, kernel_size, output_size, channels_last, return_indices)
    -> (out, indices, argmax)."""

    @staticmethod
    def forward(x, samples, kernel_size, output_size, channels_last, return_indices):
        out, argmax, indices = ops.fractional_max_pool(x, kernel_size, output_size, samples,
                                                       channels_last, True, return_indices)
        return out, indices, argmax

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, samples, kernel_size, output_size = inputs[:4]
        _, indices, argmax = output
        ctx.save_for_backward(argmax, samples)
        ctx.save_for_forward(argmax, samples)
        ctx.geom = (list(x.shape), kernel_size, output_size)
        ctx.mark_non_differentiable(indices, argmax)

    @staticmethod
    def backward(ctx, grad_output, _grad_indices, _grad_argmax):
        argmax, samples = ctx.saved_tensors
        # torch's input gradient is contiguous whatever the input's layout
        if torch.is_grad_enabled() or transforms_active():  # the backward is differentiated
            grad = pick(FractionalMaxPoolBackward).apply(grad_output, argmax, samples, *ctx.geom)
        else:
            input_size, kernel_size, _ = ctx.geom
            grad = ops.fractional_max_pool_backward(grad_output, argmax, samples, input_size,
                                                    kernel_size, False)
        return grad, None, None, None, None, None

    @staticmethod
    def _tangent(ctx, x_t, *_):
        argmax, samples = ctx.saved_tensors
        return pick(FractionalMaxPoolGather).apply(x_t, argmax, samples, *ctx.geom), None, None


# grad_input from grad_output at the argmax (the input gradient contiguous, as torch's), and
# out[o] = source[winner of window o]:
# (x, argmax, samples, input_size, kernel_size, output_size).
FractionalMaxPoolBackward, FractionalMaxPoolGather = linear_pair(
    ("FractionalMaxPoolBackward", "FractionalMaxPoolGather"),
    (lambda grad_output, argmax, samples, input_size, kernel_size, output_size:
     ops.fractional_max_pool_backward(grad_output, argmax, samples, input_size, kernel_size,
                                      False),
     lambda source, argmax, samples, input_size, kernel_size, output_size:
     ops.fractional_max_pool_gather(source, argmax, samples, kernel_size, output_size,
                                    _args.is_channels_last(source, len(kernel_size)))),
    saved=(1, 2), tensors=(0, 1), samples=2, shapes=(3,), rank=_rank(4))


# -- fake kernels ----------------------------------------------------------------------------


def _pooled_shape(sizes, output_size):
    r = len(output_size)
    return list(sizes[:len(sizes) - r]) + list(output_size)


@torch.library.register_fake("poolext::fractional_max_pool")
def _fractional_max_pool_fake(self, kernel_size, output_size, samples, channels_last,
                              with_argmax, with_indices):
    shape = _pooled_shape(self.shape, output_size)
    am_dtype = _args.argmax_dtype(kernel_size)
    out = self.new_empty(shape)
    am = self.new_empty(shape if with_argmax else (0,), dtype=am_dtype)
    idx = self.new_empty(shape if with_indices else (0,), dtype=torch.int64)
    return out, am, idx


@torch.library.register_fake("poolext::fractional_max_pool_backward")
def _fractional_max_pool_backward_fake(grad_output, argmax, samples, input_size, kernel_size,
                                       channels_last):
    return grad_output.new_empty(list(input_size)).contiguous(
        memory_format=_args.memory_format(len(kernel_size), channels_last))


@torch.library.register_fake("poolext::fractional_max_pool_gather")
def _fractional_max_pool_gather_fake(source, argmax, samples, kernel_size, output_size,
                                     channels_last):
    return source.new_empty(_pooled_shape(source.shape, output_size))


# -- argument handling -----------------------------------------------------------------------


def _int_list(op, name, position, value, rank):
    """kernel_size / output_size as torch's argument parser reads an int[rank]: an int is
    repeated, a sequence kept as it is (its length is checked later)."""
    def refuse(what):
        raise TypeError(f"{op}(): argument '{name}' (position {position}) must be tuple of "
                        f"ints, {what}")

    if isinstance(value, torch.SymInt) or (not isinstance(value, bool) and
                                           isinstance(value, int)):
        return (value,) * rank
    if not isinstance(value, (tuple, list, torch.Size)):
        refuse(f"not {type(value).__name__}")
    out = []
    for i, v in enumerate(value):
        if isinstance(v, torch.SymInt):
            out.append(v)
        elif (isinstance(v, bool) and i == 0) or not hasattr(v, "__index__") or \
                isinstance(v, torch.Tensor) and v.dim() > 0:
            refuse(f"but found element of type {type(v).__name__} at pos {i}")
        else:
            out.append(int(v.__index__()))
    return tuple(out)


def _shape_list(shape):
    return "[" + ", ".join(str(s) for s in shape) + "]"


def _check(op, rank, input, k, out, samples):
    """torch's native checks, in its order (see the module docstring); returns the output
    shape."""
    name = f"fractional_max_pool{rank}d"
    # the 3d kernel's messages name its out() function
    where = f"{name}()" if rank == 2 else f"{name}_out()"
    if len(k) != rank:
        _args._refuse(RuntimeError, f"{name}: kernel_size must either be a single Int or tuple "
                      f"of {'' if rank == 2 else 'three '}Ints", op,
                      f"kernel_size must have {rank} entries, got kernel_size={k}")
    if len(out) != rank:
        _args._refuse(RuntimeError, f"{name}: output_size must either be a single Int or tuple "
                      f"of {'' if rank == 2 else 'three '}Ints", op,
                      f"output_size must have {rank} entries, got output_size={out}")
    if any(v <= 0 for v in k):
        _args._refuse(RuntimeError, f"{name}(): kernel size should be greater than zero, but "
                      f"got {'x'.join(map(str, k))}", op,
                      f"kernel_size must be positive, got kernel_size={k}")
    sizes = tuple(input.shape)
    ndim = len(sizes)
    if ndim not in (rank + 1, rank + 2):
        _args._refuse(RuntimeError, f"{where}: Expected {rank + 1}D or {rank + 2}D tensor, but "
                      f"got: {_shape_list(sizes)}", op,
                      f"expected a {rank + 1}D (unbatched) or {rank + 2}D (batched) input, got "
                      f"input of shape {sizes}")
    for i in range(1, ndim):
        if sizes[i] == 0:
            _args._refuse(RuntimeError, f"{where}: Expected input to have non-zero size for "
                          f"non-batch dimensions, but got{_shape_list(sizes)} with dimension {i} "
                          "being empty.", op, "input dims other than the first must be "
                          f"non-zero, got input of shape {sizes}")
    spatial = sizes[ndim - rank:]
    words = ("height", "width") if rank == 2 else ("time", "height", "width")
    # torch checks 2d's H then W, and 3d's T, W, H
    order = (0, 1) if rank == 2 else (0, 2, 1)
    for a in order:
        L, kk, S = spatial[a], k[a], out[a]
        fits = S + kk - 1 <= L if rank == 2 else (kk <= L and S + kk - 1 < L)
        if not fits:
            rule = "S + k - 1 <= L" if rank == 2 else "k <= L and S + k - 1 < L"
            _args._refuse(RuntimeError, f"{where}: pool {words[a]} {kk} too large relative to "
                          f"input {words[a]} {L}", op, f"output_size={out} with kernel_size={k} "
                          f"needs {rule} in every dim, got input of shape {sizes}")
    shape = list(sizes[:ndim - rank]) + list(out)
    for s in shape:
        if s < 0:
            _args._refuse(RuntimeError, f"Trying to create tensor with negative dimension {s}: "
                          f"{_shape_list(shape)}", op,
                          f"output_size must be non-negative, got output_size={out}")
    if samples.dtype != input.dtype:
        _args._refuse(RuntimeError, "Expect _random_samples to have the same dtype as input", op,
                      f"_random_samples have dtype {samples.dtype}, input {input.dtype}")
    if samples.dim() != 3:
        _args._refuse(RuntimeError, f"Expect _random_samples to have 3 dimensions, got "
                      f"{samples.dim()}", op, f"_random_samples of shape {tuple(samples.shape)}")
    batch, channels = (1, sizes[0]) if ndim == rank + 1 else (sizes[0], sizes[1])
    if samples.shape[0] < batch:
        _args._refuse(RuntimeError, "Expect _random_samples.size(0) no less then input batch "
                      "size.", op, f"_random_samples of shape {tuple(samples.shape)} for a batch "
                      f"of {batch}")
    if samples.shape[1] != channels:
        _args._refuse(RuntimeError, "Expect _random_samples.size(1) equals to input channel "
                      "size.", op, f"_random_samples of shape {tuple(samples.shape)} for "
                      f"{channels} channels")
    if samples.shape[2] != rank:
        _args._refuse(RuntimeError, f"Expect _random_samples.size(2) equals to {rank}; got "
                      f"{samples.shape[2]}.", op,
                      f"_random_samples of shape {tuple(samples.shape)}")
    return shape


def _fractional(op, rank, input, kernel_size, output_size, output_ratio, return_indices,
                samples):
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    # 1. torch.nn.functional's own steps, with its words
    if output_size is None and output_ratio is None:
        raise ValueError(f"{op} requires specifying either an output_size or an output_ratio")
    if output_size is None:
        if rank == 2:
            if len(output_ratio) > 2:
                raise ValueError(f"{op} requires output_ratio to either be a single Int or "
                                 "tuple of Ints.")
            ratio = _pair(output_ratio)
        else:
            ratio = _triple(output_ratio)
        output_size = [int(input.size(a - rank) * ratio[a]) for a in range(rank)]
    if samples is None:
        n_batch = 1 if input.dim() == rank + 1 else input.size(0)
        samples = torch.rand(n_batch, input.size(-rank - 1), rank, dtype=input.dtype,
                             device=input.device)
    # 2. the argument parser
    k = _int_list(op, "kernel_size", 2, kernel_size, rank)
    out = _int_list(op, "output_size", 3, output_size, rank)
    if not isinstance(samples, torch.Tensor):
        raise TypeError(f"{op}(): argument 'random_samples' (position 4) must be Tensor, not "
                        f"{type(samples).__name__}")
    # autocast, as torch's aten::fractional_max_pool{2,3}d: input and samples alike
    cast = cast_input(op, input)
    if cast is not input:
        input, samples = cast, cast_input(op, samples)
    # 3. the autograd layer
    if torch.is_grad_enabled() and samples.requires_grad:
        raise RuntimeError(f"The function '{op}' is not differentiable with respect to argument "
                           "'random_samples'. This input cannot have requires_grad True.")
    # 4. the shape checks, allocation and samples checks
    shape = _check(op, rank, input, k, out, samples)
    return_indices = bool(return_indices)
    if not input.dtype.is_floating_point:
        if any(s == 0 for s in shape):  # torch returns before its dtype dispatch
            y = input.new_empty(shape)
            return (y, input.new_empty(shape, dtype=torch.int64)) if return_indices else y
        _args._refuse(NotImplementedError, _args.not_implemented_sentence(
            f"{op}_out_frame", input.dtype), op,
            f"input dtype {input.dtype} is not supported; floating point types only")
    cl = _args.is_channels_last(input, rank)
    if use_function(input):
        y, indices, _ = pick(FractionalMaxPool).apply(input, samples.detach(), list(k), list(out),
                                                      cl, return_indices)
    else:
        y, _, indices = ops.fractional_max_pool(input, list(k), list(out), samples, cl, False,
                                                return_indices)
    return (y, indices) if return_indices else y


def fractional_max_pool2d(input, kernel_size, output_size=None, output_ratio=None,
                          return_indices=False, _random_samples=None):
    """Like torch.nn.functional.fractional_max_pool2d."""
    return _fractional("fractional_max_pool2d", 2, input, kernel_size, output_size,
                       output_ratio, return_indices, _random_samples)


def fractional_max_pool3d(input, kernel_size, output_size=None, output_ratio=None,
                          return_indices=False, _random_samples=None):
    """Like torch.nn.functional.fractional_max_pool3d."""
    return _fractional("fractional_max_pool3d", 3, input, kernel_size, output_size,
                       output_ratio, return_indices, _random_samples)
