#!/usr/bin/env bash
# An alert storm against `runbook serve` (release build): one Alertmanager payload of N firing alerts
# with distinct fingerprints for a runbook with `max_runs: {count: 1, per: 1h}` (one run starts, all
# the others are refused), answer time the first time and again as repeats (every alert a repeat
# refusal, counted on its row), on SQLite and on PostgreSQL, with the server's CPU time for each (on a
# loaded machine the wall time is mostly waiting for a core). Admission costs a constant number of
# queries per guard kind, so the time grows linearly with N.
# Usage: Benchmarks/alert-storm.sh          (PostgreSQL: a throwaway cluster via scripts/pg-cluster.sh,
#                                            skipped when PostgreSQL is not installed)
#        RUNBOOK_BENCH_BIN=PATH: measure that binary instead of building the release one;
#        STORM_SIZES="6000 20000": other payload sizes; STORM_STORES="sqlite": one store only.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${RUNBOOK_BENCH_BIN:-}" ]; then bin=$RUNBOOK_BENCH_BIN; else
  swift build -c release --product runbook >/dev/null
  bin=$PWD/.build/release/runbook
fi
stores=${STORM_STORES:-sqlite postgres}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
work=$(mktemp -d)
mkdir -p "$work/rb"
cat > "$work/rb/storm.yaml" <<'YAML'
runbook: storm
triggers:
  - alert: { alertname: Storm }
guards: { auto: true, max_runs: { count: 1, per: 1h } }
steps:
  - id: look
    phase: detect
    check: { command: ["true"] }
YAML
echo "am:alerts:storm-bench-token-0001" > "$work/tokens"
chmod 600 "$work/tokens"
serve_pid=""
pg_dir=""
cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
  [ -n "$pg_dir" ] && scripts/pg-cluster.sh stop "$pg_dir"
  rm -rf "$work"
}
trap cleanup EXIT

# start_server NAME DATABASE-ARGS...: a server on a fresh state folder; sets $port.
start_server() {
  local name=$1; shift
  : > "$work/serve-$name.log"
  "$bin" serve --listen 127.0.0.1:0 --runbooks "$work/rb" --state-dir "$work/state-$name" --token-file "$work/tokens" \
    --max-body 8388608 "$@" >"$work/serve-$name.log" 2>&1 &
  serve_pid=$!
  for _ in $(seq 1 200); do grep -q 'listening on' "$work/serve-$name.log" && break; sleep 0.05; done
  port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$work/serve-$name.log" | head -1)
  [ -n "$port" ] || { cat "$work/serve-$name.log" >&2; exit 1; }
}
stop_server() { kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=""; }

# storm STORE N: the payload of N alerts, then the same payload again.
storm() {
  python3 - "$port" "$1" "$2" "$serve_pid" <<'PY'
import json, os, sys, time, urllib.request
port, store, n, pid = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def cpu_ms():
    # The server's user + system CPU time: on a loaded machine, what the payload cost it whatever the wait.
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")
alerts = [{"status": "firing", "labels": {"alertname": "Storm", "instance": f"node-{i:05d}:9100", "job": "node", "severity": "page"},
           "annotations": {"summary": f"node-{i:05d} is on fire"}, "startsAt": "2026-11-25T10:00:00Z",
           "generatorURL": "http://prometheus:9090/graph", "fingerprint": f"{store}{n}-{i:08x}"} for i in range(n)]
body = json.dumps({"version": "4", "status": "firing", "receiver": "runbook", "alerts": alerts}).encode()
def send(label):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/hooks/alertmanager", data=body, method="POST",
                                 headers={"Authorization": "Bearer storm-bench-token-0001", "Content-Type": "application/json"})
    t, c = time.time(), cpu_ms()
    r = urllib.request.urlopen(req, timeout=120)
    answer = r.read()
    took, cpu = time.time() - t, cpu_ms() - c
    started, refused = answer.count(b'"status":"started"'), answer.count(b'"status":"refused"')
    return f"{label} {took*1000:5.0f} ms (server CPU {cpu:4.0f} ms; {started} started, {refused} refused)"
first, again = send("first"), send("repeat")
load = open("/proc/loadavg").read().split()[0]
print(f"{store:8s} N={n:6d} ({len(body)/1048576:.1f} MiB): {first}; {again}  [load {load}]")
PY
}

read -r -a sizes <<< "${STORM_SIZES:-1500 3000 6000 12000 20000}"
if [[ " $stores " == *" sqlite "* ]]; then
  for n in "${sizes[@]}"; do
    start_server "sqlite-$n"
    storm sqlite "$n"
    stop_server
  done
fi
if [[ " $stores " != *" postgres "* ]]; then :
elif ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  pg_dir=$(mktemp -d /tmp/runbook-storm-pg.XXXXXX)
  url=$(scripts/pg-cluster.sh start "$pg_dir")
  base=${url%/*}
  port_pg=$(cat "$pg_dir/port")
  for n in "${sizes[@]}"; do
    psql -q -h 127.0.0.1 -p "$port_pg" -U runbook -d postgres -c "create database storm_$n" >/dev/null
    start_server "pg-$n" --database "$base/storm_$n"
    storm postgres "$n"
    stop_server
  done
else
  echo "postgres: not installed here (apt-get install postgresql); skipped"
fi
