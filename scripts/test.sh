#!/usr/bin/env bash
# The project's test command: installs what the tests need, builds, runs every test and every bundled drill.
# Usage: scripts/test.sh     (root, or sudo for apt-get; needs Debian's package and PyPI registries)
set -euo pipefail
cd "$(dirname "$0")/.."

# Real components the tests drive: Prometheus, Alertmanager and supervisord from Debian.
need_apt=()
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v supervisord >/dev/null || need_apt+=(supervisor)
command -v prometheus-alertmanager >/dev/null || need_apt+=(prometheus-alertmanager)
command -v python3 >/dev/null || need_apt+=(python3 python3-venv)
# PostgreSQL for the replica tests (a throwaway cluster below; Debian starts none by itself here).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v psql >/dev/null || need_apt+=(postgresql-client)
if [ "${#need_apt[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
# The JSON Schema test validates the bundled runbooks with a real validator.
python3 -c 'import jsonschema, yaml' 2>/dev/null || python3 -m pip install --quiet jsonschema pyyaml

swift build --build-tests

# A throwaway PostgreSQL cluster on a free port for the replica tests, stopped however this ends.
pg_dir=$(mktemp -d /tmp/runbook-pg.XXXXXX)
trap 'scripts/pg-cluster.sh stop "$pg_dir"; rm -rf "$pg_dir"' EXIT
RUNBOOK_TEST_DATABASE_URL=$(scripts/pg-cluster.sh start "$pg_dir")
export RUNBOOK_TEST_DATABASE_URL RUNBOOK_TEST_PG_DIR="$pg_dir"
# In parallel: every test that spawns has a time limit, servers bind port 0 and say their port, and
# blocking helpers run off the cooperative pool. Includes the stress tests (400 parallel commands x 20,
# 2,000 overlapping server runs).
swift test --skip-build
bin=$(swift build --show-bin-path)
"$bin/runbook" validate runbooks
"$bin/runbook" test --runbooks runbooks --state-dir "$(mktemp -d)"
