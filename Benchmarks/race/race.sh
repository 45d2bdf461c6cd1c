#!/usr/bin/env bash
# Races the same memory-leak response as an Ansible play and as a runbook, against the same leaky shop,
# several times each, and prints wall time and peak memory side by side.
# Usage: Benchmarks/race/race.sh [rounds]   (creates a venv with ansible-core from PyPI on first use)
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
rounds=${1:-3}
venv=${ANSIBLE_VENV:-$root/.run/ansible-venv}
if [ ! -x "$venv/bin/ansible-playbook" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet ansible-core
fi
swift build -c release --product runbook >/dev/null
swift build -c release --product leaky-shop >/dev/null
bin=$(swift build -c release --show-bin-path)

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export SHOP_PORT=$port SHOP_FLAGS=$work/flags.json SHOP_PIDFILE=$root/.run/shop.pid SHOP_BIN=$bin/leaky-shop SHOP_LOG=$work/shop.log
export ANSIBLE_PYTHON_INTERPRETER="$venv/bin/python" ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false ANSIBLE_NOCOLOR=1
traffic_pid=""
cleanup() {
  [ -n "$traffic_pid" ] && kill "$traffic_pid" 2>/dev/null || true
  [ -s "$SHOP_PIDFILE" ] && kill "$(cat "$SHOP_PIDFILE")" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

leaking_shop() {   # flag on, fresh shop, a few seconds of leaking
  cp examples/leaky-shop/flags.json "$SHOP_FLAGS"
  examples/leaky-shop/restart.sh shop
  sleep 3
}
python3 - "$port" <<'PY' &
import sys, time, urllib.request
while True:
    try: urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/products/mug/image", timeout=2).read()
    except Exception: pass
    time.sleep(0.05)
PY
traffic_pid=$!

measure() {  # prints "seconds max_rss_kb exit"
  local out=$work/time.txt
  set +e
  /usr/bin/time -f "%e %M" -o "$out" "$@" >"$work/last.log" 2>&1
  local status=$?
  set -e
  [ "$status" = 0 ] || { echo "$1 failed:" >&2; tail -15 "$work/last.log" >&2; }
  echo "$(cat "$out" | tail -1) $status"
}

echo "round  tool       wall_s  peak_rss_MB  exit"
for i in $(seq 1 "$rounds"); do
  leaking_shop
  read -r t m s < <(measure "$venv/bin/ansible-playbook" -i localhost, Benchmarks/race/playbook.yml)
  printf "%-6s %-10s %6s  %11.1f  %s\n" "$i" ansible "$t" "$(echo "$m/1024" | bc -l)" "$s"
  echo "$t $m" >> "$work/ansible"
  leaking_shop
  read -r t m s < <(measure "$bin/runbook" run race --runbooks Benchmarks/race/runbooks --state-dir "$work/state" --yes --json \
    --param base_url="http://127.0.0.1:$port" --param flags_file="$SHOP_FLAGS")
  printf "%-6s %-10s %6s  %11.1f  %s\n" "$i" runbook "$t" "$(echo "$m/1024" | bc -l)" "$s"
  echo "$t $m" >> "$work/runbook"
done
python3 - "$work/ansible" "$work/runbook" <<'PY'
import statistics, sys
def load(p):
    rows = [tuple(map(float, l.split())) for l in open(p)]
    return statistics.median(r[0] for r in rows), max(r[1] for r in rows) / 1024
(at, am), (rt, rm) = load(sys.argv[1]), load(sys.argv[2])
print(f"\nmedian wall: ansible {at:.2f} s, runbook {rt:.2f} s ({at / rt:.1f}x faster); "
      f"peak RSS: ansible {am:.0f} MB, runbook {rm:.0f} MB ({am / rm:.1f}x less)")
print("Both include the same 2 s sampling windows for detect and verify (4 s of the wall time is waiting).")
PY
