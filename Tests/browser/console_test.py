#!/usr/bin/env python3
"""The web console in a real browser: headless Chromium driven by Selenium against the debug
`runbook serve` on port 0 with a token file and real runbooks. Builds nothing.

Usage: Tests/browser/console_test.py [--binary .build/debug/runbook] [--screenshots docs]
With RUNBOOK_TEST_DATABASE_URL set, it also watches a run started on another PostgreSQL replica.
"""
import argparse, json, os, re, shutil, subprocess, sys, tempfile, threading, time, urllib.error, urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ADMIN, READER, OPERATOR, ALERTS = "adm1n-0123456789abcdef", "read3r-0123456789abcdef", "op3rator-0123456789abcdef", "al3rts-0123456789abcdef"
FLAGS = {"$schema": "https://flagd.dev/schema/v0/flags.json", "flags": {"image-resize": {
    "state": "ENABLED", "variants": {"on": True, "off": False}, "defaultVariant": "on"}}}

RUNBOOKS = {
    "slow-fix": """
runbook: slow-fix
title: Slow fix
params:
  instance: { default: "web-1" }
  hold: { default: "0", pattern: "^[0-9]+$" }
triggers:
  - alert: { alertname: SlowThing }
    params: { instance: "{{ alert.labels.instance }}" }
guards: { auto: true }
steps:
  - id: look
    phase: detect
    check: { command: ["sleep", "1"] }
  - id: dig
    phase: diagnose
    check: { command: ["sleep", "1"] }
  - id: dig-more
    phase: diagnose
    needs: [dig]
    check: { command: ["sleep", "1"] }
  - id: flip
    phase: mitigate
    flag: { file: "DIR/flags.json", key: image-resize, variant: "off" }
  - id: hold
    phase: mitigate
    needs: [flip]
    command: ["sh", "-c", "sleep {{ params.hold }}"]
  - id: fine
    phase: verify
    check: { command: ["true"] }
""",
    "gated": """
runbook: gated
title: Gated change
steps:
  - id: look
    phase: detect
    check: { command: ["true"] }
  - id: off
    phase: mitigate
    confirm: { approvals: 1, timeout: 1h }
    flag: { file: "DIR/gate-flags.json", key: image-resize, variant: "off" }
""",
}

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what, flush=True)
    if not ok:
        failures.append(what)


class Server:
    def __init__(self, binary, folder, extra=()):
        self.proc = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--runbooks", folder + "/rb",
                                      "--token-file", folder + "/tokens", *extra],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        self.base = None
        deadline = time.time() + 60
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.search(r"listening on (http://\S+)", line)
            if m:
                self.base = m.group(1)
                break
        if not self.base:
            self.stop()
            raise SystemExit("runbook serve did not start")
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()

    def api(self, method, path, body=None, token=ADMIN):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                text = r.read().decode()
                return r.status, (json.loads(text) if text.strip() else None)
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def start_run(self, runbook, params=None, token=ADMIN):
        status, body = self.api("POST", "/hooks/run", {"runbook": runbook, "params": params or {}, "confirm": True}, token)
        assert status == 202, (status, body)
        return body["runs"][0]["run"]

    def run(self, run_id):
        return self.api("GET", "/runs/" + run_id)[1]

    def wait_for(self, run_id, predicate, seconds=60):
        deadline = time.time() + seconds
        while time.time() < deadline:
            r = self.run(run_id)
            if predicate(r):
                return r
            time.sleep(0.1)
        return self.run(run_id)

    def stop(self):
        try:
            os.killpg(self.proc.pid, 15)
            self.proc.wait(timeout=20)
        except Exception:
            try:
                os.killpg(self.proc.pid, 9)
            except Exception:
                pass


def process_alive(needle):
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open("/proc/%s/stat" % pid) as f:
                if ") Z " in f.read():
                    continue
        except OSError:
            continue
        if needle in cmd:
            return True
    return False


def variant(folder):
    with open(folder + "/flags.json") as f:
        return json.load(f)["flags"]["image-resize"]["defaultVariant"]


def browser():
    options = Options()
    for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1300", "--disable-gpu"]:
        options.add_argument(a)
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary:
        options.binary_location = binary
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    return webdriver.Chrome(service=Service(driver_path), options=options)


def sign_in(d, base, token):
    d.get(base + "/ui/login")
    d.find_element(By.NAME, "token").send_keys(token)
    d.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
    WebDriverWait(d, 20).until(lambda d: d.current_url.endswith("/ui/"))


def sign_out(d):
    d.find_element(By.CSS_SELECTOR, "#logout button").click()
    WebDriverWait(d, 20).until(lambda d: "/ui/login" in d.current_url)


def timeline(d):
    return d.execute_script("return [...document.querySelectorAll('#timeline li')].map(li => [Number(li.dataset.id), li.dataset.event])")


def header_state(d):
    return d.execute_script("const s = document.querySelector('#header [data-state]'); return s ? s.dataset.state : null")


def fetch_status(d, method, path):
    return d.execute_async_script("const done = arguments[arguments.length - 1];"
                                  "fetch(arguments[1], {method: arguments[0], headers: {'Content-Type': 'application/json'}, body: '{}'})"
                                  ".then(r => done(r.status), e => done(String(e)));", method, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=".build/debug/runbook")
    ap.add_argument("--screenshots", default=None, help="folder to write the README's screenshots to")
    args = ap.parse_args()
    binary = os.path.abspath(args.binary)
    folder = tempfile.mkdtemp(prefix="runbook-browser-")
    os.makedirs(folder + "/rb")
    for name, text in RUNBOOKS.items():
        with open("%s/rb/%s.yaml" % (folder, name), "w") as f:
            f.write(text.replace("DIR", folder))
    for flags in ("flags.json", "gate-flags.json"):
        with open(folder + "/" + flags, "w") as f:
            json.dump(FLAGS, f, indent=2)
    with open(folder + "/tokens", "w") as f:
        f.write("root:admin:%s\nrita:reader:%s\nolga:operator:%s\nam:alerts:%s\n" % (ADMIN, READER, OPERATOR, ALERTS))
    os.chmod(folder + "/tokens", 0o600)
    server = Server(binary, folder, ["--state-dir", folder + "/state"])
    d = browser()
    d.set_script_timeout(30)
    shots = args.screenshots
    try:
        # A reader signs in and sees the runs list.
        first = server.start_run("slow-fix")
        sign_in(d, server.base, READER)
        WebDriverWait(d, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#runs tbody tr[data-run]"))
        check(first in d.find_element(By.ID, "runs").text, "a reader signed in sees the runs list")
        cookie = d.get_cookie("runbook_session")
        check(cookie is not None and cookie.get("httpOnly") and cookie.get("sameSite") == "Strict", "the session cookie is HttpOnly and SameSite=Strict")
        check(READER not in d.page_source and not d.execute_script("return document.cookie"), "the token is nowhere in the page or its script")
        # The list updates live: a new run appears without a reload.
        d.execute_script("window.__sameDocument = true")
        newer = server.start_run("slow-fix")
        WebDriverWait(d, 20).until(lambda d: newer in d.find_element(By.ID, "runs").text)
        check(d.execute_script("return window.__sameDocument === true"), "a new run appears on the runs list without reloading")
        server.wait_for(first, lambda r: r["outcome"])
        server.wait_for(newer, lambda r: r["outcome"])

        # Watch a run live: events arrive after the page loaded and the Gantt grows.
        live = server.start_run("slow-fix")
        d.get(server.base + "/ui/runs/" + live)
        WebDriverWait(d, 20).until(lambda d: len(timeline(d)) >= 1)
        at_load = len(timeline(d))
        d.execute_script("window.__sameDocument = true")
        WebDriverWait(d, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#gantt rect.bar.running"))
        step, w1 = d.execute_script("const r = document.querySelector('#gantt rect.bar.running'); return [r.dataset.step, Number(r.dataset.ms)]")
        time.sleep(0.6)
        w2 = d.execute_script("const r = document.querySelector('#gantt rect.bar[data-step=\"' + arguments[0] + '\"]'); return Number(r.dataset.ms)", step)
        if shots:
            d.save_screenshot(shots + "/console-live-run.png")
        WebDriverWait(d, 60).until(lambda d: header_state(d) not in (None, "running", "awaiting-approval"))
        events = timeline(d)
        check(len(events) - at_load >= 3, "at least three events arrived after the page loaded (%d)" % (len(events) - at_load))
        check(d.execute_script("return window.__sameDocument === true"), "the timeline grew with no reload")
        check(w2 > w1, "the running step's Gantt bar grew in real time (%s: %s ms -> %s ms)" % (step, w1, w2))
        recorded = [e["event"] for e in server.run(live)["timeline"]]
        check([e for _, e in events] == recorded, "the page shows exactly the recorded events, in order")
        check(len(d.find_elements(By.CSS_SELECTOR, "#gantt rect.bar")) >= 5, "the finished run's Gantt shows its steps")
        check(len(d.find_elements(By.CSS_SELECTOR, "#graph g.step.passed")) >= 3, "the step graph marks the steps that passed")
        WebDriverWait(d, 20).until(lambda d: d.find_elements(By.ID, "postmortem-download"))
        check("Timeline" in d.find_element(By.CSS_SELECTOR, "pre.postmortem").text, "the postmortem draft is shown with a download")
        if shots:
            d.save_screenshot(shots + "/console-finished-run.png")

        # Reload mid-run: nothing missed, nothing twice.
        again = server.start_run("slow-fix")
        d.get(server.base + "/ui/runs/" + again)
        WebDriverWait(d, 20).until(lambda d: any(e == "step.finished" for _, e in timeline(d)))
        d.refresh()
        WebDriverWait(d, 60).until(lambda d: header_state(d) not in (None, "running", "awaiting-approval"))
        ids = [i for i, _ in timeline(d)]
        recorded = [e["event"] for e in server.run(again)["timeline"]]
        check(ids == list(range(1, len(recorded) + 1)) and [e for _, e in timeline(d)] == recorded,
              "after a reload mid-run the page misses no event and repeats none")

        # A reader at a gate: no approve or cancel button, and forcing the request is refused.
        gate1 = server.start_run("gated")
        d.get(server.base + "/ui/runs/" + gate1)
        WebDriverWait(d, 30).until(lambda d: d.find_element(By.ID, "gate").is_displayed())
        check(not d.find_elements(By.ID, "approve") and not d.find_elements(By.ID, "cancel"), "a reader sees no approve or cancel button")
        check(fetch_status(d, "POST", "/runs/%s/approve" % gate1) == 403, "a reader forcing an approval gets 403")
        check(fetch_status(d, "POST", "/runs/%s/cancel" % gate1) == 403, "a reader forcing a cancel gets 403")
        sign_out(d)

        # An operator approves one gate and denies another.
        sign_in(d, server.base, OPERATOR)
        d.get(server.base + "/ui/runs/" + gate1)
        WebDriverWait(d, 30).until(lambda d: d.find_elements(By.ID, "approve"))
        gate_text = d.find_element(By.ID, "gate").text
        check("flag" in gate_text and "Deadline" in gate_text, "the gate shows the planned change and its deadline")
        if shots:
            d.save_screenshot(shots + "/console-gate.png")
        d.find_element(By.ID, "approve").click()
        r = server.wait_for(gate1, lambda r: r["outcome"])
        check(r["outcome"] == "mitigated", "an approved gate lets the run finish (%s)" % r["outcome"])
        gate2 = server.start_run("gated")
        d.get(server.base + "/ui/runs/" + gate2)
        WebDriverWait(d, 30).until(lambda d: d.find_elements(By.ID, "deny"))
        d.find_element(By.ID, "deny").click()
        r = server.wait_for(gate2, lambda r: r["outcome"])
        check(r["outcome"] == "refused", "a denied gate ends the run refused (%s)" % r["outcome"])

        # Cancel a running run: its process tree dies and its change is undone.
        with open(folder + "/flags.json", "w") as f:
            json.dump(FLAGS, f, indent=2)
        hold = server.start_run("slow-fix", {"hold": "293"})
        d.get(server.base + "/ui/runs/" + hold)
        WebDriverWait(d, 60).until(lambda d: process_alive("sleep 293"))
        check(variant(folder) == "off", "the run applied its change before the cancel")
        d.find_element(By.ID, "cancel").click()
        d.find_element(By.ID, "cancel-yes").click()
        r = server.wait_for(hold, lambda r: r["outcome"])
        check(r["outcome"] == "interrupted", "a cancelled run ends interrupted (%s)" % r["outcome"])
        deadline = time.time() + 20
        while process_alive("sleep 293") and time.time() < deadline:
            time.sleep(0.1)
        check(not process_alive("sleep 293"), "the cancelled step's process tree is gone")
        check(variant(folder) == "on", "the cancelled run's change was undone")
        cancelled = [e for e in r["timeline"] if e["event"] == "run.cancelled"]
        check(len(cancelled) == 1 and cancelled[0].get("by") == "olga", "run.cancelled records who cancelled")

        # Hostile labels are shown as text: one with control characters (its run is refused, the
        # refusal names the value), one of markup only (its run starts with it as a param).
        def alert(instance, fingerprint):
            payload = {"version": "4", "status": "firing", "alerts": [{"status": "firing", "fingerprint": fingerprint,
                       "labels": {"alertname": "SlowThing", "instance": instance}}]}
            status, body = server.api("POST", "/hooks/alertmanager", payload, ALERTS)
            return body["runs"][0]["run"] if status == 202 and body["runs"] else None
        controls = alert("<script>window.pwned=1</script>\u001b[31mred\u202e", "hostile-1")
        markup = alert("<img src=x onerror=\"window.pwned=2\"><script>window.pwned=3</script>", "hostile-2")
        check(controls is not None and markup is not None, "the hostile alerts were recorded")
        if controls:
            d.get(server.base + "/ui/runs/" + controls)
            WebDriverWait(d, 20).until(lambda d: len(timeline(d)) >= 1)
            text = d.find_element(By.ID, "main").text
            check("<script>window.pwned=1</script>" in text and "\\u{1B}" in text and "\\u{202E}" in text and "\u001b" not in text,
                  "a label with control characters is shown as text, escaped as in the terminal")
            check(d.execute_script("return window.pwned === undefined && !document.querySelector('main script, main img')"),
                  "the label ran no script")
        if markup:
            d.get(server.base + "/ui/runs/" + markup)
            WebDriverWait(d, 20).until(lambda d: "instance=" in d.find_element(By.ID, "header").text)
            text = d.find_element(By.ID, "header").text
            check('<img src=x onerror="window.pwned=2"><script>window.pwned=3</script>' in text, "a label of markup is shown as text")
            check(d.execute_script("return window.pwned === undefined && !document.querySelector('main script, main img')"),
                  "the markup label ran no script and loaded no image")
            server.wait_for(markup, lambda r: r["outcome"])

        d.get(server.base + "/ui/")
        WebDriverWait(d, 20).until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#runs tbody tr[data-run]")) >= 5)
        if shots:
            d.save_screenshot(shots + "/console-runs.png")
        d.get(server.base + "/ui/runbooks")
        WebDriverWait(d, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#runbook-gated svg.graph"))
        check(len(d.find_elements(By.CSS_SELECTOR, "button.dry-run")) == 2, "an operator sees the dry-run and run buttons")

        replica_test(binary, folder, d)
    finally:
        d.quit()
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    if failures:
        print("%d browser check(s) failed" % len(failures))
        sys.exit(1)
    print("every browser check passed")


def replica_test(binary, folder, d):
    """Two replicas on one PostgreSQL database: a run started on B shows live on A's page."""
    url = os.environ.get("RUNBOOK_TEST_DATABASE_URL")
    if not url:
        print("skip the replica check: RUNBOOK_TEST_DATABASE_URL is not set")
        return
    a = Server(binary, folder, ["--database", url])
    b = Server(binary, folder, ["--database", url])
    try:
        sign_in(d, a.base, READER)
        run_id = b.start_run("slow-fix")
        d.get(a.base + "/ui/runs/" + run_id)
        WebDriverWait(d, 20).until(lambda d: len(timeline(d)) >= 1)
        at_load = len(timeline(d))
        WebDriverWait(d, 60).until(lambda d: header_state(d) not in (None, "running", "awaiting-approval"))
        check(len(timeline(d)) - at_load >= 3, "a run started on another PostgreSQL replica shows live (%d events after load)" % (len(timeline(d)) - at_load))
    finally:
        a.stop()
        b.stop()


if __name__ == "__main__":
    main()
