#!/usr/bin/env bash
# Start-up and size of the shipped binary: median of N runs (default 20) of `runbook --help` and
# `runbook validate runbooks`, wall time of the whole process, and the binary's size and libraries.
# Usage: Benchmarks/startup.sh [runs] [BINARY]
#   BINARY defaults to the self-contained release build (scripts/build-release.sh, static Swift
#   runtime, stripped); pass another binary to compare (e.g. a dynamically linked release build).
# Goals (issue 20): --help under 8 ms, validate under 12 ms on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
bin=${2:-}
if [ -z "$bin" ]; then
  scripts/build-release.sh .build/dist >/dev/null
  bin=.build/dist/runbook
fi
echo "binary: $bin, $(du -h "$bin" | cut -f1) ($(stat -c %s "$bin") bytes), $(ldd "$bin" | wc -l) shared libraries:"
ldd "$bin" | awk '{print "  " $1}'
python3 - "$bin" "$runs" <<'PY'
import subprocess, sys, time, statistics
bin, runs = sys.argv[1], int(sys.argv[2])
for args in (["--help"], ["validate", "runbooks"]):
    subprocess.run([bin] + args, check=True, capture_output=True)  # warm the page cache
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run([bin] + args, check=True, capture_output=True)
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    print(f"runbook {' '.join(args)} ({runs} runs): median {statistics.median(times):.1f} ms, min {times[0]:.1f} ms, max {times[-1]:.1f} ms")
PY
