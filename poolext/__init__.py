"""poolext: max and average pooling for PyTorch with hand-written CPU and CUDA kernels.

    import poolext
    y = poolext.functional.max_pool2d(x, 3, stride=2, padding=1)
    pool = poolext.MaxPool2d(3, stride=2, padding=1)
    model = poolext.convert(model)   # torch.nn pooling layers -> poolext's
"""

import torch  # noqa: F401  (loads libtorch before the extension)

from . import _C  # noqa: F401  (registers torch.ops.poolext.*)
from . import _fake  # noqa: F401  (fake kernels for torch.compile)
from . import functional
from ._convert import convert
from .modules import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d, AdaptiveMaxPool1d,
                      AdaptiveMaxPool2d, AdaptiveMaxPool3d, AvgPool1d, AvgPool2d, AvgPool3d,
                      MaxPool1d, MaxPool2d, MaxPool3d, MaxUnpool1d, MaxUnpool2d, MaxUnpool3d)

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
    "cuda_kernels_built",
    "cpu_isa",
    "convert",
]


def cpu_isa():
    """The instruction set of the CPU kernels in use: "avx2" or "base"."""
    return torch.ops.poolext.cpu_isa()


def cuda_kernels_built():
    """Whether this build registered CUDA kernels for every poolext op."""
    names = ["max_pool", "max_pool_backward", "max_pool_gather", "avg_pool", "avg_pool_backward",
             "adaptive_max_pool", "adaptive_max_pool_backward", "adaptive_max_pool_gather",
             "adaptive_avg_pool", "adaptive_avg_pool_backward", "max_unpool", "max_unpool_backward"]
    return all(
        torch._C._dispatch_has_kernel_for_dispatch_key(f"poolext::{n}", "CUDA") for n in names
    )
