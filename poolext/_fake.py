"""Fake (meta) kernels for every op, so torch.compile can trace them."""

import torch

from . import _args


def _empty(like, shape, rank, channels_last, dtype=None):
    return like.new_empty(shape, dtype=dtype or like.dtype).contiguous(
        memory_format=_args.memory_format(rank, channels_last)
    )


@torch.library.register_fake("poolext::max_pool")
def _max_pool_fake(self, kernel_size, stride, padding, dilation, ceil_mode, channels_last,
                   with_argmax, with_indices):
    shape = _args.out_shape("poolext.max_pool", self.shape, kernel_size, stride, padding, dilation,
                            ceil_mode)
    r = len(kernel_size)
    am_dtype = _args.argmax_dtype(kernel_size)
    out = _empty(self, shape, r, channels_last)
    am = _empty(self, shape, r, channels_last, am_dtype) if with_argmax else self.new_empty(
        (0,), dtype=am_dtype)
    idx = _empty(self, shape, r, channels_last, torch.int64) if with_indices else self.new_empty(
        (0,), dtype=torch.int64)
    return out, am, idx


@torch.library.register_fake("poolext::max_pool_backward")
def _max_pool_backward_fake(grad_output, argmax, input_size, kernel_size, stride, padding, dilation,
                            ceil_mode, channels_last):
    return _empty(grad_output, list(input_size), len(kernel_size), channels_last)


@torch.library.register_fake("poolext::max_pool_gather")
def _max_pool_gather_fake(source, argmax, kernel_size, stride, padding, dilation, ceil_mode,
                          channels_last):
    shape = _args.out_shape("poolext.max_pool_gather", source.shape, kernel_size, stride, padding,
                            dilation, ceil_mode)
    return _empty(source, shape, len(kernel_size), channels_last)


@torch.library.register_fake("poolext::avg_pool")
def _avg_pool_fake(self, kernel_size, stride, padding, ceil_mode, count_include_pad,
                   divisor_override, channels_last):
    shape = _args.out_shape("poolext.avg_pool", self.shape, kernel_size, stride, padding, None,
                            ceil_mode)
    return _empty(self, shape, len(kernel_size), channels_last)


@torch.library.register_fake("poolext::avg_pool_backward")
def _avg_pool_backward_fake(grad_output, input_size, kernel_size, stride, padding, ceil_mode,
                            count_include_pad, divisor_override, channels_last):
    return _empty(grad_output, list(input_size), len(kernel_size), channels_last)


def _adaptive_shape(self, output_size):
    r = len(output_size)
    return list(self.shape[:self.dim() - r]) + list(output_size)


@torch.library.register_fake("poolext::adaptive_max_pool")
def _adaptive_max_pool_fake(self, output_size, channels_last, with_argmax, with_indices):
    shape = _adaptive_shape(self, output_size)
    r = len(output_size)
    am_dtype = _args.adaptive_argmax_dtype(self.shape[self.dim() - r:], output_size)
    out = _empty(self, shape, r, channels_last)
    am = _empty(self, shape, r, channels_last, am_dtype) if with_argmax else self.new_empty(
        (0,), dtype=am_dtype)
    idx = _empty(self, shape, r, channels_last, torch.int64) if with_indices else self.new_empty(
        (0,), dtype=torch.int64)
    return out, am, idx


@torch.library.register_fake("poolext::adaptive_max_pool_backward")
def _adaptive_max_pool_backward_fake(grad_output, argmax, input_size, output_size, channels_last):
    return _empty(grad_output, list(input_size), len(output_size), channels_last)


@torch.library.register_fake("poolext::adaptive_max_pool_gather")
def _adaptive_max_pool_gather_fake(source, argmax, output_size, channels_last):
    return _empty(source, _adaptive_shape(source, output_size), len(output_size), channels_last)


@torch.library.register_fake("poolext::adaptive_avg_pool")
def _adaptive_avg_pool_fake(self, output_size, channels_last):
    return _empty(self, _adaptive_shape(self, output_size), len(output_size), channels_last)


@torch.library.register_fake("poolext::adaptive_avg_pool_backward")
def _adaptive_avg_pool_backward_fake(grad_output, input_size, output_size, channels_last):
    return _empty(grad_output, list(input_size), len(output_size), channels_last)


def _lp_coef_dtype(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32


@torch.library.register_fake("poolext::lp_pool")
def _lp_pool_fake(self, norm_type, kernel_size, stride, ceil_mode, channels_last, with_coef):
    r = len(kernel_size)
    shape = _args.out_shape("poolext.lp_pool", self.shape, kernel_size, stride, (0,) * r, None,
                            ceil_mode)
    cdt = _lp_coef_dtype(self.dtype)
    coef = _empty(self, shape, r, channels_last, cdt) if with_coef else self.new_empty(
        (0,), dtype=cdt)
    return _empty(self, shape, r, channels_last), coef


@torch.library.register_fake("poolext::lp_pool_backward")
def _lp_pool_backward_fake(grad_output, self, coef, norm_type, kernel_size, stride, ceil_mode,
                           channels_last):
    return _empty(grad_output, list(self.shape), len(kernel_size), channels_last)
