#!/usr/bin/env bash
# Fleets against Ansible on the same throwaway sshd hosts (loopback 127.0.0.2..., one sshd per 16
# addresses, generated host and user keys), concurrency 50:
#   1. one command on every host: `runbook run` vs `ansible -f 50 all -m command -a true`, cold (no
#      control sockets) and warm (control sockets alive), with `xargs -P 50 ssh` as the floor;
#   2. a restart with a verify per host: `runbook run` (a restart step, then a check step, both
#      across the hosts) vs an ansible-playbook of the same two tasks.
# Prints wall times, the ratios and the engine's own overhead per host beyond ssh. Everything it
# starts (sshd, ssh masters, the services it restarts) and its temp folder go on exit.
# Usage: Benchmarks/fleet.sh [HOSTS]   (root: sshd needs /run/sshd; builds release if needed)
# Needs: openssh-server, ansible-core (pip install --break-system-packages ansible-core).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100}
C=50
[ -x /usr/sbin/sshd ] || { echo "needs openssh-server (apt-get install openssh-server)"; exit 1; }
command -v ansible >/dev/null && command -v ansible-playbook >/dev/null || { echo "needs ansible-core (pip install --break-system-packages ansible-core)"; exit 1; }
[ "$N" -ge 1 ] && [ "$N" -le 250 ] || { echo "1 to 250 hosts (127.0.0.2-251)"; exit 1; }
if [ -z "${RUNBOOK_BIN:-}" ]; then swift build -c release --product runbook >/dev/null; fi
BIN=${RUNBOOK_BIN:-$(swift build -c release --show-bin-path)/runbook}

D=$(mktemp -d /tmp/rbfb.XXXX)
PIDS=()
cleanup() {
  set +e
  # ssh masters (ours and ansible's) first: an sshd's session processes outlive its listener.
  for s in "$D"/cp/* "$D"/warm/*; do [ -S "$s" ] && ssh -o ControlPath="$s" -O exit x >/dev/null 2>&1; done
  for p in "$D"/svc/*.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null; done
  [ ${#PIDS[@]} -gt 0 ] && kill "${PIDS[@]}" 2>/dev/null && wait "${PIDS[@]}" 2>/dev/null
  rm -rf "$D"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p /run/sshd "$D/st" "$D/rb" "$D/cp" "$D/warm" "$D/svc"
ssh-keygen -q -t ed25519 -N '' -f "$D/host_key"; ssh-keygen -q -t ed25519 -N '' -f "$D/id"
cp "$D/id.pub" "$D/authorized_keys"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# sshd listens on at most 16 sockets: one sshd per 16 hosts (7 for 100 hosts).
for first in $(seq 1 16 "$N"); do
  { for i in $(seq "$first" $(( first + 15 > N ? N : first + 15 ))); do echo "ListenAddress 127.0.0.$((i + 1)):$PORT"; done
    printf 'HostKey %s/host_key\nAuthorizedKeysFile %s/authorized_keys\nPidFile none\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\nMaxStartups 1000\nMaxSessions 1000\nLogLevel ERROR\nSubsystem sftp internal-sftp\n' "$D" "$D"
  } > "$D/sshd_config.$first"
done
echo "fleet-sshd $(cut -d' ' -f1-2 "$D/host_key.pub")" > "$D/known_hosts"
{ for i in $(seq 1 "$N"); do printf 'Host h%d\n  HostName 127.0.0.%d\n' "$i" $((i + 1)); done
  printf 'Host *\n  Port %s\n  User %s\n  IdentityFile %s/id\n  IdentitiesOnly yes\n  UserKnownHostsFile %s/known_hosts\n  GlobalKnownHostsFile /dev/null\n  HostKeyAlias fleet-sshd\n' "$PORT" "$(id -un)" "$D" "$D"
} > "$D/ssh_config"
for f in "$D"/sshd_config.*; do /usr/sbin/sshd -D -f "$f" & PIDS+=($!); done
up=""
for _ in $(seq 1 100); do
  if ssh -F "$D/ssh_config" -o BatchMode=yes "h$N" true 2>/dev/null && ssh -F "$D/ssh_config" -o BatchMode=yes h1 true 2>/dev/null; then up=1; break; fi
  sleep 0.1
done
[ -n "$up" ] || { echo "sshd did not come up"; exit 1; }

seq 1 "$N" | sed 's/^/h/' > "$D/rb/inventory"
{ echo "[web]"; cat "$D/rb/inventory"; } > "$D/inventory.ini"
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
# Warm: the same command twice in one run; the second step finds every master open.
cat > "$D/rb/fleet-warm.yaml" <<EOF2
runbook: fleet-warm
targets:
  web: { inventory: inventory }
steps:
  - id: warm-up
    phase: mitigate
    across: { targets: web, concurrency: $C }
    command: ["true"]
  - id: one-command
    phase: mitigate
    needs: [warm-up]
    across: { targets: web, concurrency: $C }
    command: ["true"]
EOF2
# A service per host (a detached sleep with a pidfile); restart kills it and starts a new one,
# verify checks that the pid in the file is alive.
RESTART='old=$(cat "$1" 2>/dev/null) && kill "$old" 2>/dev/null; setsid sleep 600 </dev/null >/dev/null 2>&1 & echo $! > "$1"'
VERIFY='kill -0 "$(cat "$1")"'
cat > "$D/rb/restart.yaml" <<EOF2
runbook: restart
targets:
  web: { inventory: inventory }
steps:
  - id: restart-shop
    phase: mitigate
    across: { targets: web, concurrency: $C }
    restart: { command: ["sh", "-c", '$RESTART', "restart", "$D/svc/{{ target.host }}.pid"] }
  - id: shop-up
    phase: verify
    across: { targets: web, concurrency: $C }
    check: { command: ["sh", "-c", '$VERIFY', "verify", "$D/svc/{{ target.host }}.pid"] }
EOF2
cat > "$D/restart-play.yaml" <<EOF2
- hosts: web
  gather_facts: false
  tasks:
    - name: restart-shop
      shell: sh -c '$RESTART' restart $D/svc/{{ inventory_hostname }}.pid
    - name: shop-up
      command: sh -c '$VERIFY' verify $D/svc/{{ inventory_hostname }}.pid
EOF2

ms() { date +%s%3N; }
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
run_rb() { "$BIN" run "$1" --runbooks "$D/rb" --state-dir "$D/st" --json --yes --ssh-config "$D/ssh_config" > "$D/out.jsonl" 2>"$D/err.txt"; }
passed() { grep '"event":"host.finished"' "$D/out.jsonl" | grep -c '"status":"passed"' || true; }
step_ms() { python3 -c 'import json,sys
for l in open(sys.argv[1]):
    e = json.loads(l)
    if e.get("event") == "step.finished" and e.get("step") == sys.argv[2]: print(e.get("duration_ms", e.get("durationMs", 0)))' "$D/out.jsonl" "$1"; }

# 1. One command, cold.
t0=$(ms); run_rb fleet; t1=$(ms); rb_cold=$((t1 - t0)); rb_cold_ok=$(passed); rb_cold_step=$(step_ms one-command)
t0=$(ms); run_rb fleet; t1=$(ms); rb_cold2=$((t1 - t0))
# One command, warm: the second step of one run (masters opened by the first).
run_rb fleet-warm; rb_warm_ok=$(passed); rb_warm=$(step_ms one-command)
# ssh alone, cold: a new connection a host, 50 at a time.
t0=$(ms); seq 1 "$N" | xargs -P $C -I{} ssh -F "$D/ssh_config" -o BatchMode=yes -o ControlMaster=no -o ControlPath=none h{} true; t1=$(ms); ssh_cold=$((t1 - t0))
# ssh alone, warm: masters opened first, then the command through them.
seq 1 "$N" | xargs -P $C -I{} ssh -F "$D/ssh_config" -o BatchMode=yes -o ControlMaster=yes -o ControlPersist=120 -o ControlPath="$D/warm/%C" -fN h{}
t0=$(ms); seq 1 "$N" | xargs -P $C -I{} ssh -F "$D/ssh_config" -o BatchMode=yes -o ControlMaster=no -o ControlPath="$D/warm/%C" h{} true; t1=$(ms); ssh_warm=$((t1 - t0))
# Ansible: its default ControlPersist (60s), sockets in $D/cp; the system python3 on the hosts
# (interpreter discovery can pick a shim that a non-login shell cannot run).
export ANSIBLE_HOST_KEY_CHECKING=True ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3 ANSIBLE_SSH_CONTROL_PATH_DIR="$D/cp"
export ANSIBLE_SSH_ARGS="-F $D/ssh_config -o ControlMaster=auto -o ControlPersist=60s" ANSIBLE_LOCAL_TEMP="$D/ansible-tmp" ANSIBLE_NOCOLOR=1
t0=$(ms); ansible -i "$D/inventory.ini" web -f $C -m command -a true >"$D/an1.txt" 2>&1 || true; t1=$(ms); an_cold=$((t1 - t0))
t0=$(ms); ansible -i "$D/inventory.ini" web -f $C -m command -a true >"$D/an2.txt" 2>&1 || true; t1=$(ms); an_warm=$((t1 - t0))
an_cold_ok=$(grep -c "CHANGED\|SUCCESS" "$D/an1.txt" || true); an_warm_ok=$(grep -c "CHANGED\|SUCCESS" "$D/an2.txt" || true)
for s in "$D"/cp/*; do [ -S "$s" ] && ssh -o ControlPath="$s" -O exit x >/dev/null 2>&1 || true; done

# 2. Restart with a verify per host, cold each.
t0=$(ms); run_rb restart; t1=$(ms); rb_restart=$((t1 - t0))
rb_restart_ok=$(grep '"event":"run.finished"' "$D/out.jsonl" | grep -o '"outcome":"[a-z-]*"' || true)
t0=$(ms); ansible-playbook -i "$D/inventory.ini" -f $C "$D/restart-play.yaml" >"$D/an3.txt" 2>&1 || true; t1=$(ms); an_restart=$((t1 - t0))
an_restart_ok=$(grep -o "failed=[0-9]*" "$D/an3.txt" | sort | uniq -c | tr '\n' ' ' || true)

# A tool that did not reach every host says why (its first complaint).
for f in an1 an2 an3; do grep -q "UNREACHABLE\|FAILED\|failed=[1-9]\|ERROR" "$D/$f.txt" && { echo "$f: $(grep -m1 -A3 "UNREACHABLE\|FAILED\|fatal\|ERROR" "$D/$f.txt" | tr '\n' ' ' | cut -c1-400)"; }; done
[ "$rb_cold_ok" = "$N" ] || echo "runbook: $(head -c 400 "$D/err.txt")"
echo "hosts: $N, concurrency $C, $(nproc) cores; load average at the start: $LOAD0, at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "one command, cold:"
echo "  runbook run:                 ${rb_cold} ms whole process ($rb_cold_ok hosts passed; again: ${rb_cold2} ms); its step alone ${rb_cold_step} ms"
echo "  ssh alone (xargs -P $C):     ${ssh_cold} ms"
echo "  ansible -f $C -m command:    ${an_cold} ms ($an_cold_ok hosts ok)"
echo "one command, warm control sockets:"
echo "  runbook (2nd step of a run): ${rb_warm} ms ($rb_warm_ok host results passed over both steps)"
echo "  ssh alone (xargs -P $C):     ${ssh_warm} ms"
echo "  ansible -f $C (2nd run):     ${an_warm} ms ($an_warm_ok hosts ok)"
echo "restart + verify per host, cold:"
echo "  runbook run:                 ${rb_restart} ms ($rb_restart_ok)"
echo "  ansible-playbook -f $C:      ${an_restart} ms (hosts: $an_restart_ok)"
python3 - "$N" "$rb_cold" "$rb_cold_step" "$ssh_cold" "$an_cold" "$rb_warm" "$ssh_warm" "$an_warm" "$rb_restart" "$an_restart" <<'EOP'
import sys
n, rb, rb_step, ssh, an, rbw, sshw, anw, rbr, anr = map(int, sys.argv[1:])
print(f"ratio ansible / runbook: cold {an / rb:.1f}x, warm {anw / max(1, rbw):.1f}x, restart+verify {anr / rbr:.1f}x")
print(f"engine time beyond real ssh, per host (noisy: ssh's own variance dominates; Benchmarks/fleet-overhead.sh measures it): cold {(rb - ssh) / n:.2f} ms (whole process: start-up, run record), "
      f"{(rb_step - ssh) / n:.2f} ms (the step alone); warm {(rbw - sshw) / n:.2f} ms")
EOP
