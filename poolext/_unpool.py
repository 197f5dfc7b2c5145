"""max_unpool{1,2,3}d: the functions, their autograd.Functions and fake kernels.

Forward semantics are torch.nn.functional.max_unpool{1,2,3}d's: zeros of
shape (N, C, *output_size) with out[n, c].flat[indices[n, c, i]] =
input[n, c, i].  The backward is the gather at the same indices, and the
gather's adjoint is the unpooling again, so double backward is exact.

torch refuses bad arguments in two places, and so does this module, with the
same exception types: its Python helper (_unpool_output_size: ValueError,
TypeError, IndexError) and its native op (RuntimeError; NotImplementedError
for an unsupported dtype).  Where torch differs by device, poolext follows the
device at hand: on CPU, float types only and a channels_last 2d input gives a
channels_last output; on CUDA, integer types too and always a contiguous
output.
"""

import collections.abc
import operator

import torch

from . import _args
from ._autocast import cast_input
from ._transforms import linear_pair, pick, use_function

__all__ = ["max_unpool1d", "max_unpool2d", "max_unpool3d"]

_ops = torch.ops.poolext
_FLOAT_TYPES = (torch.float32, torch.float64, torch.float16, torch.bfloat16)
_CUDA_TYPES = _FLOAT_TYPES + (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)
_NAMES = {1: "one", 2: "two", 3: "three"}


def _ntuple(x, n):
    # torch.nn.modules.utils._single/_pair/_triple: a sequence is kept as it
    # is (whatever its length), anything else repeated n times.
    if isinstance(x, collections.abc.Iterable):
        return tuple(x)
    return (x,) * n


def _is_int(v):
    return isinstance(v, torch.SymInt) or (not isinstance(v, bool) and hasattr(v, "__index__"))


def _output_size(op, input, kernel_size, stride, padding, output_size):
    """The spatial output size, as torch.nn.functional._unpool_output_size
    computes and checks it."""
    input_size = input.size()
    default = []
    for d in range(len(kernel_size)):
        default.append((input_size[-len(kernel_size) + d] - 1) * stride[d] + kernel_size[d]
                       - 2 * padding[d])
    if output_size is None:
        ret = default
    else:
        try:
            n = len(output_size)
        except TypeError:
            raise TypeError(
                f"{op}: output_size must be a sequence of ints (the spatial sizes, optionally "
                f"after N and C), got output_size={output_size!r}"
            ) from None
        if n == len(kernel_size) + 2:
            output_size = output_size[2:]
        if len(output_size) != len(kernel_size):
            raise ValueError(
                f"{op}: output_size should be a sequence containing {len(kernel_size)} or "
                f"{len(kernel_size) + 2} elements, but it has a length of {n}"
            )
        for d in range(len(kernel_size)):
            lo = default[d] - stride[d]
            hi = default[d] + stride[d]
            if not (lo < output_size[d] < hi):
                raise ValueError(
                    f"{op}: invalid output_size={tuple(output_size)!r} (dim {d} must be between "
                    f"{lo} and {hi}, both excluded)"
                )
        ret = list(output_size)
    for d in range(len(kernel_size)):
        if ret[d] < 0:
            raise ValueError(
                f"{op}: output_size must contain non-negative spatial dimensions, but got "
                f"output_size[{d}]={ret[d]}"
            )
    for v in ret:
        if not _is_int(v):
            raise TypeError(
                f"{op}: output_size must be a tuple of ints, got output_size={tuple(ret)!r} "
                f"(an element of type {type(v).__name__})"
            )
    return [v if isinstance(v, torch.SymInt) else operator.index(v) for v in ret]


def _check_native(op, rank, input, indices, out_size, stride, padding):
    """The checks of torch's native max_unpool2d/3d, in torch's order (1d goes
    through 2d there; the rules come out the same)."""
    if not isinstance(indices, torch.Tensor):
        raise TypeError(f"{op}: indices must be a Tensor, got {type(indices).__name__}")
    if indices.dtype != torch.int64:
        raise RuntimeError(
            f"{op}: indices must be an int64 tensor, got indices of dtype {indices.dtype}"
        )
    n = len(out_size)

    def check_len(name, value):
        if len(value) != rank:
            raise RuntimeError(
                f"{op}: there should be exactly {_NAMES.get(rank, rank)} elements in {name}, "
                f"got {name}={tuple(value)!r}"
            )

    if rank != 3:
        check_len("output_size", out_size)
    if input.dim() not in (rank + 1, rank + 2):
        raise RuntimeError(
            f"{op}: expected a {rank + 1}D (unbatched) or {rank + 2}D (batched) input, "
            f"got input of shape {tuple(input.shape)}"
        )
    if rank == 3:
        check_len("output_size", out_size)
        check_len("stride", stride)
        check_len("padding", padding)
    if indices.shape != input.shape:
        raise RuntimeError(
            f"{op}: indices of shape {tuple(indices.shape)} do not match the input of shape "
            f"{tuple(input.shape)}"
        )
    for i in range(1, input.dim()):
        if input.shape[i] == 0:
            raise RuntimeError(
                f"{op}: input dims other than the batch dim must be non-zero, got input of "
                f"shape {tuple(input.shape)}"
            )
    if rank == 3 and any(s <= 0 for s in stride):
        raise RuntimeError(f"{op}: stride must be positive, got stride={tuple(stride)!r}")
    if indices.device != input.device:
        raise RuntimeError(
            f"{op}: indices are on {indices.device} but the input is on {input.device}"
        )


def _check_dtype(op, input, out_size):
    cuda = input.device.type == "cuda"
    # torch runs (and so dispatches on the dtype) only when there is work:
    # on CPU when the output is not empty, on CUDA when the input is not.
    work = input.numel() if cuda else input.shape[:input.dim() - len(out_size)].numel() * \
        _prod(out_size)
    ok = _CUDA_TYPES if cuda else _FLOAT_TYPES
    if work != 0 and input.dtype not in ok:
        raise NotImplementedError(
            f"{op}: input dtype {input.dtype} is not supported on {input.device.type} "
            f"({', '.join(str(t).replace('torch.', '') for t in ok)} are)"
        )


def _prod(sizes):
    p = 1
    for s in sizes:
        p = p * s
    return p


def _max_unpool(op, rank, input, indices, kernel_size, stride, padding, output_size):
    if not isinstance(input, torch.Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    # autocast, as torch's aten op (1d unpools through aten::max_unpool2d)
    input = cast_input("max_unpool3d" if rank == 3 else "max_unpool2d", input)
    kernel_size = _ntuple(kernel_size, rank)
    stride = _ntuple(stride, rank) if stride is not None else kernel_size
    padding = _ntuple(padding, rank)
    out_size = _output_size(op, input, kernel_size, stride, padding, output_size)
    _check_native(op, rank, input, indices, out_size, stride, padding)
    _check_dtype(op, input, out_size)
    # Memory format: torch's CPU max_unpool2d keeps a channels_last input's
    # layout; its max_unpool3d and every CUDA kernel give contiguous outputs.
    # torch unpools 1d as 2d over input.unsqueeze(-1), which in rare stride
    # patterns reads as channels_last: poolext does the same there.
    lifted = False
    cl = False
    if input.device.type == "cpu" and rank in (1, 2) and input.dim() == rank + 2:
        x = input.unsqueeze(-1) if rank == 1 else input
        cl = _args.is_channels_last(x, 2)
        if cl and rank == 1:
            input, indices, out_size, lifted = x, indices.unsqueeze(-1), out_size + [1], True
    if use_function(input):
        out = pick(MaxUnpool).apply(input, indices, out_size, cl)
    else:
        out = _ops.max_unpool(input, indices, out_size, cl)
    return out.squeeze(-1) if lifted else out


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Like torch.nn.functional.max_unpool1d."""
    return _max_unpool("max_unpool1d", 1, input, indices, kernel_size, stride, padding,
                       output_size)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Like torch.nn.functional.max_unpool2d."""
    return _max_unpool("max_unpool2d", 2, input, indices, kernel_size, stride, padding,
                       output_size)


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Like torch.nn.functional.max_unpool3d."""
    return _max_unpool("max_unpool3d", 3, input, indices, kernel_size, stride, padding,
                       output_size)


# The scatter at the indices (saving only the indices, which the caller holds anyway) and
# the gather at them: (x, indices, output_size, channels_last).
MaxUnpool, MaxUnpoolBackward = linear_pair(
    ("MaxUnpool", "MaxUnpoolBackward"), (_ops.max_unpool, _ops.max_unpool_backward),
    saved=(1,), tensors=(0, 1), cl=3, rank=lambda args: len(args[2]))


def _out_shape(sizes, output_size):
    return list(sizes[:len(sizes) - len(output_size)]) + list(output_size)


@torch.library.register_fake("poolext::max_unpool")
def _max_unpool_fake(self, indices, output_size, channels_last):
    shape = _out_shape(self.shape, output_size)
    fmt = _args.memory_format(len(output_size), channels_last)
    return self.new_empty(shape).contiguous(memory_format=fmt)


@torch.library.register_fake("poolext::max_unpool_backward")
def _max_unpool_backward_fake(grad_output, indices, output_size, channels_last):
    fmt = _args.memory_format(len(output_size), channels_last)
    return grad_output.new_empty(indices.shape).contiguous(memory_format=fmt)
