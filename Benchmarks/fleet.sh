#!/usr/bin/env bash
# One command on N sshd hosts (loopback 127.0.0.2...) at concurrency 50: runbook's `across:` against
# `ansible -f 50` (ansible-core from PyPI, its default ControlPersist), cold and with warm control
# sockets. Prints wall times, the ratio and the engine's own overhead per host beyond ssh.
# Usage: Benchmarks/fleet.sh [HOSTS]   (root: sshd needs /run/sshd; builds release if needed)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100}
[ -x /usr/sbin/sshd ] || { echo "needs openssh-server (apt-get install openssh-server)"; exit 1; }
if [ -z "${RUNBOOK_BIN:-}" ]; then swift build -c release --product runbook >/dev/null; fi
BIN=${RUNBOOK_BIN:-$(swift build -c release --show-bin-path)/runbook}
D=$(mktemp -d /tmp/rbfb.XXXX)
VENV=${ANSIBLE_VENV:-/tmp/runbook-ansible-venv}
[ -x "$VENV/bin/ansible" ] || { python3 -m venv "$VENV" && "$VENV/bin/pip" install --quiet ansible-core; }
mkdir -p /run/sshd "$D/st" "$D/rb"
ssh-keygen -q -t ed25519 -N '' -f "$D/host_key"; ssh-keygen -q -t ed25519 -N '' -f "$D/id"
cp "$D/id.pub" "$D/authorized_keys"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
[ "$N" -le 250 ] || { echo "at most 250 hosts (127.0.0.2-251)"; exit 1; }
# sshd listens on at most 16 sockets: one sshd per 16 hosts.
PIDS=()
for first in $(seq 1 16 "$N"); do
  { for i in $(seq "$first" $(( first + 15 > N ? N : first + 15 ))); do echo "ListenAddress 127.0.0.$((i + 1)):$PORT"; done
    printf 'HostKey %s/host_key\nAuthorizedKeysFile %s/authorized_keys\nPidFile none\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nPermitRootLogin prohibit-password\nMaxStartups 1000\nMaxSessions 1000\nLogLevel ERROR\n' "$D" "$D"
  } > "$D/sshd_config.$first"
done
echo "fleet-sshd $(cut -d' ' -f1-2 "$D/host_key.pub")" > "$D/known_hosts"
{ for i in $(seq 1 "$N"); do printf 'Host h%d\n  HostName 127.0.0.%d\n' "$i" $((i + 1)); done
  printf 'Host *\n  Port %s\n  User %s\n  IdentityFile %s/id\n  IdentitiesOnly yes\n  UserKnownHostsFile %s/known_hosts\n  GlobalKnownHostsFile /dev/null\n  HostKeyAlias fleet-sshd\n' "$PORT" "$(id -un)" "$D" "$D"
} > "$D/ssh_config"
for f in "$D"/sshd_config.*; do /usr/sbin/sshd -D -f "$f" & PIDS+=($!); done
trap 'kill "${PIDS[@]}" 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 1 100); do ssh -F "$D/ssh_config" -o BatchMode=yes "h$N" true 2>/dev/null && break; sleep 0.1; done
seq 1 "$N" | sed 's/^/h/' > "$D/rb/inventory"
{ echo "[web]"; cat "$D/rb/inventory"; } > "$D/inventory.ini"
cat > "$D/rb/fleet.yaml" <<EOF2
runbook: fleet
targets:
  web: { inventory: inventory }
steps:
  - id: one-command
    phase: mitigate
    across: { targets: web, concurrency: 50 }
    command: ["true"]
EOF2
ms() { python3 -c 'import time; print(int(time.time()*1000))'; }
run_rb() { "$BIN" run fleet --runbooks "$D/rb" --state-dir "$D/st" --json --yes --ssh-config "$D/ssh_config" > "$D/out.jsonl" 2>/dev/null; }
t0=$(ms); run_rb; t1=$(ms); rb_cold=$((t1 - t0))
passed=$(grep '"event":"host.finished"' "$D/out.jsonl" | grep -c '"status":"passed"' || true)
t0=$(ms); run_rb; t1=$(ms); rb_again=$((t1 - t0))
export ANSIBLE_HOST_KEY_CHECKING=True ANSIBLE_SSH_ARGS="-F $D/ssh_config -o ControlMaster=auto -o ControlPersist=60s" ANSIBLE_PYTHON_INTERPRETER=auto_silent
export ANSIBLE_SSH_CONTROL_PATH_DIR="$D/cp"
t0=$(ms); "$VENV/bin/ansible" -i "$D/inventory.ini" web -f 50 -m command -a true >"$D/an1.txt" 2>&1 || true; t1=$(ms); an_cold=$((t1 - t0))
t0=$(ms); "$VENV/bin/ansible" -i "$D/inventory.ini" web -f 50 -m command -a true >"$D/an2.txt" 2>&1 || true; t1=$(ms); an_warm=$((t1 - t0))
# ssh alone, 50 at a time, cold (no master): the floor the engine adds to.
t0=$(ms); seq 1 "$N" | xargs -P 50 -I{} ssh -F "$D/ssh_config" -o BatchMode=yes -o ControlMaster=no -o ControlPath=none h{} true; t1=$(ms); ssh_cold=$((t1 - t0))
echo "hosts: $N, concurrency 50"
echo "runbook run (cold, masters closed at its end): ${rb_cold} ms ($passed hosts passed; again: ${rb_again} ms)"
echo "ssh alone, xargs -P 50 (cold):               ${ssh_cold} ms"
echo "ansible -f 50 -m command (cold):             ${an_cold} ms ($(grep -c "CHANGED\|SUCCESS" "$D/an1.txt") hosts ok)"
echo "ansible -f 50 -m command (warm sockets):     ${an_warm} ms"
python3 - "$rb_cold" "$an_cold" "$ssh_cold" "$N" <<'EOP'
import sys
rb, an, ssh, n = map(int, sys.argv[1:])
print(f"ratio ansible cold / runbook cold: {an / rb:.1f}x")
print(f"engine overhead beyond ssh: {(rb - ssh) / n:.1f} ms per host (whole process, incl. start-up and the run record)")
EOP
