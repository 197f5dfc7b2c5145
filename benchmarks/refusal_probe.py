"""Calls a poolext op with an argument it refuses, so that a C++ exception is thrown from the
extension and must come back as a Python RuntimeError.  Prints the libraries that the process
loaded for C++ exception handling.  Used by gpu_check.sh on machines where this crashed."""
import sys

import torch

import poolext  # noqa: F401

with open("/proc/self/maps") as maps:
    libs = {line.split()[-1] for line in maps if any(
        s in line for s in ("libstdc++", "libgcc_s", "poolext"))}
print("\n".join(sorted(libs)))
try:
    torch.ops.poolext.max_pool(torch.randn(1, 1, 4, 4), [2, 2], [0, 2], [0, 0], [1, 1],
                               False, False, True, False)
except RuntimeError as e:
    print("raised:", str(e).splitlines()[0])
    sys.exit(0)
print("no error raised")
sys.exit(1)
