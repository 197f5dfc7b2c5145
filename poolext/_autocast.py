"""torch.autocast for poolext: cast the input exactly where torch's autocast would.

Most pooling ops are in none of autocast's cast lists, so torch pools in the
input's dtype, and poolext's ops, which have no Autocast kernels, do the same
through autocast's fallthrough.  But on some devices torch puts a few pooling
ops on its float32 list: on the CPU (torch 2.14, at least) ``max_pool3d`` (not
``max_pool3d_with_indices``, which ``return_indices=True`` calls),
``avg_pool3d``, ``adaptive_max_pool3d``, ``adaptive_avg_pool3d``,
``max_unpool2d`` (also behind ``max_unpool1d``) and ``max_unpool3d``.  Under an
enabled autocast those cast float16/bfloat16 inputs to float32 and return
float32.

Rather than keep a copy of those lists, poolext asks the dispatcher whether
torch registered an autocast kernel for the aten op that torch.nn.functional
would call, and if so casts the same way (torch's pooling kernels on those
lists use its fp32 policy: float16/bfloat16 tensors on the autocast device go
to float32; float32 and float64 are left alone).  The cast is a differentiable
``Tensor.to``, so the gradient returns to the input in the input's dtype, as
with torch.

Each poolext.functional function calls ``cast_input(<aten op>, input)`` first,
naming the op its torch.nn.functional namesake calls: ``max_pool2d`` or
``max_pool2d_with_indices``, ``avg_pool3d``, ``adaptive_avg_pool3d``,
``max_unpool2d`` for ``max_unpool1d``, and so on.
"""

import torch

__all__ = ["cast_input", "FLOAT32_OPS"]

_KEYS = {"cpu": "AutocastCPU", "cuda": "AutocastCUDA", "xpu": "AutocastXPU", "mps": "AutocastMPS"}
_LOW = (torch.float16, torch.bfloat16)


def _aten_pooling_ops():
    names = []
    for r in (1, 2, 3):
        names += [f"max_pool{r}d", f"max_pool{r}d_with_indices", f"avg_pool{r}d",
                  f"adaptive_max_pool{r}d", f"adaptive_avg_pool{r}d", f"max_unpool{r}d"]
    names += ["fractional_max_pool2d", "fractional_max_pool3d"]
    return names + ["pow.Tensor_Scalar"]  # lp_pool's first step


def _float32_ops():
    out = set()
    for name in _aten_pooling_ops():
        for device, key in _KEYS.items():
            try:
                if torch._C._dispatch_has_kernel_for_dispatch_key(f"aten::{name}", key):
                    out.add((name, device))
            except RuntimeError:  # no such op or dispatch key in this torch
                pass
    return frozenset(out)


# {(aten op name, device type)} for which torch's autocast casts to float32; read once.
FLOAT32_OPS = _float32_ops()


def cast_input(aten_op, input):
    """``input`` as torch's autocast hands it to ``aten::<aten_op>``: float32 when
    autocast is enabled on its device, that op is on the device's float32 list
    and the input is float16/bfloat16; otherwise ``input`` itself."""
    if input.dtype in _LOW:
        device = input.device.type
        if torch.is_autocast_enabled(device) and (aten_op, device) in FLOAT32_OPS:
            return input.to(torch.float32)
    return input
