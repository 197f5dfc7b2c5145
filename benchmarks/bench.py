"""poolext benchmarks: the CPU suite, then the GPU suite when CUDA and poolext's CUDA kernels are there.

    python benchmarks/bench.py [--quick] [--filter SUBSTR] [--out DIR]
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

import poolext  # noqa: E402
import bench_cpu  # noqa: E402
from _common import log  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="smaller shapes, fewer repeats")
    p.add_argument("--filter", help="run only cases whose label contains SUBSTR")
    p.add_argument("--out", help="results folder (default benchmarks/results)")
    args = p.parse_args(argv)
    passed = ["--quick"] if args.quick else []
    for name in ("filter", "out"):
        if getattr(args, name):
            passed += [f"--{name}", getattr(args, name)]

    log("== CPU suite ==")
    rc = bench_cpu.main(passed)

    if not torch.cuda.is_available():
        log("GPU suite skipped: torch.cuda.is_available() is False")
        return rc
    if not poolext.cuda_kernels_built():
        log("GPU suite skipped: this poolext build has no CUDA kernels")
        return rc
    try:
        import bench_gpu
    except ModuleNotFoundError as e:
        if e.name != "bench_gpu":
            raise
        log(f"GPU suite MISSING: {Path(__file__).with_name('bench_gpu.py')} does not exist; "
            "a GPU is present but no GPU results were produced")
        return 1
    log("== GPU suite ==")
    return bench_gpu.main(passed) or rc


if __name__ == "__main__":
    sys.exit(main())
