#!/usr/bin/env bash
# Builds a CPU-only poolext against one torch release and runs a fast subset of
# the tests with it:
#
#   bash scripts/compat.sh VERSION [--static-runtime] [pytest args...]
#
# The torch release goes into its own venv, .compat/torch-VERSION (kept between
# runs); the build and test logs go to .compat/logs/.  The working tree (tracked and untracked, not ignored files) is copied
# to a scratch folder and installed from there with a plain, non-editable
# `pip install .`, so the repository's own editable build is left alone and the
# tests import the installed package.  --static-runtime links with
# LDFLAGS="-static-libstdc++ -static-libgcc", as some toolchains' compiler
# wrappers do.  The result line goes to stdout and, with COMPAT_LOG=FILE, is
# appended to FILE.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
if [ $# -lt 1 ]; then
  echo "usage: bash scripts/compat.sh VERSION [--static-runtime] [pytest args...]" >&2
  exit 2
fi
VERSION=$1
shift
STATIC=0
if [ "${1:-}" = "--static-runtime" ]; then
  STATIC=1
  shift
fi
PY=${PYTHON:-python3}
VENV=$ROOT/.compat/torch-$VERSION
SUBSET=(tests/test_build.py tests/test_errors.py tests/test_compare.py tests/test_autograd.py
        tests/test_adaptive.py tests/test_unpool.py)

if ! "$VENV/bin/python" -c "import torch, ninja, pybind11, pytest, hypothesis, numpy" 2>/dev/null; then
  echo "== torch $VERSION: creating $VENV" >&2
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  # Older torch releases do not bring setuptools; the build needs it.
  "$VENV/bin/python" -m pip install -q --upgrade pip setuptools wheel
  "$VENV/bin/python" -m pip install -q "torch==$VERSION" ninja pybind11 pytest hypothesis numpy
fi
TORCH=$("$VENV/bin/python" -c "import torch; print(torch.__version__)")

LOGS=$ROOT/.compat/logs
mkdir -p "$LOGS"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/poolext-compat.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
  [ -e "$f" ] && printf '%s\0' "$f"
done | tar --null -T - -cf - | tar -xf - -C "$WORK"

ldflags=${LDFLAGS:-}
mode="shared C++ runtime flags"
tag=$VERSION
if [ "$STATIC" = 1 ]; then
  ldflags="$ldflags -static-libstdc++ -static-libgcc"
  mode="LDFLAGS=-static-libstdc++ -static-libgcc"
  tag=$VERSION-static
fi
echo "== torch $TORCH: building poolext (CPU only, $mode)" >&2
start=$(date +%s)
set +e
(cd "$WORK" && POOLEXT_CUDA=0 MAX_JOBS=${MAX_JOBS:-$(nproc)} LDFLAGS="$ldflags" \
  "$VENV/bin/python" -m pip install -q --no-build-isolation --no-deps --force-reinstall . \
  > "$LOGS/$tag.build.log" 2>&1)
build_rc=$?
set -e
build_s=$(( $(date +%s) - start ))
if [ "$build_rc" -ne 0 ]; then
  tail -40 "$LOGS/$tag.build.log" >&2
  line="torch $TORCH | $mode | build FAILED (rc $build_rc, ${build_s}s)"
  echo "$line"
  [ -n "${COMPAT_LOG:-}" ] && echo "$line" >> "$COMPAT_LOG"
  exit 1
fi
# The tests must import the installed package, not the copied sources.
rm -rf "$WORK/poolext"
echo "== torch $TORCH: running ${SUBSET[*]}" >&2
set +e
(cd "$WORK" && "$VENV/bin/python" -m pytest -q -p no:cacheprovider -m "not huge" \
  "${SUBSET[@]}" "$@" 2>&1 | tee "$LOGS/$tag.test.log" | tail -25 >&2)
set -e
summary=$(grep -E "^[0-9]+ (passed|failed)|^=+ .*(passed|failed|error).* =+$" "$LOGS/$tag.test.log" | tail -1 \
  | sed 's/=//g; s/^ *//; s/ *$//')
if grep -qE "(passed|failed)" <<<"$summary" && ! grep -qE "failed|error" <<<"$summary"; then
  rc=0
else
  rc=1
fi
line="torch $TORCH | $mode | build ok (${build_s}s) | ${summary:-no pytest summary}"
echo "$line"
[ -n "${COMPAT_LOG:-}" ] && echo "$line" >> "$COMPAT_LOG"
exit "$rc"
