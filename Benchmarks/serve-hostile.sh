#!/usr/bin/env bash
# `runbook serve` under hostile load, from a second process on loopback (release build):
#  1. a ~1 MiB Alertmanager payload of thousands of alerts that are all refused (a hostile label):
#     time to the answer, and timeline files written (should be none);
#  2. /healthz latency while 400 connections hold half-sent request heads.
# Usage: Benchmarks/serve-hostile.sh
set -euo pipefail
cd "$(dirname "$0")/.."
swift build -c release --product runbook >/dev/null
bin=$PWD/.build/release/runbook
work=$(mktemp -d)
mkdir -p "$work/rb"
cat > "$work/rb/svc.yaml" <<'YAML'
runbook: svc
params:
  service: { default: shop, pattern: "^[a-z0-9-]+$" }
triggers:
  - alert: { alertname: SvcDown }
    params: { service: "{{ alert.labels.service }}" }
guards: { auto: true }
steps:
  - id: look
    phase: detect
    check: { command: ["true"] }
YAML
echo "am:alerts:hostile-bench-token-0123456789" > "$work/tokens"; chmod 600 "$work/tokens"
"$bin" serve --listen 127.0.0.1:0 --runbooks "$work/rb" --state-dir "$work/state" --token-file "$work/tokens" >"$work/serve.log" 2>&1 &
serve_pid=$!
trap 'kill $serve_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do grep -q 'listening on' "$work/serve.log" && break; sleep 0.1; done
port=$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$work/serve.log" | head -1)
python3 - "$port" "$work/state" <<'PY'
import json, os, socket, statistics, sys, time, urllib.request
port, state = int(sys.argv[1]), sys.argv[2]
alerts, size = [], 0
i = 0
while True:
    a = {"status": "firing", "labels": {"alertname": "SvcDown", "service": f"bad value {i}"}, "annotations": {},
         "fingerprint": f"fp{i:08d}", "startsAt": "2026-11-25T10:00:00Z"}
    size += len(json.dumps(a)) + 1
    if size > 1_000_000: break
    alerts.append(a); i += 1
body = json.dumps({"version": "4", "status": "firing", "alerts": alerts}).encode()
req = urllib.request.Request(f"http://127.0.0.1:{port}/hooks/alertmanager", data=body, method="POST",
                             headers={"Authorization": "Bearer hostile-bench-token-0123456789"})
t = time.time(); r = urllib.request.urlopen(req, timeout=60); answer = r.read(); took = time.time() - t
files = [f for f in os.listdir(os.path.join(state, "runs")) if f.endswith(".jsonl")] if os.path.isdir(os.path.join(state, "runs")) else []
refused = answer.count(b'"status":"refused"')
print(f"refused payload: {len(alerts)} alerts, {len(body)/1024:.0f} KiB, answered {r.status} in {took*1000:.0f} ms; "
      f"refusals in answer {refused}; timeline files written {len(files)}")
conns = []
for _ in range(400):
    c = socket.create_connection(("127.0.0.1", port))
    c.sendall(b"POST /hooks/alertmanager HTTP/1.1\r\nHost: x\r\n")
    conns.append(c)
lat = []
for _ in range(50):
    t = time.time(); urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read(); lat.append((time.time() - t) * 1000)
lat.sort()
print(f"/healthz with 400 half-sent requests open: p50 {statistics.median(lat):.1f} ms, max {lat[-1]:.1f} ms")
PY
