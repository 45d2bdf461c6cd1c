#!/usr/bin/env bash
# Counts crashes of `runbook run` on a runbook of N parallel `command` checks, over RUNS runs.
# Usage: Benchmarks/crashes.sh [BINARY] [RUNS] [N]     (defaults: the debug build, 1000 runs, 64 commands)
# Prints: runs, crashes (exit >= 128: a signal), other failures, and crashes per 1,000 runs.
set -uo pipefail
cd "$(dirname "$0")/.."
bin=${1:-$(swift build --show-bin-path)/runbook}
runs=${2:-1000}
n=${3:-64}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rb"
{
  echo "runbook: par"
  echo "steps:"
  for i in $(seq 1 "$n"); do
    printf '  - id: c%s\n    phase: detect\n    check:\n      command: { argv: ["sh", "-c", "echo %s"] }\n' "$i" "$i"
  done
} > "$work/rb/par.yaml"
crashes=0; other=0
for i in $(seq 1 "$runs"); do
  "$bin" run par --runbooks "$work/rb" --state-dir "$work/state" --json --yes > /dev/null 2> "$work/err"
  rc=$?
  if [ $rc -ge 128 ]; then crashes=$((crashes + 1)); elif [ $rc -ne 0 ]; then other=$((other + 1)); fi
done
echo "binary: $bin"
echo "runs: $runs of $n parallel commands; crashes: $crashes; other failures: $other"
awk -v c="$crashes" -v r="$runs" 'BEGIN { printf "crashes per 1,000 runs: %.1f\n", c * 1000 / r }'
