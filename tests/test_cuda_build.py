"""A CUDA build registers a CUDA kernel for every op, with or without a GPU.

CI sets POOLEXT_EXPECT_CUDA=1 where it builds with CUDA (POOLEXT_CUDA=1), so a
build that silently fell back to CPU-only kernels fails here.
"""

import os

import pytest
import torch

import poolext

OPS = ["max_pool", "max_pool_backward", "max_pool_gather", "avg_pool", "avg_pool_backward",
       "adaptive_max_pool", "adaptive_max_pool_backward", "adaptive_max_pool_gather",
       "adaptive_avg_pool", "adaptive_avg_pool_backward", "max_unpool", "max_unpool_backward",
       "lp_pool", "lp_pool_backward", "fractional_max_pool", "fractional_max_pool_backward",
       "fractional_max_pool_gather"]

expect_cuda = pytest.mark.skipif(os.environ.get("POOLEXT_EXPECT_CUDA") != "1",
                                 reason="set POOLEXT_EXPECT_CUDA=1 to require a CUDA build")


@expect_cuda
@pytest.mark.parametrize("op", OPS)
def test_cuda_kernel_registered(op):
    assert torch.version.cuda is not None, "torch is not a CUDA build"
    assert torch._C._dispatch_has_kernel_for_dispatch_key(f"poolext::{op}", "CUDA")


@expect_cuda
def test_cuda_kernels_built():
    assert poolext.cuda_kernels_built()


@pytest.mark.parametrize("op", OPS)
def test_cpu_kernel_registered(op):
    assert torch._C._dispatch_has_kernel_for_dispatch_key(f"poolext::{op}", "CPU")
