#!/usr/bin/env bash
# Engine overhead and waiting at scale, on the release binary:
#  1. a 2,000-step chain of `wait: 1ms` steps (a wait must be positive): the engine's CPU time per
#     step (aim: under 20 us), and wall time per step beyond the wait (timer leeway included)
#  2. 1,000 parallel `wait: 2s` steps: wall time (aim < 2.2 s), peak threads (< 32), peak RSS (< 60 MB)
set -euo pipefail
cd "$(dirname "$0")/.."
# RUNBOOK_BENCH_BIN=PATH: measure that binary (e.g. the shipped .build/dist/runbook) instead of building one.
if [ -n "${RUNBOOK_BENCH_BIN:-}" ]; then bin=$RUNBOOK_BENCH_BIN; else
  swift build -c release --product runbook >/dev/null
  bin=$PWD/.build/release/runbook
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/rb"
python3 - "$work/rb" <<'PY'
import sys
d = sys.argv[1]
with open(f"{d}/chain.yaml", "w") as f:
    f.write("runbook: chain\nsteps:\n")
    for i in range(2000):
        f.write(f"  - id: s{i}\n    phase: mitigate\n    wait: 1ms\n" + (f"    needs: [s{i-1}]\n" if i else ""))
with open(f"{d}/empty.yaml", "w") as f:
    f.write("runbook: empty\nsteps:\n  - id: s0\n    phase: mitigate\n    wait: 1ms\n")
with open(f"{d}/fanout.yaml", "w") as f:
    f.write("runbook: fanout\nsteps:\n")
    for i in range(1000):
        f.write(f"  - id: w{i}\n    phase: mitigate\n    wait: 2s\n")
PY
python3 - "$bin" "$work" <<'PY'
import subprocess, sys, time, statistics, os, resource
bin, work = sys.argv[1], sys.argv[2]
def cpu():  # CPU seconds of every child reaped so far
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime
last_cpu = [0.0]
def run(name, extra=()):
    c0 = cpu()
    t = time.perf_counter()
    p = subprocess.Popen([bin, "run", name, "--runbooks", f"{work}/rb", "--state-dir", f"{work}/state", "--json", *extra],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak_threads, peak_rss = 0, 0
    while p.poll() is None:
        try:
            for line in open(f"/proc/{p.pid}/status"):
                if line.startswith("Threads:"): peak_threads = max(peak_threads, int(line.split()[1]))
                if line.startswith("VmHWM:"): peak_rss = max(peak_rss, int(line.split()[1]))
        except FileNotFoundError:
            pass
        time.sleep(0.01)
    wall = time.perf_counter() - t
    last_cpu[0] = cpu() - c0
    return wall, peak_threads, peak_rss
def validate():
    c0 = cpu()
    t = time.perf_counter()
    subprocess.run([bin, "validate", f"{work}/rb/chain.yaml"], check=True, capture_output=True)
    last_cpu[0] = cpu() - c0
    return time.perf_counter() - t
base = statistics.median(run("empty")[0] for _ in range(5))
loads, load_cpus = [], []
for _ in range(5): loads.append(validate()); load_cpus.append(last_cpu[0])
load, load_cpu = statistics.median(loads), statistics.median(load_cpus)
chains, chain_cpus = [], []
for _ in range(5): chains.append(run("chain")[0]); chain_cpus.append(last_cpu[0])
chain, chain_cpu = statistics.median(chains), statistics.median(chain_cpus)
per_step = (chain - load - 2000 * 0.001) / 2000 * 1e6
cpu_per_step = (chain_cpu - load_cpu) / 2000 * 1e6
print(f"2,000-step chain of wait 1ms: {chain*1000:.0f} ms wall; loading and validating it alone {load*1000:.0f} ms; a 1-step run {base*1000:.0f} ms")
print(f"engine CPU time per step: {cpu_per_step:.1f} us (state machine, Dispatch hops, and 2 timeline events a step written to the JSONL file and stdout; loading the runbook taken off)")
print(f"wall time per step beyond the 1 ms wait: {per_step:.1f} us (includes the timer's 1 ms leeway: a 1 ms wait ends 1-2 ms later)")
wall, threads, rss = run("fanout", ("--max-parallel", "1000"))
print(f"1,000 parallel wait 2s: {wall:.2f} s wall, peak {threads} threads, peak RSS {rss/1024:.1f} MB")
PY
