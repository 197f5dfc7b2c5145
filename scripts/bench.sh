#!/usr/bin/env bash
# The main job: set up (scripts/setup.sh), then benchmark poolext against torch
# (CPU suite; the GPU suite too where a GPU is present).  Results go to
# benchmarks/results/.  Extra arguments go to benchmarks/bench.py (--quick, ...).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec .venv/bin/python benchmarks/bench.py "$@"
