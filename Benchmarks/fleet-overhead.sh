#!/usr/bin/env bash
# The engine's own overhead per host beyond ssh: `runbook run` of one `across:` step (one command on
# N hosts, concurrency 50) with a stand-in `ssh` first on PATH that exits at once, against
# `xargs -P 50` running the same stand-in for the same hosts. Real ssh costs both sides the same
# key exchanges, and their variance on a busy 2-core machine is larger than the figure itself
# (Benchmarks/fleet.sh compares with real ssh and Ansible). No host is contacted.
# Prints each round, the medians, and (runbook - xargs) / N for the step alone and for the whole
# process (start-up, loading, the run record).
# Usage: Benchmarks/fleet-overhead.sh [HOSTS] [ROUNDS]   (RUNBOOK_BIN=... to use a built binary)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100}
R=${2:-7}
C=50
if [ -z "${RUNBOOK_BIN:-}" ]; then swift build -c release --product runbook >/dev/null; fi
BIN=${RUNBOOK_BIN:-$(swift build -c release --show-bin-path)/runbook}
D=$(mktemp -d /tmp/rbfo.XXXX)
trap 'rm -rf "$D"' EXIT
mkdir -p "$D/rb" "$D/st" "$D/fake"
printf '#!/bin/sh\nexit 0\n' > "$D/fake/ssh"; chmod +x "$D/fake/ssh"
seq 1 "$N" | sed 's/^/h/' > "$D/rb/inventory"
: > "$D/ssh_config"
cat > "$D/rb/fleet.yaml" <<EOF2
runbook: fleet
targets:
  web: { inventory: inventory }
steps:
  - id: one-command
    phase: mitigate
    across: { targets: web, concurrency: $C }
    command: ["true"]
EOF2
ms() { date +%s%3N; }
step_ms() { python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get("event") == "step.finished" and e.get("step") == "one-command": print(e.get("duration_ms", 0))' "$D/out.jsonl"; }
median() { printf '%s\n' "$@" | sort -n | sed -n "$(( ($# + 1) / 2 ))p"; }
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
rb=(); step=(); xa=()
for _ in $(seq 1 "$R"); do
  t0=$(ms)
  PATH="$D/fake:$PATH" "$BIN" run fleet --runbooks "$D/rb" --state-dir "$D/st" --json --yes --ssh-config "$D/ssh_config" > "$D/out.jsonl" 2>"$D/err.txt"
  t1=$(ms); rb+=($((t1 - t0))); step+=($(step_ms))
  ok=$(grep '"event":"host.finished"' "$D/out.jsonl" | grep -c '"status":"passed"' || true)
  [ "$ok" = "$N" ] || { echo "only $ok of $N hosts passed: $(head -c 400 "$D/err.txt")"; exit 1; }
  t0=$(ms); seq 1 "$N" | PATH="$D/fake:$PATH" xargs -P $C -I{} ssh -F "$D/ssh_config" h{} true; t1=$(ms); xa+=($((t1 - t0)))
done
rb_m=$(median "${rb[@]}"); step_m=$(median "${step[@]}"); xa_m=$(median "${xa[@]}")
echo "hosts: $N, concurrency $C, $(nproc) cores, $R rounds; load average at the start: $LOAD0, at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "runbook run, whole process: median ${rb_m} ms (${rb[*]})"
echo "runbook run, its step:      median ${step_m} ms (${step[*]})"
echo "xargs -P $C, stand-in ssh:  median ${xa_m} ms (${xa[*]})"
python3 -c "import sys; n, s, r, x = map(int, sys.argv[1:]); print(f'engine overhead beyond ssh, per host: {(s - x) / n:.2f} ms the step alone, {(r - x) / n:.2f} ms the whole process')" "$N" "$step_m" "$rb_m" "$xa_m"
