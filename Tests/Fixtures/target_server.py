#!/usr/bin/env python3
"""A small HTTP target for the action tests, on 127.0.0.1 (port 0: it prints the port it got).

/health          200 "ok"
/health/db       200 {"db": {"up": true}} (503 after POST /control/db-down)
/slow            answers after 1.5 s
/metrics         process_resident_memory_bytes following the mode set by POST /control/mode/NAME:
                   grow  (2 MiB/s), flat, spike (one sample 50 MiB high, then flat)
/hook (POST)     records the body; GET /hooks lists what was posted
"""
import json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

state = {"mode": "flat", "t0": time.time(), "db_up": True, "hooks": [], "spike_at": None, "samples": 0}
lock = threading.Lock()
BASE = 100 * 1024 * 1024


def memory():
    with lock:
        state["samples"] += 1
        mode, t = state["mode"], time.time() - state["t0"]
        if mode == "grow":
            return BASE + 2 * 1024 * 1024 * t
        if mode == "spike":
            if state["spike_at"] is None:
                state["spike_at"] = state["samples"] + 3
            return BASE + (50 * 1024 * 1024 if state["samples"] == state["spike_at"] else 0)
        return BASE + (state["samples"] % 3) * 1024


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, code, body, ctype="text/plain"):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            return self.send(200, "ok")
        if self.path == "/health/db":
            up = state["db_up"]
            return self.send(200 if up else 503, json.dumps({"db": {"up": up}, "items": [{"name": "a"}]}), "application/json")
        if self.path == "/slow":
            time.sleep(1.5)
            return self.send(200, "slow")
        if self.path == "/metrics":
            v = memory()
            return self.send(200, "# HELP process_resident_memory_bytes RSS\n# TYPE process_resident_memory_bytes gauge\n"
                                  'process_resident_memory_bytes{job="shop"} %.1f\nup 1\n' % v)
        if self.path == "/hooks":
            with lock:
                return self.send(200, json.dumps(state["hooks"]), "application/json")
        self.send(404, "not found")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        if self.path.startswith("/control/mode/"):
            with lock:
                state["mode"], state["t0"], state["spike_at"], state["samples"] = self.path.rsplit("/", 1)[1], time.time(), None, 0
            return self.send(200, "ok")
        if self.path == "/control/db-down":
            state["db_up"] = False
            return self.send(200, "ok")
        if self.path == "/hook":
            with lock:
                state["hooks"].append({"body": body, "auth": self.headers.get("Authorization")})
            return self.send(200, "ok")
        if self.path == "/fail-hook":
            return self.send(500, "boom")
        self.send(404, "not found")


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
# Stop when the test process goes away (stdin closes), even if it crashed.
sys.stdin.read()
server.shutdown()
