#!/usr/bin/env bash
# Runs the end-to-end suite (CTest label e2e) against a real MongoDB: the tests then use the
# server named by MONGODB_URI instead of starting a stand-in (and seed it themselves; the
# stand-in's fault-injection tests skip). Run it after a build of the same preset.
# Usage: MONGODB_URI=mongodb://127.0.0.1:27017 tools/ci/e2e-mongo.sh [PRESET]   (default release)
set -euo pipefail
cd "$(dirname "$0")/../.."
preset=${1:-release}
if [[ -z ${MONGODB_URI:-} ]]; then
  echo "e2e-mongo: set MONGODB_URI to the MongoDB to test against" >&2
  exit 2
fi
if [[ ! -f build/$preset/CTestTestfile.cmake ]]; then
  echo "e2e-mongo: build/$preset is not built; run tools/test.sh $preset first" >&2
  exit 2
fi
echo "e2e-mongo: e2e tests of build/$preset against $MONGODB_URI"
exec ctest --preset "$preset" -L e2e --no-tests=error
