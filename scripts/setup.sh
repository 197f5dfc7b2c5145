#!/usr/bin/env bash
# Sets up everything on a fresh machine: a virtual environment in .venv with
# torch, the build/test tools and the demo's scikit-learn and matplotlib, then
# builds poolext into it (editable).
# CUDA kernels are built when a CUDA toolkit and a CUDA torch are present
# (POOLEXT_CUDA=1 forces, POOLEXT_CUDA=0 skips).  Sourced by test.sh/bench.sh.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv" >&2
  "$PY" -m venv .venv
fi
if ! .venv/bin/python -c "import torch, ninja, pybind11, pytest, hypothesis, numpy, sklearn, matplotlib, expecttest
import setuptools; assert int(setuptools.__version__.split('.')[0]) >= 77" 2>/dev/null; then
  echo "== installing torch and tools" >&2
  .venv/bin/python -m pip install -q --upgrade pip
  # setuptools 77 reads pyproject's SPDX license; the build runs without isolation.
  .venv/bin/python -m pip install -q "setuptools>=77" wheel "torch>=2.4" ninja pybind11 pytest \
    hypothesis numpy expecttest \
    scikit-learn matplotlib
fi
echo "== building poolext" >&2
MAX_JOBS=${MAX_JOBS:-$(nproc)} .venv/bin/python -m pip install -q --no-build-isolation --no-deps -e .
.venv/bin/python -c "import poolext, torch; print('poolext', poolext.__version__, 'torch', torch.__version__, 'cuda kernels:', poolext.cuda_kernels_built())"
