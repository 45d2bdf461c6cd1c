#!/usr/bin/env bash
# The project's test command: installs what the tests need, builds, runs every test and every bundled drill.
# Usage: scripts/test.sh        (as root, or with sudo available for apt-get)
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
python3 -c 'import jsonschema, yaml' 2>/dev/null || need_pip=1
for pkg in "$@"; do :; done
if [ "${#need_apt[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}"
fi
if [ "${need_pip:-0}" = 1 ]; then
  python3 -m pip install --quiet jsonschema pyyaml
fi

swift build --build-tests
# Serial: the suite drives real processes and servers; run in parallel on 2 cores it has hung (see README).
swift test --skip-build --no-parallel
.build/debug/runbook validate runbooks
.build/debug/runbook test --runbooks runbooks --state-dir "$(mktemp -d)"
