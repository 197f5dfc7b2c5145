"""A small workload touching every CUDA kernel of poolext, for compute-sanitizer.

    compute-sanitizer --tool memcheck python benchmarks/sanitizer_workload.py

Both layouts, int32-indexed kernels, every op including the argmax gather (double backward),
a dilated problem with windows that miss the input, half and double types.  --device cpu runs
the same calls on the CPU kernels.
"""

import argparse

import torch

import poolext

F = poolext.functional

PROBLEMS = [  # (rank, shape, max-pool kwargs)
    (2, (2, 5, 11, 13), dict(kernel_size=3, stride=2, padding=1)),
    (2, (2, 5, 9, 2), dict(kernel_size=2, stride=(3, 1), padding=1, dilation=3)),
    (3, (2, 3, 5, 6, 7), dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)),
]


def run(device):
    torch.manual_seed(0)
    for channels_last in (False, True):
        for rank, shape, kw in PROBLEMS:
            x = torch.randn(shape, device=device, dtype=torch.float64)
            if channels_last:
                x = x.contiguous(memory_format=torch.channels_last if rank == 2
                                 else torch.channels_last_3d)
            x.requires_grad_()
            fmax, favg = getattr(F, f"max_pool{rank}d"), getattr(F, f"avg_pool{rank}d")
            kw_avg = {k: v for k, v in kw.items() if k != "dilation"}
            for y in (fmax(x, **kw, return_indices=True)[0], favg(x, **kw_avg,
                                                                 count_include_pad=False)):
                gy = torch.randn_like(y).requires_grad_()
                (gx,) = torch.autograd.grad(y, x, gy, create_graph=True)
                gx.sum().backward()  # double backward: the argmax gather / avg forward
                assert gy.grad is not None
    x1 = torch.randn(3, 4, 50, device=device, dtype=torch.float16)
    F.max_pool1d(x1, 4, 3, 1)
    F.avg_pool1d(x1, 4, 3, 1)
    F.max_pool2d(torch.randint(0, 9, (2, 3, 8, 8), device=device, dtype=torch.uint8), 2)
    if device == "cuda":
        torch.cuda.synchronize()
    print("sanitizer workload done")


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    run(p.parse_args().device)
