#!/usr/bin/env bash
# The project's test command: installs what the tests need, builds, runs every test and every bundled drill.
# Usage: scripts/test.sh     (root, or sudo for apt-get; needs Debian's package and PyPI registries)
#
# Every stage runs even when an earlier one failed (a red unit test does not hide a red drill); the
# script prints a summary of the stages and exits non-zero when any failed.
set -uo pipefail
cd "$(dirname "$0")/.."

# Real components the tests drive: Prometheus, Alertmanager and supervisord from Debian.
need_apt=()
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v supervisord >/dev/null || need_apt+=(supervisor)
# Throwaway sshd hosts for the fleet tests (across: over SSH).
[ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v prometheus-alertmanager >/dev/null || need_apt+=(prometheus-alertmanager)
command -v python3 >/dev/null || need_apt+=(python3 python3-venv)
# PostgreSQL for the replica tests and the store conformance suite (a throwaway cluster below; Debian
# starts none by itself here).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v psql >/dev/null || need_apt+=(postgresql-client)
# The web console's browser tests: headless Chromium and its WebDriver.
command -v chromium >/dev/null || need_apt+=(chromium)
command -v chromedriver >/dev/null || need_apt+=(chromium-driver)
if [ "${#need_apt[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null || exit 1
fi
# The JSON Schema test validates the bundled runbooks with a real validator.
python3 -c 'import jsonschema, yaml' 2>/dev/null || python3 -m pip install --quiet jsonschema pyyaml || exit 1
# Selenium drives the browser tests.
python3 -c 'import selenium' 2>/dev/null || python3 -m pip install --quiet selenium 2>/dev/null \
  || python3 -m pip install --quiet --break-system-packages selenium || exit 1

failed=()
stage() { # stage NAME COMMAND...: runs it, remembers a failure, goes on
  local name=$1; shift
  echo "== $name"
  if "$@"; then echo "== $name: ok"; else echo "== $name: FAILED ($?)"; failed+=("$name"); fi
}

# Package fetching and resolution print a line a package: keep them out of the output unless the build
# fails, and then print the whole log.
build_log=$(mktemp /tmp/runbook-build.XXXXXX)
quiet_build() {
  if swift build --build-tests >"$build_log" 2>&1; then
    grep -E 'warning:' "$build_log" | grep -v '/\.build/' | sort -u | head -50
    tail -1 "$build_log"
  else
    cat "$build_log"; return 1
  fi
}
stage build quiet_build
if [ "${#failed[@]}" -gt 0 ]; then echo "build failed: nothing to test"; exit 1; fi

# A throwaway PostgreSQL cluster on a free port for the replica tests and the conformance suite,
# stopped however this ends.
pg_dir=$(mktemp -d /tmp/runbook-pg.XXXXXX)
trap 'scripts/pg-cluster.sh stop "$pg_dir"; rm -rf "$pg_dir" "$build_log"' EXIT
RUNBOOK_TEST_DATABASE_URL=$(scripts/pg-cluster.sh start "$pg_dir") || { echo "PostgreSQL did not start"; cat "$pg_dir/log" 2>/dev/null; exit 1; }
export RUNBOOK_TEST_DATABASE_URL RUNBOOK_TEST_PG_DIR="$pg_dir"

# In parallel: every test that spawns has a time limit, servers bind port 0 and say their port, and
# blocking helpers run off the cooperative pool. Includes the stress tests (400 parallel commands x 20,
# 2,000 overlapping server runs) and the store conformance suite on SQLite and PostgreSQL.
stage "swift test" swift test --skip-build
bin=$(swift build --show-bin-path)
stage "validate bundled runbooks" "$bin/runbook" validate runbooks
stage "bundled drills" "$bin/runbook" test --runbooks runbooks --state-dir "$(mktemp -d)"
# The web console in headless Chromium against the debug `runbook serve` (builds nothing).
stage "browser tests" python3 Tests/browser/console_test.py --binary "$bin/runbook"

echo
if [ "${#failed[@]}" -gt 0 ]; then
  echo "scripts/test.sh: ${#failed[@]} stage(s) failed: ${failed[*]}"
  exit 1
fi
echo "scripts/test.sh: every stage passed"
