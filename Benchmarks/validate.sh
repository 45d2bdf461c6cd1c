#!/usr/bin/env bash
# Prints how long `runbook validate runbooks` takes as a whole process (aim: under 30 ms).
# Usage: Benchmarks/validate.sh [runs]   (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
swift build -c release --product runbook >/dev/null
bin=.build/release/runbook
python3 - "$bin" "$runs" <<'PY'
import subprocess, sys, time, statistics
bin, runs = sys.argv[1], int(sys.argv[2])
subprocess.run([bin, "validate", "runbooks"], check=True, capture_output=True)  # warm the page cache
times = []
for _ in range(runs):
    t = time.perf_counter()
    subprocess.run([bin, "validate", "runbooks"], check=True, capture_output=True)
    times.append((time.perf_counter() - t) * 1000)
times.sort()
print(f"runbook validate runbooks ({runs} runs): median {statistics.median(times):.1f} ms, "
      f"p90 {times[int(len(times) * 0.9) - 1]:.1f} ms, min {times[0]:.1f} ms")
PY
