#!/usr/bin/env bash
# Webhook-to-first-step latency of `runbook serve` at a sustained rate, from a second process on loopback.
# Usage: Benchmarks/serve.sh [alerts_per_second] [seconds]    (default 200 for 30 s; release build)
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-200}; seconds=${2:-30}
# RUNBOOK_BENCH_BIN=PATH: measure that binary (e.g. the shipped .build/dist/runbook) instead of building one.
if [ -n "${RUNBOOK_BENCH_BIN:-}" ]; then bin=$RUNBOOK_BENCH_BIN; else
  swift build -c release --product runbook >/dev/null
  bin=$PWD/.build/release/runbook
fi
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$work/rb"
cat > "$work/rb/bench.yaml" <<'YAML'
runbook: bench
params:
  instance: { default: x, pattern: "^[a-z0-9.:-]+$" }
triggers:
  - alert: { alertname: BenchAlert }
    params: { instance: "{{ alert.labels.instance }}" }
guards: { auto: true }
steps:
  - id: first
    phase: diagnose
    wait: 1ms
YAML
echo "bench:alerts:bench-token-0001-0123456789" > "$work/tokens"; chmod 600 "$work/tokens"
"$bin" serve --listen "127.0.0.1:$port" --runbooks "$work/rb" --state-dir "$work/state" --token-file "$work/tokens" >"$work/serve.log" 2>&1 &
serve_pid=$!
trap 'kill $serve_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/healthz" >/dev/null && break; sleep 0.1; done
python3 - "$port" "$rate" "$seconds" "$serve_pid" "$work/state" <<'PY'
import json, os, statistics, sys, threading, time, urllib.request, datetime, glob
port, rate, seconds, pid, state = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
def rss():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"): return int(line.split()[1]) / 1024
idle = rss()
sent, accepted, lock = {}, [0], threading.Lock()
def send(i):
    fp = f"fp{i:08d}"
    body = json.dumps({"version": "4", "status": "firing", "receiver": "bench", "groupKey": "{}:{}", "truncatedAlerts": 0,
        "alerts": [{"status": "firing", "labels": {"alertname": "BenchAlert", "instance": f"h{i}"}, "annotations": {},
                    "startsAt": "2026-11-25T14:47:04.491259587Z", "endsAt": "0001-01-01T00:00:00Z", "fingerprint": fp}]}).encode()
    t = time.time()
    try:
        r = urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/hooks/alertmanager", data=body, method="POST", headers={"Authorization": "Bearer bench-token-0001-0123456789"}), timeout=10)
        if r.status == 202:
            with lock: accepted[0] += 1; sent[fp] = t
    except Exception as e:
        print("error", e, file=sys.stderr)
threads, start, peak = [], time.time(), idle
for i in range(rate * seconds):
    target = start + i / rate
    delay = target - time.time()
    if delay > 0: time.sleep(delay)
    th = threading.Thread(target=send, args=(i,)); th.start(); threads.append(th)
    if i % rate == 0: peak = max(peak, rss())
for th in threads: th.join()
elapsed = time.time() - start
time.sleep(2)
peak = max(peak, rss())
# The runs and their timelines, from the state folder (the token here may only post alerts).
lat, started = [], 0
by_fp = {}
import sqlite3
db = sqlite3.connect(f"{state}/runbook.sqlite")
for rid, fp in db.execute("SELECT id, fingerprint FROM runs"):
    by_fp[fp] = rid
for fp, t in sent.items():
    rid = by_fp.get(fp)
    if not rid: continue
    for line in open(f"{state}/runs/{rid}.jsonl"):
        e = json.loads(line)
        if e["event"] == "step.started":
            started += 1
            ts = datetime.datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()
            lat.append((ts - t) * 1000); break
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(len(lat) * p))] if lat else float("nan")
print(f"{rate} alerts/s for {seconds} s ({elapsed:.1f} s actual): sent {rate*seconds}, accepted {accepted[0]}, runs started {started}, lost {accepted[0]-started}")
print(f"webhook to first step: p50 {q(0.5):.1f} ms, p99 {q(0.99):.1f} ms, max {lat[-1] if lat else float('nan'):.1f} ms")
print(f"server RSS: idle {idle:.1f} MB, peak under load {peak:.1f} MB")
PY
