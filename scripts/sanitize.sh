#!/usr/bin/env bash
# The CPU kernels under AddressSanitizer and UndefinedBehaviorSanitizer: builds poolext with
# POOLEXT_SANITIZE=1 (CPU kernels only) in a copy of the checkout, then runs the CPU tests
# against that build with the ASan runtime preloaded into Python.  Any report fails the run.
#
#     bash scripts/sanitize.sh [pytest args]     (default: the CPU suite without the huge,
#                                                 fuzz and CUDA-emulation tests)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"
# The environment of scripts/setup.sh (its build of poolext is not needed here).
if ! .venv/bin/python -c "import torch, ninja, pytest, hypothesis, numpy" 2>/dev/null; then
  bash scripts/setup.sh >/dev/null
fi
WORK="${POOLEXT_SANITIZE_DIR:-/tmp/poolext-sanitize}"
rm -rf "$WORK" && mkdir -p "$WORK"
git ls-files | tar -cf - -T - | tar -xf - -C "$WORK"
cd "$WORK"
POOLEXT_CUDA=0 POOLEXT_SANITIZE=1 "$ROOT/.venv/bin/python" setup.py build_ext --inplace >build.log 2>&1 \
  || { tail -n 30 build.log; exit 1; }
ASAN_LIB="$(${CXX:-g++} -print-file-name=libasan.so)"
UBSAN_LIB="$(${CXX:-g++} -print-file-name=libubsan.so)"
# Python and torch allocate for the life of the process: leak reports would be theirs.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
args=("$@")
(( ${#args[@]} )) || args=(tests -m "not huge" --ignore=tests/test_fuzz.py
                           --ignore=tests/test_cuda_emulated.py --ignore=tests/test_isa.py
                           --ignore=tests/test_streaming.py)
# Every inference max pooling streams its stores here (no threshold), so the
# sanitizers see that path too; test_streaming.py, which reruns the comparisons
# to reach it, is left out.
export POOLEXT_STREAM_MIN_BYTES="${POOLEXT_STREAM_MIN_BYTES:-0}"
LD_PRELOAD="$ASAN_LIB $UBSAN_LIB" PYTHONPATH="$WORK" \
  "$ROOT/.venv/bin/python" -m pytest -q -p no:cacheprovider "${args[@]}"
