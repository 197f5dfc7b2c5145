"""The CPU kernels exist in two copies (baseline and AVX2); both are checked."""

import os
import subprocess
import sys

import poolext


def test_cpu_isa_is_reported():
    assert poolext.cpu_isa() in ("avx2", "base")


def test_baseline_kernels_agree_with_torch():
    """Rerun part of the comparison suite with the baseline copy forced."""
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, POOLEXT_CPU_ISA="base", POOLEXT_TEST_SEEDS="3")
    check = subprocess.run(
        [sys.executable, "-c", "import poolext; print(poolext.cpu_isa())"],
        env=env, capture_output=True, text=True, check=True)
    assert check.stdout.strip() == "base"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
         os.path.join(here, "test_compare.py")],
        env=env, capture_output=True, text=True, cwd=os.path.dirname(here))
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert " passed" in run.stdout
