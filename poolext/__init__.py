"""poolext: max and average pooling for PyTorch with hand-written CPU and CUDA kernels.

    import poolext
    y = poolext.functional.max_pool2d(x, 3, stride=2, padding=1)
    pool = poolext.MaxPool2d(3, stride=2, padding=1)
    model = poolext.convert(model)   # torch.nn pooling layers -> poolext's
"""

import torch  # noqa: F401  (loads libtorch before the extension)

from ._load import load_extension

_C = load_extension()  # registers torch.ops.poolext.*
from . import _fake  # noqa: F401  (fake kernels for torch.compile)
from . import _op_autograd  # noqa: F401  (autograd on the ops: direct calls, torch.export)
from . import _fractional  # noqa: F401  (its fake kernels too)
from . import functional
from ._convert import convert
from .modules import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d, AdaptiveMaxPool1d,
                      AdaptiveMaxPool2d, AdaptiveMaxPool3d, AvgPool1d, AvgPool2d, AvgPool3d,
                      LPPool1d, LPPool2d, LPPool3d, MaxPool1d, MaxPool2d, MaxPool3d, MaxUnpool1d,
                      MaxUnpool2d, MaxUnpool3d)
from .modules import FractionalMaxPool2d, FractionalMaxPool3d

__version__ = "0.1.0"

__all__ = [
    "functional",
    "MaxPool1d",
    "MaxPool2d",
    "MaxPool3d",
    "AvgPool1d",
    "AvgPool2d",
    "AvgPool3d",
    "AdaptiveMaxPool1d",
    "AdaptiveMaxPool2d",
    "AdaptiveMaxPool3d",
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d",
    "MaxUnpool1d",
    "MaxUnpool2d",
    "MaxUnpool3d",
    "LPPool1d",
    "LPPool2d",
    "LPPool3d",
    "cuda_kernels_built",
    "cpu_isa",
    "convert",
    "cpu_cache_stats",
    "empty_cache",
    "FractionalMaxPool2d",
    "FractionalMaxPool3d",
]


def cpu_isa():
    """The instruction set of the CPU kernels in use: "avx2" or "base"."""
    return torch.ops.poolext.cpu_isa()


def cpu_cache_stats():
    """Counters of the cache that holds poolext's large CPU output buffers for reuse.

    Returns a dict: ``idle_bytes`` and ``idle_blocks`` (freed buffers kept for reuse),
    ``live_bytes`` (buffers held by live tensors), ``hits`` and ``misses`` (requests served
    from the cache or by fresh memory) and ``limit_bytes`` (``POOLEXT_CPU_CACHE_MB``).
    """
    keys = ("idle_bytes", "idle_blocks", "live_bytes", "hits", "misses", "limit_bytes")
    return dict(zip(keys, torch.ops.poolext.cpu_cache_stats()))


def empty_cache():
    """Return the idle CPU output buffers poolext keeps for reuse to the system.

    Like ``torch.cuda.empty_cache()`` for torch's CUDA allocator: buffers held by live tensors
    are untouched, and poolext keeps working (it caches again as tensors are freed).
    """
    torch.ops.poolext.empty_cache()


def cuda_kernels_built():
    """Whether this build registered CUDA kernels for every poolext op."""
    names = ["max_pool", "max_pool_backward", "max_pool_gather", "avg_pool", "avg_pool_backward",
             "adaptive_max_pool", "adaptive_max_pool_backward", "adaptive_max_pool_gather",
             "adaptive_avg_pool", "adaptive_avg_pool_backward", "max_unpool", "max_unpool_backward",
             "lp_pool", "lp_pool_backward"]
    names += ["fractional_max_pool", "fractional_max_pool_backward", "fractional_max_pool_gather"]
    return all(
        torch._C._dispatch_has_kernel_for_dispatch_key(f"poolext::{n}", "CUDA") for n in names
    )
