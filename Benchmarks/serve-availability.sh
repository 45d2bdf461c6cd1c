#!/usr/bin/env bash
# `runbook serve` when things go wrong (release build, loopback):
#  outage    PostgreSQL stopped under a server: how long webhooks and GET /runs take to answer (503)
#            and what they answer, then how long until a webhook is accepted again after the restart;
#  flood     20 real alerts, one after another, while 1,200 half-open request heads without a token
#            (trickled, reopened as they close) come from the same address: status and latency;
#  approval  approvals answered over HTTP while one Alertmanager payload of 6,000 alerts is admitted
#            (SQLite, and PostgreSQL): each approval's latency, how many were answered before the
#            payload, and the payload's latency.
# Usage: Benchmarks/serve-availability.sh [outage] [flood] [approval]   (all three by default; the
#        PostgreSQL parts use a throwaway cluster via scripts/pg-cluster.sh and are skipped without it)
set -euo pipefail
cd "$(dirname "$0")/.."
parts=("$@"); [ ${#parts[@]} -eq 0 ] && parts=(outage flood approval)
# RUNBOOK_BENCH_BIN=PATH: measure that binary instead of building the release one.
if [ -n "${RUNBOOK_BENCH_BIN:-}" ]; then bin=$RUNBOOK_BENCH_BIN; else
  swift build -c release --product runbook >/dev/null
  bin=$PWD/.build/release/runbook
fi
work=$(mktemp -d)
mkdir -p "$work/rb"
have_pg() { ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; }
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
cat > "$work/rb/gated.yaml" <<'YAML'
runbook: gated
params:
  n: { default: "0", pattern: "[0-9]+" }
triggers:
  - alert: { alertname: Gated }
    params: { n: "{{ alert.labels.n }}" }
guards: { auto: ask }
steps:
  - id: look
    phase: detect
    check: { command: ["true"] }
  - id: change
    phase: mitigate
    command: ["true"]
YAML
cat > "$work/tokens" <<'TOK'
am:alerts:avail-bench-alerts-0001
lead:operator:avail-bench-lead-00001
rd:reader:avail-bench-reader-0001
TOK
chmod 600 "$work/tokens"
serve_pid=""
pg_dir=""
cleanup() {
  [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null && wait "$serve_pid" 2>/dev/null
  [ -n "$pg_dir" ] && scripts/pg-cluster.sh stop "$pg_dir"
  rm -rf "$work" "${pg_dir:-/nonexistent}"
}
trap cleanup EXIT

# start_server NAME ARGS...: a server on a fresh state folder; sets $port.
start_server() {
  local name=$1; shift
  "$bin" serve --listen 127.0.0.1:0 --runbooks "$work/rb" --state-dir "$work/state-$name" --token-file "$work/tokens" \
    --max-body 8388608 "$@" >"$work/serve-$name.log" 2>&1 &
  serve_pid=$!
  for _ in $(seq 1 200); do grep -q 'listening on' "$work/serve-$name.log" && break; sleep 0.05; done
  port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$work/serve-$name.log" | head -1)
  [ -n "$port" ] || { cat "$work/serve-$name.log" >&2; exit 1; }
}
stop_server() { kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true; serve_pid=""; }
start_pg() {
  [ -n "$pg_dir" ] && return
  pg_dir=$(mktemp -d /tmp/runbook-avail-pg.XXXXXX)
  pg_url=$(scripts/pg-cluster.sh start "$pg_dir")
}

outage() {
  if ! have_pg; then echo "outage: PostgreSQL is not installed here (apt-get install postgresql); skipped"; return; fi
  start_pg
  start_server outage --database "$pg_url"
  python3 - "$port" "$PWD/scripts/pg-cluster.sh" "$pg_dir" <<'PY'
import json, statistics, subprocess, sys, threading, time, urllib.error, urllib.request
port, pgctl, pgdir = int(sys.argv[1]), sys.argv[2], sys.argv[3]
def call(method, path, body=None, token="avail-bench-alerts-0001"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    t = time.time()
    try:
        r = urllib.request.urlopen(req, timeout=60); code = r.status; r.read()
    except urllib.error.HTTPError as e:
        code = e.code; e.read()
    except Exception:
        code = 0
    return code, (time.time() - t) * 1000
def hook(fp):
    body = json.dumps({"version": "4", "status": "firing", "alerts": [{"status": "firing",
        "labels": {"alertname": "Storm"}, "fingerprint": fp}]}).encode()
    return call("POST", "/hooks/alertmanager", body)
print("outage: before the stop, webhook %d in %.1f ms" % hook("before"))
subprocess.run([pgctl, "stop", pgdir], check=True)
stopped = time.time()
results = []
def one(i):
    results.append(hook(f"during-{i}"))
# The first right after the stop (before the probe noticed), then 20 at once, then one at a time.
first = hook("during-first")
threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
[t.start() for t in threads]; [t.join() for t in threads]
for i in range(20, 40): one(i)
reads = [call("GET", "/runs", token="avail-bench-reader-0001") for _ in range(10)]
def show(label, rs):
    codes = sorted(set(c for c, _ in rs)); ms = sorted(m for _, m in rs)
    print(f"outage: {label}: {len(rs)} answered {codes}, p50 {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms")
print(f"outage: first webhook after the stop: {first[0]} in {first[1]:.0f} ms")
show("webhooks during the outage", results)
show("GET /runs during the outage", reads)
time.sleep(max(0, stopped + 10 - time.time()))  # a 10 s outage, as in issue 19
subprocess.run([pgctl, "start", pgdir], check=True, stdout=subprocess.DEVNULL)
restarted = time.time()
while True:
    code, _ = hook("after")
    if code == 202: break
    time.sleep(0.05)
print(f"outage: database down {restarted - stopped:.1f} s; first webhook accepted {1000 * (time.time() - restarted):.0f} ms after it was back")
PY
  stop_server
}

flood() {
  start_server flood
  python3 Tests/Fixtures/half_open_flood.py "$port" 1200 20 avail-bench-alerts-0001 Storm | python3 -c '
import json, statistics, sys
r = json.load(sys.stdin); ms = sorted(r["latencies_ms"])
ok = sum(1 for s in r["statuses"] if s == 202); opened, closed = r["opened"], r["closed_by_server"]
print(f"flood: 20 alerts under 1,200 half-open heads: {ok}/20 answered 202, p50 {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms, "
      f"{sum(1 for m in ms if m < 1000)}/20 within 1 s; half-open connections opened {opened}, closed by the server {closed}")'
  stop_server
}

# approvals_during_storm LABEL: five runs paused at their gate, then a 6,000-alert payload with the
# five approvals sent 50-250 ms into it (APPROVAL_STEP_MS=100: 100-500 ms, as before).
approvals_during_storm() {
  python3 - "$port" "$1" <<'PY'
import json, statistics, sys, threading, time, urllib.error, urllib.request
port, label = int(sys.argv[1]), sys.argv[2]
def call(method, path, body=b"", token="avail-bench-alerts-0001"):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body if method == "POST" else None, method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    t = time.time()
    try:
        r = urllib.request.urlopen(req, timeout=120); code, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        code, text = e.code, e.read()
    return code, (time.time() - t) * 1000, text
gates = []
for i in range(5):
    body = json.dumps({"version": "4", "status": "firing", "alerts": [{"status": "firing",
        "labels": {"alertname": "Gated", "n": str(i)}, "fingerprint": f"gate-{label}-{i}"}]}).encode()
    _, _, text = call("POST", "/hooks/alertmanager", body)
    gates.append(json.loads(text)["runs"][0]["run"])
for run in gates:
    while json.loads(call("GET", f"/runs/{run}", token="avail-bench-reader-0001")[2]).get("status") != "awaiting-approval":
        time.sleep(0.05)
alerts = [{"status": "firing", "labels": {"alertname": "Storm", "instance": f"node-{i:05d}:9100", "job": "node"},
           "annotations": {"summary": f"node-{i:05d} is on fire"}, "fingerprint": f"{label}-{i:08x}"} for i in range(6000)]
payload = json.dumps({"version": "4", "status": "firing", "alerts": alerts}).encode()
storm = {}
def send_storm():
    code, ms, _ = call("POST", "/hooks/alertmanager", payload)
    storm["r"] = (code, ms)
    storm["end"] = time.time()
t0 = time.time()
th = threading.Thread(target=send_storm); th.start()
approvals = []
# One every `step` seconds from `step` into the payload (APPROVAL_STEP_MS, 50 by default: a payload
# answered in 300 ms still sees most of them).
step = float(__import__("os").environ.get("APPROVAL_STEP_MS", "50")) / 1000
ends = []
for i, run in enumerate(gates):
    time.sleep(max(0, t0 + step * (i + 1) - time.time()))
    code, ms, text = call("POST", f"/runs/{run}/approve", token="avail-bench-lead-00001")
    approvals.append((code, ms))
    ends.append(time.time())
th.join()
during = sum(1 for e in ends if e < storm["end"])
ms = sorted(m for _, m in approvals)
print(f"approval {label}: 6,000-alert payload answered {storm['r'][0]} in {storm['r'][1]:.0f} ms; "
      f"5 approvals sent {step * 1000:.0f}-{step * 5000:.0f} ms into it ({during} answered before the payload was): "
      f"{[c for c, _ in approvals]}, p50 {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms "
      f"({', '.join(f'{m:.0f}' for _, m in approvals)} ms) [load {open('/proc/loadavg').read().split()[0]}]")
PY
}

approval() {
  start_server approval-sqlite
  approvals_during_storm sqlite
  stop_server
  if have_pg; then
    start_pg
    psql -q -h 127.0.0.1 -p "$(cat "$pg_dir/port")" -U runbook -d postgres -c "create database approvals" >/dev/null
    start_server approval-pg --database "${pg_url%/*}/approvals"
    approvals_during_storm postgres
    stop_server
  else
    echo "approval postgres: not installed here; skipped"
  fi
}

for part in "${parts[@]}"; do "$part"; done
