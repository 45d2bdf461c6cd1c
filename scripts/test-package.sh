#!/usr/bin/env bash
# The shipping test (CI runs it after scripts/test.sh): builds the .deb, installs it with dpkg, and
# checks that the binary runs without the Swift toolchain's libraries and that the unit is valid.
# Changes the machine (installs /usr/bin/runbook and a `runbook` user): for CI and throwaway machines.
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$(scripts/package-deb.sh | tail -1)
echo "package: $deb ($(du -h "$deb" | cut -f1))"
dpkg -i "$deb" >/dev/null
runbook --version
# No library from the toolchain: run it with the toolchain's folders out of the loader's reach too.
if ldd /usr/bin/runbook | grep -Ei 'swift|libFoundation|lib_Foundation|libdispatch|BlocksRuntime'; then
  echo "error: /usr/bin/runbook loads libraries from the Swift toolchain" >&2; exit 1
fi
ldd /usr/bin/runbook
env -i PATH=/usr/bin:/bin /usr/bin/runbook validate runbooks >/dev/null
man -w runbook >/dev/null 2>&1 || test -f /usr/share/man/man1/runbook.1.gz
id runbook >/dev/null
test "$(stat -c %a /etc/runbook/tokens)" = 600
if command -v systemd-analyze >/dev/null; then
  # verify checks the unit's syntax and that ExecStart's binary exists; it may warn about the
  # machine's other units when no systemd runs here, so judge only lines naming ours.
  out=$(systemd-analyze verify /lib/systemd/system/runbook.service 2>&1 || true)
  echo "$out" | grep -i 'runbook.service' && { echo "error: systemd-analyze verify found problems above" >&2; exit 1; }
  echo "systemd-analyze verify: runbook.service ok"
else
  echo "systemd-analyze not installed: unit not verified"
fi
echo "package test: ok"
