#!/usr/bin/env bash
# The one check to run on a machine with a GPU (no network needed): build poolext with this
# machine's torch, run the CUDA tests (and the CPU suite if time allows), compute-sanitizer
# memcheck and racecheck on a small subset, and the GPU benchmark.
#
#     bash benchmarks/gpu_check.sh [OUT_DIR]      (default: $OUT, else ./gpu_check_out)
#
# Every step has a time limit and the run goes on when one fails; the whole run stays under
# about 8 minutes.  OUT_DIR gets few files: summary.txt, build.log, tests.log, tests.xml,
# sanitizer.log and the benchmark's gpu-*.json / gpu-*.md.  The summary is printed last.

set -u
cd "$(dirname "$0")/.."
OUT_DIR="${1:-${OUT:-$PWD/gpu_check_out}}"
mkdir -p "$OUT_DIR"
OUT_DIR="$(cd "$OUT_DIR" && pwd)"
PY="${PYTHON:-python}"
# Scripts run from benchmarks/ import the in-place build of the checkout.
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
START=$(date +%s)
SUMMARY="$OUT_DIR/summary.txt"
: > "$SUMMARY"

note() { echo "$*" | tee -a "$SUMMARY"; }
elapsed() { echo $(( $(date +%s) - START )); }
# Seconds left before the 8-minute mark (less a margin; GPU_CHECK_BUDGET overrides), capped at $1.
BUDGET="${GPU_CHECK_BUDGET:-465}"
left() {
  local l=$(( BUDGET - $(elapsed) ))
  (( l > $1 )) && l=$1
  echo $l
}
step() {  # step NAME SECONDS LOG CMD...: run with a time limit, record the outcome
  local name=$1 limit=$2 log=$3; shift 3
  if (( limit < 20 )); then
    note "$(printf '%-22s %s' "$name" "skipped: out of time")"
    return 125
  fi
  local t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >> "$log" 2>&1
  local rc=$?
  local how="ok"
  (( rc == 124 || rc == 137 )) && how="TIMED OUT after ${limit}s" || { (( rc != 0 )) && how="FAILED (rc=$rc)"; }
  note "$(printf '%-22s %s (%ss)' "$name" "$how" $(( $(date +%s) - t0 )))"
  return $rc
}

# torch builds with ninja (parallel) when it finds it, else serially (slow): a pip-installed
# ninja may sit next to the interpreter without being on PATH.
if ! command -v ninja >/dev/null; then
  for d in "$(dirname "$(command -v "$PY")")" \
           "$("$PY" -c "import ninja; print(ninja.BIN_DIR)" 2>/dev/null)"; do
    if [ -n "$d" ] && [ -x "$d/ninja" ]; then export PATH="$d:$PATH"; break; fi
  done
fi

SANITIZER_BIN=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer \
  /usr/local/cuda*/compute-sanitizer/compute-sanitizer 2>/dev/null | head -n 1)

echo "== machine" | tee "$OUT_DIR/build.log"
{
  nvidia-smi || echo "nvidia-smi not available"
  "$PY" - <<'EOF'
import platform, torch
print("python", platform.python_version())
print("torch", torch.__version__, "cuda", torch.version.cuda,
      "cudnn", torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None)
print("gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
EOF
  command -v ninja >/dev/null && echo "ninja $(ninja --version)" || echo "ninja: not found (slower serial build)"
  echo "compute-sanitizer: ${SANITIZER_BIN:-not found}"
} 2>&1 | tee -a "$OUT_DIR/build.log"

# ---- build in place with this machine's torch (no build isolation, no network)
ARCH=$("$PY" -c "import torch; p=torch.cuda.get_device_capability(0); print(f'{p[0]}.{p[1]}')" 2>/dev/null || echo 9.0)
rm -f poolext/_C*.so
step "build (sm $ARCH)" 330 "$OUT_DIR/build.log" env POOLEXT_CUDA=1 TORCH_CUDA_ARCH_LIST="$ARCH" \
  MAX_JOBS="$(nproc)" "$PY" setup.py build_ext --inplace
BUILD_OK=$?
if (( BUILD_OK == 0 )); then
  step "import" 60 "$OUT_DIR/build.log" "$PY" -c \
    "import poolext, sys; ok = poolext.cuda_kernels_built(); print('cuda_kernels_built', ok); sys.exit(0 if ok else 1)"
  BUILD_OK=$?
fi

# Registers, stack and local memory (spills) of every kernel.
if (( BUILD_OK == 0 )) && command -v cuobjdump >/dev/null; then
  echo "== cuobjdump --dump-resource-usage" >> "$OUT_DIR/build.log"
  cuobjdump --dump-resource-usage poolext/_C*.so 2>&1 | grep -E "Function|REG" >> "$OUT_DIR/build.log"
fi

TESTS="not run"
SANITIZER="not run"
if (( BUILD_OK == 0 )); then
  # ---- CUDA tests
  step "tests (cuda)" "$(left 150)" "$OUT_DIR/tests.log" \
    env POOLEXT_EXPECT_CUDA=1 "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda.py tests/test_cuda_build.py \
    tests/test_unpool.py tests/test_autocast.py tests/test_lp_pool.py::test_cuda_matches_cpu \
    tests/test_fractional.py::test_cuda_matches_cpu \
    --junitxml="$OUT_DIR/tests.xml"
  TESTS=$(grep -E "^(FAILED|ERROR)|[0-9]+ (passed|failed)" "$OUT_DIR/tests.log" | tail -1)
  TESTS="${TESTS:-no pytest summary line (timed out?), see tests.log}"

  # ---- compute-sanitizer on a small subset (each tool bounded)
  if [ -n "$SANITIZER_BIN" ]; then
    SAN_ERRORS=0
    # No caching allocator under memcheck: an access past a tensor is then past its allocation.
    for tool in memcheck racecheck; do
      echo "== compute-sanitizer --tool $tool" >> "$OUT_DIR/sanitizer.log"
      step "sanitizer $tool" "$(left 60)" "$OUT_DIR/sanitizer.log" \
        env PYTORCH_NO_CUDA_MEMORY_CACHING=1 \
        "$SANITIZER_BIN" --tool "$tool" --error-exitcode 99 "$PY" benchmarks/sanitizer_workload.py
      (( $? == 99 )) && SAN_ERRORS=$(( SAN_ERRORS + 1 ))
    done
    SANITIZER=$(grep -E "ERROR SUMMARY|RACECHECK SUMMARY" "$OUT_DIR/sanitizer.log" | tr '\n' ' ')
    SANITIZER="${SANITIZER:-no summary line} (tools reporting errors: $SAN_ERRORS)"
  else
    note "sanitizer              skipped: compute-sanitizer not found"
  fi

  # ---- GPU benchmark: the full suite (15 samples a figure; the quick one, 5, took 16 s on an
  # H200), the quick one when less time is left
  if (( $(left 150) >= 100 )); then
    step "benchmark" "$(left 150)" "$OUT_DIR/bench.log" \
      "$PY" benchmarks/bench_gpu.py --out "$OUT_DIR"
  else
    step "benchmark (quick)" "$(left 90)" "$OUT_DIR/bench.log" \
      "$PY" benchmarks/bench_gpu.py --quick --out "$OUT_DIR"
  fi
  tail -n 60 "$OUT_DIR/bench.log" >> "$OUT_DIR/tests.log"  # keeps the number of files low
  rm -f "$OUT_DIR/bench.log"

  # ---- a refused argument must raise, not crash (it crashed here once: torch 2.11, /opt/gcc)
  {
    for cxx in "${CXX:-}" c++ g++; do [ -n "$cxx" ] && command -v "$cxx" >/dev/null && "$cxx" --version | head -1; done
    ldd poolext/_C*.so 2>/dev/null | grep -E "stdc|gcc_s"
  } >> "$OUT_DIR/build.log" 2>&1
  step "refusal probe" 30 "$OUT_DIR/build.log" "$PY" benchmarks/refusal_probe.py
  if (( $? != 0 )) && command -v cuda-gdb >/dev/null; then
    timeout 40 cuda-gdb -batch -ex run -ex bt -ex "info sharedlibrary" --args "$PY" benchmarks/refusal_probe.py \
      >> "$OUT_DIR/build.log" 2>&1
  fi

  # ---- the CPU suite, if time is left
  # (GPU_CHECK_CPU_TESTS names a subset, e.g. "tests/test_errors.py", when time is short.)
  if (( $(elapsed) < BUDGET - 65 )); then
    step "tests (cpu)" "$(left 120)" "$OUT_DIR/tests.log" "$PY" -X faulthandler -m pytest -q -p no:cacheprovider \
      ${GPU_CHECK_CPU_TESTS:-tests} -m "not huge" --ignore=tests/test_cuda.py --ignore=tests/test_cuda_emulated.py
    [ "${GPU_CHECK_EMULATED:-1}" = 1 ] && step "tests (emulated)" "$(left 60)" "$OUT_DIR/tests.log" "$PY" -X faulthandler -m pytest -q -p no:cacheprovider \
      tests/test_cuda_emulated.py
  else
    note "tests (cpu)            skipped: out of time"
  fi
fi

note ""
note "== summary ($(elapsed)s)"
note "build:     $( (( BUILD_OK == 0 )) && echo ok || echo FAILED, see build.log)"
note "tests:     $TESTS"
note "sanitizer: $SANITIZER"
note "results:   $OUT_DIR ($(cd "$OUT_DIR" && ls | tr '\n' ' '))"
