#!/usr/bin/env python3
"""Half-open request heads against `runbook serve`, then real alerts through them.

Usage: half_open_flood.py PORT HALF_OPEN ALERTS TOKEN [ALERTNAME]

Opens HALF_OPEN connections from 127.0.0.1 that send the start of a request head without a token and
then one byte every 200 ms, never ending it; a connection the server closes is opened again at once.
Once they are open, posts ALERTS real Alertmanager payloads (one alert each, distinct fingerprints,
`Authorization: Bearer TOKEN`) one after another, each with a 60 s limit, and prints one JSON line:
{"statuses": [...], "latencies_ms": [...], "opened": N, "closed_by_server": N}.
"""
import json
import multiprocessing
import selectors
import socket
import sys
import time
import urllib.error
import urllib.request

port, count, alerts, token = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
alertname = sys.argv[5] if len(sys.argv) > 5 else "Flood"
HEAD = b"POST /hooks/alertmanager HTTP/1.1\r\nHost: runbook\r\nContent-Type: application/json\r\nX-Slow: "
# The flood runs in a process of its own, so the alerts' timings are not its Python lock waits.
opened = multiprocessing.Value("l", 0)
closed_by_server = multiprocessing.Value("l", 0)
stop = multiprocessing.Event()
ready = multiprocessing.Event()
sel = None


def open_one():
    s = socket.socket()
    s.settimeout(2)
    try:
        s.connect(("127.0.0.1", port))
        s.sendall(HEAD)
    except OSError:
        s.close()
        return False
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
    with opened.get_lock():
        opened.value += 1
    return True


def reopen(s):
    try:
        sel.unregister(s)
    except (KeyError, ValueError):
        pass
    s.close()
    with closed_by_server.get_lock():
        closed_by_server.value += 1
    open_one()


def flood():
    global sel
    sel = selectors.DefaultSelector()
    for _ in range(count):
        open_one()
    ready.set()
    last_trickle = time.time()
    while not stop.is_set():
        for key, _ in sel.select(timeout=0.05):
            try:
                data = key.fileobj.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                reopen(key.fileobj)
        # Top up after failed connects, and trickle one more byte of the head on each.
        while len(sel.get_map()) < count and not stop.is_set():
            if not open_one():
                break
        if time.time() - last_trickle >= 0.2:
            last_trickle = time.time()
            for key in list(sel.get_map().values()):
                try:
                    key.fileobj.send(b"a")
                except (BlockingIOError, InterruptedError):
                    pass
                except OSError:
                    reopen(key.fileobj)


def post(i):
    body = json.dumps({"version": "4", "status": "firing", "receiver": "runbook", "alerts": [
        {"status": "firing", "labels": {"alertname": alertname, "instance": f"node-{i}"},
         "fingerprint": f"flood-{i:04d}-{time.time_ns()}", "startsAt": "2026-11-30T10:00:00Z"}]}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/hooks/alertmanager", data=body, method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    t = time.time()
    try:
        r = urllib.request.urlopen(req, timeout=60)
        r.read()
        code = r.status
    except urllib.error.HTTPError as e:
        code = e.code
    except Exception as e:  # no answer: a cut connection or the 60 s limit
        code = 0
        print(f"alert {i}: {e}", file=sys.stderr)
    return code, (time.time() - t) * 1000


flooder = multiprocessing.Process(target=flood, daemon=True)
flooder.start()
ready.wait(120)
statuses, latencies = [], []
for i in range(alerts):
    code, ms = post(i)
    statuses.append(code)
    latencies.append(round(ms, 1))
stop.set()
flooder.join(5)
if flooder.is_alive():
    flooder.kill()
print(json.dumps({"statuses": statuses, "latencies_ms": latencies, "opened": opened.value,
                  "closed_by_server": closed_by_server.value}), flush=True)
