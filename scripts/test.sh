#!/usr/bin/env bash
# The test command: set up (scripts/setup.sh), then run the test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k compare`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
set +e
.venv/bin/python -m pytest -q -m "not huge" "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
