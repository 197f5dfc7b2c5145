#!/usr/bin/env bash
# The main job: set up (scripts/setup.sh), run the digits demo (a small CNN
# trained with torch's pooling and with poolext's: same losses; fails if not),
# then benchmark poolext against torch (CPU suite; the GPU suite too where a GPU
# is present).  Results go to benchmarks/results/.  Extra arguments go to
# benchmarks/bench.py (--quick, ...).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
echo "== demo: benchmarks/demo_digits.py" >&2
.venv/bin/python benchmarks/demo_digits.py
echo "== benchmark: benchmarks/bench.py" >&2
exec .venv/bin/python benchmarks/bench.py "$@"
