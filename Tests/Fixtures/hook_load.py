#!/usr/bin/env python3
"""Posts N overlapping /hooks/run requests to a runbook server and prints what came back, as JSON.

usage: hook_load.py URL TOKEN RUNBOOK N CONCURRENCY
Each request is retried (up to 5 times) only when the connection itself fails, as Alertmanager does.
Bounded: N requests, each with a 30 s timeout; only 127.0.0.1 is ever addressed by the tests.
"""
import collections, concurrent.futures, json, sys, time, urllib.request

url, token, runbook, n, concurrency = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])

def post(_):
    body = json.dumps({"runbook": runbook, "params": {}}).encode()
    req = urllib.request.Request(url + "/hooks/run", data=body, method="POST",
                                 headers={"Authorization": "Bearer " + token, "Content-Type": "application/json"})
    last = ""
    for _ in range(5):
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return json.loads(r.read())["runs"][0]["status"]
        except urllib.error.HTTPError as e:
            return "http %d" % e.code
        except Exception as e:
            last = type(e).__name__
            time.sleep(0.1)
    return "error " + last

started = time.time()
with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
    results = list(pool.map(post, range(n)))
print(json.dumps({"counts": collections.Counter(results), "seconds": round(time.time() - started, 2)}))
