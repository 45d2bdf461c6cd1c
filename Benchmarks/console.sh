#!/usr/bin/env bash
# The web console's figures (release build, loopback):
#  1. the runs list with 100,000 runs in history: /runs first byte and whole answer, the /ui/ page, and
#     (with Selenium and Chromium) the full render in headless Chromium;
#  2. event recorded to event shown in the browser, p50/p99 (needs Selenium and Chromium);
#  3. alert to first step p50/p99 at 200 alerts/s, without and with 200 SSE watchers on one run.
# Usage: Benchmarks/console.sh [history_runs] [alerts_per_second] [seconds]   (default 100000 200 20)
set -euo pipefail
cd "$(dirname "$0")/.."
history=${1:-100000}; rate=${2:-200}; seconds=${3:-20}
swift build -c release --product runbook >/dev/null
bin=$PWD/.build/release/runbook
work=$(mktemp -d)
mkdir -p "$work/rb"
cat > "$work/rb/bench.yaml" <<'YAML'
runbook: bench
params:
  instance: { default: x, pattern: "^[a-z0-9.:-]+$" }
triggers:
  - alert: { alertname: BenchAlert }
    params: { instance: "{{ alert.labels.instance }}" }
guards: { auto: true }
steps:
  - id: first
    phase: diagnose
    wait: 1ms
YAML
python3 - "$work/rb" <<'PY'
import sys
steps = "".join(f"  - id: s{i}\n    phase: diagnose\n    wait: 20ms\n" + (f"    needs: [s{i-1}]\n" if i else "") for i in range(100))
open(sys.argv[1] + "/chain.yaml", "w").write("runbook: chain\nsteps:\n  - id: hold\n    phase: detect\n    wait: 2s\n" + steps)
open(sys.argv[1] + "/long.yaml", "w").write("runbook: long\nsteps:\n  - id: hold\n    phase: diagnose\n    wait: 600s\n")
PY
printf 'root:admin:bench-admin-0123456789\nrita:reader:bench-reader-0123456789\nam:alerts:bench-alerts-0123456789\n' > "$work/tokens"; chmod 600 "$work/tokens"
"$bin" serve --listen 127.0.0.1:0 --runbooks "$work/rb" --state-dir "$work/state" --token-file "$work/tokens" --max-watchers 512 >"$work/serve.log" 2>&1 &
serve_pid=$!
trap 'kill $serve_pid 2>/dev/null; wait $serve_pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 200); do grep -q "listening on" "$work/serve.log" 2>/dev/null && break; sleep 0.1; done
base=$(grep -o 'http://127.0.0.1:[0-9]*' "$work/serve.log" | head -1)
python3 - "$base" "$work" "$history" "$rate" "$seconds" <<'PY'
import datetime, http.client, json, os, sqlite3, statistics, sys, threading, time, urllib.parse, urllib.request
base, work, history, rate, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
ADMIN, READER, ALERTS = "bench-admin-0123456789", "bench-reader-0123456789", "bench-alerts-0123456789"
def q(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")
def call(method, path, body=None, token=ADMIN):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode() if body is not None else None, method=method,
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")

# 1. History of N finished runs, written straight into the store (as N earlier runs would have left it).
db = sqlite3.connect(work + "/state/runbook.sqlite", timeout=30)
t0 = datetime.datetime(2026, 1, 1)
rows = []
for i in range(history):
    t = t0 + datetime.timedelta(seconds=30 * i)
    rows.append((f"{t:%Y-%m-%d-%H%M%S}-{i:08x}", "bench" if i % 3 else "other", "alert:BenchAlert", f"fp{i}",
                 "mitigated" if i % 7 else "failed", t.strftime("%Y-%m-%d %H:%M:%S.000"), 1200, 0, 0))
db.executemany("INSERT INTO runs (id, runbook, trigger, fingerprint, outcome, started, duration_ms, dry_run, drill) VALUES (?,?,?,?,?,?,?,?,?)", rows)
db.commit()
def timed(path, token=READER, n=20):
    u = urllib.parse.urlsplit(base)
    first, total = [], []
    for _ in range(n):
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        t = time.perf_counter()
        c.request("GET", path, headers={"Authorization": "Bearer " + token})
        r = c.getresponse()
        r.read(1)
        first.append((time.perf_counter() - t) * 1000)
        r.read()
        total.append((time.perf_counter() - t) * 1000)
        c.close()
    return statistics.median(first), statistics.median(total)
for path in ["/runs?limit=50", "/runs?limit=50&runbook=bench&status=finished", "/runs?limit=50&outcome=failed&before=" + rows[history // 2][0], "/runs?limit=50&q=fp4242"]:
    f, t = timed(path)
    print(f"{history} runs in history: GET {path}: first byte {f:.1f} ms, whole answer {t:.1f} ms (median of 20)")
try:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait
    o = Options()
    for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"]: o.add_argument(a)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=o)
except Exception as e:
    d = None
    print(f"(no browser figures: {e.__class__.__name__})")
if d:
    d.set_script_timeout(60)
    d.get(base + "/ui/login")
    d.find_element("name", "token").send_keys(READER)
    d.find_element("css selector", "form button").click()
    renders = []
    for _ in range(10):
        d.get(base + "/ui/")
        ms = d.execute_async_script("""const done = arguments[0];
            (function poll() { if (document.querySelectorAll('#runs tbody tr[data-run]').length >= 50) done(performance.now()); else requestAnimationFrame(poll); })();""")
        renders.append(ms)
        parts = d.execute_script("""const r = {}; for (const e of performance.getEntriesByType('resource')) r[e.name.replace(location.origin, '')] = [Math.round(e.startTime), Math.round(e.responseEnd)];
            const n = performance.getEntriesByType('navigation')[0]; r.page = [0, Math.round(n.responseEnd)]; r.dom = Math.round(n.domContentLoadedEventEnd); return r;""")
    print("  where the last render's time went (start, end ms):", json.dumps(parts))
    print(f"{history} runs in history: /ui/ in Chromium, navigation to 50 rows rendered: median {statistics.median(renders):.0f} ms, max {max(renders):.0f} ms")

    # 2. Event recorded to event shown: the page notes when each timeline line appears.
    lat = []
    for _ in range(3):
        run = call("POST", "/hooks/run", {"runbook": "chain"})["runs"][0]["run"]
        d.get(base + "/ui/runs/" + run)
        WebDriverWait(d, 30).until(lambda d: d.find_elements("id", "timeline"))
        d.execute_script("""window.__lat = []; new MutationObserver(ms => { const now = Date.now();
            for (const m of ms) for (const li of m.addedNodes) { const t = li.querySelector && li.querySelector('.t');
              if (!t) continue; const [h, mi, s] = t.textContent.split(':'); const d = new Date(); d.setUTCHours(+h, +mi, 0, 0);
              window.__lat.push(now - (d.getTime() + parseFloat(s) * 1000)); } }).observe(document.getElementById('timeline'), {childList: true});""")
        while call("GET", "/runs/" + run)["outcome"] is None: time.sleep(0.2)
        time.sleep(0.5)
        lat += d.execute_script("return window.__lat")
    live = [x for x in lat if x < 1500]  # lines already recorded when the page loaded are not live
    print(f"event recorded to event shown in Chromium: {len(live)} live events, p50 {q(live, .5):.1f} ms, p99 {q(live, .99):.1f} ms, max {max(live):.1f} ms")
    d.quit()

# 2b. Event recorded to event received by an SSE client (no browser).
lat = []
for _ in range(3):
    run = call("POST", "/hooks/run", {"runbook": "chain"})["runs"][0]["run"]
    u = urllib.parse.urlsplit(base)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    c.request("GET", f"/runs/{run}/events", headers={"Authorization": "Bearer " + READER})
    r = c.getresponse()
    while True:
        line = r.fp.readline()
        if not line: break
        if line.startswith(b"data: "):
            e = json.loads(line[6:])
            t = datetime.datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()
            lat.append((time.time() - t) * 1000)
            # The stream ends here; the kept-alive connection would only wait for the server's idle timeout.
            if e["event"] == "run.finished": break
live = [x for x in lat if x < 1500]
print(f"event recorded to event received by an SSE client: {len(live)} live events, p50 {q(live, .5):.1f} ms, p99 {q(live, .99):.1f} ms")

# 3. Alert to first step at `rate` alerts/s, without and with 200 SSE watchers on one long run.
def storm(label):
    sent, lock = {}, threading.Lock()
    def send(i):
        fp = f"{label}{i:08d}"
        body = json.dumps({"version": "4", "status": "firing", "receiver": "bench", "groupKey": "{}:{}", "truncatedAlerts": 0,
                           "alerts": [{"status": "firing", "labels": {"alertname": "BenchAlert", "instance": f"h{i}"}, "annotations": {},
                                       "startsAt": "2026-11-25T14:47:04.491259587Z", "endsAt": "0001-01-01T00:00:00Z", "fingerprint": fp}]}).encode()
        t = time.time()
        try:
            r = urllib.request.urlopen(urllib.request.Request(base + "/hooks/alertmanager", data=body, method="POST",
                                       headers={"Authorization": "Bearer " + ALERTS}), timeout=10)
            if r.status == 202:
                with lock: sent[fp] = t
        except Exception as e:
            print("error", e, file=sys.stderr)
    threads, start = [], time.time()
    for i in range(rate * seconds):
        delay = start + i / rate - time.time()
        if delay > 0: time.sleep(delay)
        th = threading.Thread(target=send, args=(i,)); th.start(); threads.append(th)
    for th in threads: th.join()
    time.sleep(2)
    db = sqlite3.connect(work + "/state/runbook.sqlite", timeout=30)
    ids = dict(db.execute("SELECT fingerprint, id FROM runs WHERE fingerprint LIKE ?", (label + "%",)).fetchall())
    lat = []
    for fp, t in sent.items():
        rid = ids.get(fp)
        if not rid or not os.path.exists(f"{work}/state/runs/{rid}.jsonl"): continue
        for line in open(f"{work}/state/runs/{rid}.jsonl"):
            e = json.loads(line)
            if e["event"] == "step.started":
                ts = datetime.datetime.strptime(e["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp()
                lat.append((ts - t) * 1000); break
    return len(sent), lat
n, lat = storm("a")
print(f"{rate} alerts/s for {seconds} s, no watchers: {n} accepted, {len(lat)} started; alert to first step p50 {q(lat, .5):.1f} ms, p99 {q(lat, .99):.1f} ms")
watched = call("POST", "/hooks/run", {"runbook": "long"})["runs"][0]["run"]
u = urllib.parse.urlsplit(base)
opened, stop = [0], threading.Event()
def watch():
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=700)
    c.request("GET", f"/runs/{watched}/events", headers={"Authorization": "Bearer " + READER})
    r = c.getresponse()
    if r.status == 200: opened[0] += 1
    while not stop.is_set():
        if not r.fp.readline(): break
watchers = [threading.Thread(target=watch, daemon=True) for _ in range(200)]
for w in watchers: w.start()
time.sleep(2)
n, lat = storm("b")
print(f"{rate} alerts/s for {seconds} s, {opened[0]} SSE watchers on one run: {n} accepted, {len(lat)} started; alert to first step p50 {q(lat, .5):.1f} ms, p99 {q(lat, .99):.1f} ms")
stop.set()
PY
