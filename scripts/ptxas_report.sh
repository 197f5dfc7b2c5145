#!/usr/bin/env bash
# Resource usage of every CUDA kernel, without a GPU: compiles csrc/cuda/*.cu of a source tree
# (default: this checkout) for one architecture with `ptxas -v` and prints one line per kernel:
#   FILE KERNEL Used N registers, ... / FILE KERNEL stack: N bytes stack frame, N bytes spill ...
# Two trees' reports, sorted, diff line by line (a change in registers or spills shows).
#
#   bash scripts/ptxas_report.sh [SRC_ROOT] > report.txt
#
# Needs the toolkit (CUDA_HOME, default /usr/local/cuda) and the torch of .venv (scripts/setup.sh).
# PTXAS_ARCH (default 90) picks the architecture, PTXAS_STD (default c++20) the language standard.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SRC=$(cd "${1:-$ROOT}" && pwd)
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
ARCH=${PTXAS_ARCH:-90}
STD=${PTXAS_STD:-c++20}
PY=${PYTHON:-$ROOT/.venv/bin/python}
INCS=$("$PY" - <<'EOF'
import glob, os, torch
site = os.path.dirname(os.path.dirname(torch.__file__))
inc = [os.path.join(os.path.dirname(torch.__file__), "include")]
inc.append(os.path.join(inc[0], "torch", "csrc", "api", "include"))
inc += sorted(glob.glob(os.path.join(site, "nvidia", "cu*", "include")))
print(" ".join("-I" + p for p in inc))
EOF
)
OBJ=$(mktemp -d)
trap 'rm -rf "$OBJ"' EXIT
for f in "$SRC"/csrc/cuda/*.cu; do
  name=$(basename "$f")
  # shellcheck disable=SC2086
  "$CUDA_HOME/bin/nvcc" -c "$f" -o "$OBJ/$name.o" -I"$SRC/csrc" $INCS -I"$CUDA_HOME/include" \
    -D__CUDA_NO_HALF_OPERATORS__ -D__CUDA_NO_HALF_CONVERSIONS__ -D__CUDA_NO_BFLOAT16_CONVERSIONS__ \
    -D__CUDA_NO_HALF2_OPERATORS__ --expt-relaxed-constexpr --compiler-options -fPIC -O3 -lineinfo \
    -gencode=arch=compute_$ARCH,code=sm_$ARCH -std="$STD" -DTORCH_EXTENSION_NAME=_C \
    -Xptxas -v > "$OBJ/$name.log" 2>&1 || { cat "$OBJ/$name.log" >&2; echo "nvcc failed on $f" >&2; exit 1; }
  awk -v F="$name" '
    /Compiling entry function/ { match($0, /_Z[A-Za-z0-9_]+/); fn = substr($0, RSTART, RLENGTH) }
    /bytes stack frame/ { s = $0; sub(/^[ \t]+/, "", s); print F, fn, "stack:", s }
    /Used [0-9]+ registers/ { s = $0; sub(/.*ptxas info *: */, "", s); print F, fn, s }' "$OBJ/$name.log"
done
