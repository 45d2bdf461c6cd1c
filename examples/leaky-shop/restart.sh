#!/usr/bin/env bash
# Restarts the leaky shop and waits until the new process has written its pidfile.
# Under supervisord (SHOP_SUPERVISOR_CONF set) it asks supervisorctl; otherwise it stops the pid in the
# pidfile and starts a new process itself.
# Usage: restart.sh [SERVICE]   Env: SHOP_PORT (8080), SHOP_FLAGS (.run/flags.json, made from
#        examples/leaky-shop/flags.json when missing, so the tracked template never changes),
#        SHOP_PIDFILE (.run/shop.pid), SHOP_BIN (.build/debug/leaky-shop), SHOP_LOG (.run/shop.log),
#        SHOP_SUPERVISOR_CONF (unset)
set -euo pipefail
service=${1:-shop}
port=${SHOP_PORT:-8080}
flags=${SHOP_FLAGS:-.run/flags.json}
pidfile=${SHOP_PIDFILE:-.run/shop.pid}
bin=${SHOP_BIN:-.build/debug/leaky-shop}
log=${SHOP_LOG:-.run/shop.log}
[[ "$service" =~ ^[a-z0-9-]+$ ]] || { echo "bad service name" >&2; exit 2; }
mkdir -p "$(dirname "$pidfile")" "$(dirname "$log")" "$(dirname "$flags")"
[ -e "$flags" ] || cp "$(dirname "$0")/flags.json" "$flags"
if [ -n "${SHOP_SUPERVISOR_CONF:-}" ]; then
  rm -f "$pidfile"
  supervisorctl -c "$SHOP_SUPERVISOR_CONF" restart "$service" >/dev/null
  for _ in $(seq 1 100); do [ -s "$pidfile" ] && exit 0; sleep 0.05; done
  echo "$service did not write $pidfile after supervisorctl restart" >&2
  exit 1
fi
if [ -s "$pidfile" ]; then
  old=$(cat "$pidfile")
  # Only the shop the pidfile names: a stale pidfile's pid may belong to another process by now.
  if [[ "$old" =~ ^[0-9]+$ ]] && tr '\0' '\n' < "/proc/$old/cmdline" 2>/dev/null | head -1 | grep -q 'leaky-shop$'; then
    kill "$old" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$old" 2>/dev/null || true
  fi
fi
rm -f "$pidfile"
# setsid: the shop outlives this script and the runbook step that ran it.
setsid "$bin" --port "$port" --flags "$flags" --pidfile "$pidfile" >>"$log" 2>&1 < /dev/null &
for _ in $(seq 1 100); do [ -s "$pidfile" ] && exit 0; sleep 0.05; done
echo "$service did not write $pidfile" >&2
exit 1
