#!/usr/bin/env bash
# Runs a copy of one of PyTorch's test files on CPU twice, with torch as it is and
# with poolext in torch.nn's place, and prints the tests that pass on torch and
# fail with poolext (scripts/torch_tests.py):
#
#   bash scripts/torch_tests.sh PATH/TO/test_pooling.py [--json OUT] [-- pytest args]
#
# Sets up .venv first, as test.sh does (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
file=${1:?usage: bash scripts/torch_tests.sh FILE [--json OUT] [-- pytest args]}
shift
file=$(cd "$(dirname "$file")" && pwd)/$(basename "$file")
source scripts/setup.sh
exec .venv/bin/python scripts/torch_tests.py "$file" "$@"
