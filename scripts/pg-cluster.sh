#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests and benchmarks (see ECOSYSTEM.md, "PostgreSQL").
#   scripts/pg-cluster.sh start DIR   -> prints postgres://runbook@127.0.0.1:PORT/rb
#                                        (a cluster DIR already holds, stopped: started again on its port)
#   scripts/pg-cluster.sh stop DIR       (the data and the port are kept: `start DIR` brings it back)
#   scripts/pg-cluster.sh restart DIR (same port; for tests of replicas riding out a restart)
#   scripts/pg-cluster.sh down DIR / up DIR (an outage: stopped fast, later started on the same port)
# Needs Debian's postgresql (15) and root (initdb runs as the postgres user).
set -euo pipefail
cmd=${1:?start|stop|restart|down|up}; dir=${2:?cluster folder}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "pg-cluster: PostgreSQL is not installed (apt-get install postgresql)" >&2; exit 2; }
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case "$cmd" in
start)
  if [ -d "$dir/data" ] && [ -f "$dir/port" ]; then
    port=$(cat "$dir/port")
    as_pg "$bin/pg_ctl" -D "$dir/data" -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" -l "$dir/log" -w start >/dev/null
    echo "postgres://runbook@127.0.0.1:$port/rb"
    exit 0
  fi
  mkdir -p "$dir"; [ "$(id -u)" = 0 ] && chown postgres "$dir"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  as_pg "$bin/initdb" -D "$dir/data" -A trust -U runbook >"$dir/initdb.log" 2>&1
  echo "$port" > "$dir/port"; [ "$(id -u)" = 0 ] && chown postgres "$dir/port"
  as_pg "$bin/pg_ctl" -D "$dir/data" -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" -l "$dir/log" -w start >/dev/null
  psql -q -h 127.0.0.1 -p "$port" -U runbook -d postgres -c 'create database rb' >/dev/null
  echo "postgres://runbook@127.0.0.1:$port/rb"
  ;;
stop)
  [ -d "$dir/data" ] && as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  ;;
restart|down|up)
  port=$(cat "$dir/port")
  if [ "$cmd" != up ]; then as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null; fi
  if [ "$cmd" != down ]; then
    as_pg "$bin/pg_ctl" -D "$dir/data" -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=off" -l "$dir/log" -w start >/dev/null
  fi
  ;;
*) echo "usage: $0 start|stop|restart|down|up DIR" >&2; exit 2 ;;
esac
