#!/usr/bin/env bash
# The reference incident, end to end: start the leaky shop, drive traffic so it leaks, and let
# `runbook run memory-leak` detect, diagnose, disable the image-resize flag, restart and verify.
# Exits 0 only when the run's outcome is `mitigated`. Honours RUNBOOK_STATE_DIR. Cleans up after itself.
# Usage: examples/memory-leak/demo.sh        (from anywhere; runs from the repository root)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD

if [ -n "${DEMO_BIN:-}" ]; then
  bin=$DEMO_BIN   # already built (the integration test passes the folder with runbook and leaky-shop)
else
  echo "== building runbook and the leaky shop"
  swift build --product runbook >/dev/null
  swift build --product leaky-shop >/dev/null
  bin=$(swift build --show-bin-path)
fi

work=$root/.run/demo-$$
mkdir -p "$work"
export RUNBOOK_STATE_DIR=${RUNBOOK_STATE_DIR:-$work/state}
echo "== history of this demo is kept in $RUNBOOK_STATE_DIR (runbook history --state-dir $RUNBOOK_STATE_DIR)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cp examples/leaky-shop/flags.json "$work/flags.json"
export SHOP_PORT=$port SHOP_FLAGS=$work/flags.json SHOP_PIDFILE=$root/.run/shop.pid SHOP_BIN=$bin/leaky-shop SHOP_LOG=$work/shop.log
traffic_pid=""
cleanup() {
  [ -n "$traffic_pid" ] && kill "$traffic_pid" 2>/dev/null || true
  if [ -n "${SHOP_SUPERVISOR_CONF:-}" ]; then supervisorctl -c "$SHOP_SUPERVISOR_CONF" shutdown >/dev/null 2>&1 || true; fi
  if [ -s "$SHOP_PIDFILE" ]; then kill "$(cat "$SHOP_PIDFILE")" 2>/dev/null || true; rm -f "$SHOP_PIDFILE"; fi
  [ "${KEEP_DEMO:-0}" = 1 ] || rm -rf "$work/flags.json" "$work/shop.log"
}
trap cleanup EXIT INT TERM

if command -v supervisord >/dev/null && [ "${DEMO_NO_SUPERVISOR:-0}" != 1 ]; then
  echo "== starting the shop under supervisord on 127.0.0.1:$port (image-resize on)"
  export SHOP_SUPERVISOR_CONF=$work/supervisord.conf
  cat > "$SHOP_SUPERVISOR_CONF" <<CONF
[unix_http_server]
file=$work/supervisor.sock
[supervisord]
pidfile=$work/supervisord.pid
logfile=$work/supervisord.log
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://$work/supervisor.sock
[program:shop]
command=$SHOP_BIN --port $port --flags $SHOP_FLAGS --pidfile $SHOP_PIDFILE
directory=$root
startsecs=0
stopwaitsecs=5
stdout_logfile=$SHOP_LOG
redirect_stderr=true
CONF
  rm -f "$SHOP_PIDFILE"
  supervisord -c "$SHOP_SUPERVISOR_CONF"
  for _ in $(seq 1 100); do [ -s "$SHOP_PIDFILE" ] && break; sleep 0.05; done
else
  echo "== starting the shop on 127.0.0.1:$port (image-resize on)"
  examples/leaky-shop/restart.sh shop
fi
first_pid=$(cat "$SHOP_PIDFILE")

echo "== driving traffic at the product-image path"
python3 - "$port" <<'PY' &
import sys, time, urllib.request
port = sys.argv[1]
while True:
    for path in ("/products/mug/image", "/products", "/products/tee/image", "/cart"):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2).read()
        except Exception:
            pass
    time.sleep(0.05)
PY
traffic_pid=$!
sleep 3
echo "== shop RSS now: $(curl -s "http://127.0.0.1:$port/metrics" | awk '/^process_resident_memory_bytes/ {printf "%.1f MB", $2/1048576}')"

echo "== runbook run memory-leak"
start=$(date +%s.%N)
set +e
"$bin/runbook" run memory-leak --runbooks runbooks --yes \
  --param base_url="http://127.0.0.1:$port" --param flags_file="$SHOP_FLAGS"
status=$?
set -e
elapsed=$(python3 -c "import time; print(f'{time.time() - $start:.1f}')")

run_line=$("$bin/runbook" history --json | head -1)
run_id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$run_line")
outcome=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["outcome"])' "$run_line")
new_pid=$(cat "$SHOP_PIDFILE" 2>/dev/null || echo "?")
variant=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["flags"]["image-resize"]["defaultVariant"])' "$SHOP_FLAGS")
echo
echo "== run $run_id: outcome $outcome in ${elapsed}s (exit $status); shop pid $first_pid -> $new_pid; image-resize flag: $variant"
echo "== postmortem draft:"
"$bin/runbook" postmortem "$run_id" --runbooks runbooks
echo
echo "== this run's history is kept in $RUNBOOK_STATE_DIR; see it again with:"
echo "   $bin/runbook history --state-dir $RUNBOOK_STATE_DIR"
echo "   $bin/runbook timeline $run_id --state-dir $RUNBOOK_STATE_DIR"
echo "   $bin/runbook postmortem $run_id --state-dir $RUNBOOK_STATE_DIR --runbooks runbooks"
[ "$outcome" = mitigated ] && [ "$status" = 0 ] && [ "$variant" = off ] && [ "$new_pid" != "$first_pid" ]
