#!/usr/bin/env bash
# Prepares the perf job's cost container (debian:12, the project's reference system, so that
# instruction counts match bench/baseline.json written on a Debian 12 machine): the tools the
# job's steps and actions need (git for checkout, Debian's python3), then the build group and
# the CI group (ccache, valgrind) of tools/install-deps.sh. Runs as root inside the container.
set -euo pipefail
cd "$(dirname "$0")/../.."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends git ca-certificates python3 procps util-linux >/dev/null
tools/install-deps.sh build ci
# actions/checkout runs git as another user than the container's root owns the workspace.
git config --global --add safe.directory '*'
echo "perf-container-setup: $(. /etc/os-release && echo "$PRETTY_NAME"), $(valgrind --version), $(c++ --version | head -1)"
