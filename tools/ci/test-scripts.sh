#!/usr/bin/env bash
# Runs the unit tests of the CI scripts (the gate, the summary writer, the workflow wiring).
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 -m unittest discover -s tools/ci -p 'test_*.py' "$@"
