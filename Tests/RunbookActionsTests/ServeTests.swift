import Foundation
import RunbookTestSupport
import Testing

/// `runbook serve` as Alertmanager and hidden cases use it: a real process on 127.0.0.1.
@Suite(.timeLimit(.minutes(10)), .serialized)
struct ServeTests {
    struct Server {
        let child: ChildServer
        let port: Int
        let dir: String
        var base: String { "http://127.0.0.1:\(port)" }
    }

    static let runbook = """
    runbook: node-down
    params:
      instance: { default: "x", pattern: "^[a-z0-9.:-]+$" }
    triggers:
      - alert: { alertname: NodeExporterDown }
        params: { instance: "{{ alert.labels.instance }}" }
    guards: { auto: true }
    steps:
      - id: look
        phase: diagnose
        check: { command: ["sleep", "1"] }

    """

    func start(_ runbook: String = ServeTests.runbook, dir existing: String? = nil) async throws -> Server {
        let dir = existing ?? temporaryFolder()
        try FileManager.default.createDirectory(atPath: dir + "/rb", withIntermediateDirectories: true)
        try runbook.write(toFile: dir + "/rb/node-down.yaml", atomically: true, encoding: .utf8)
        try writeTokenFile("t0ken-0123456789\n", to: dir + "/token")
        let (child, port) = try await ChildServer.serve(["--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--token-file", dir + "/token"])
        let up = await waitUntil(20) { (try? http("GET", "http://127.0.0.1:\(port)/healthz"))?.status == 200 }
        #expect(up, "runbook serve did not come up")
        return Server(child: child, port: port, dir: dir)
    }

    /// The fixture a real Alertmanager 0.25 sent, with its labels changed as asked.
    func payload(status: String = "firing", labels: [String: String] = [:], fingerprint: String = "081830d5b02c9258") throws -> String {
        let data = try Data(contentsOf: URL(fileURLWithPath: repoRoot + "/Tests/Fixtures/alertmanager/node-exporter-down.firing.json"))
        var obj = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        var alerts = try #require(obj["alerts"] as? [[String: Any]])
        var a = alerts[0]
        var l = a["labels"] as? [String: String] ?? [:]
        for (k, v) in labels { l[k] = v }
        a["labels"] = l
        a["status"] = status
        a["fingerprint"] = fingerprint
        if status == "resolved" { a["endsAt"] = "2026-11-25T15:00:00.123456789Z" }
        alerts[0] = a
        obj["alerts"] = alerts
        obj["status"] = status
        return String(decoding: try JSONSerialization.data(withJSONObject: obj), as: UTF8.self)
    }

    func post(_ s: Server, _ body: String, token: String? = "t0ken-0123456789", path: String = "/hooks/alertmanager") throws -> (status: Int, body: String) {
        try http("POST", s.base + path, body: body, headers: token.map { ["Authorization": "Bearer \($0)"] } ?? [:])
    }

    /// Polls the state until some run's step has started.
    func waitForStep(_ s: Server, _ step: String) async -> Bool {
        await waitUntil(20) {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: s.dir + "/state/runs")) ?? []
            return files.contains { f in
                f.hasSuffix(".jsonl") && ((try? String(contentsOfFile: s.dir + "/state/runs/" + f, encoding: .utf8)) ?? "").contains("\"step\":\"\(step)\"")
            }
        }
    }

    func runs(_ s: Server) throws -> [[String: Any]] {
        (try JSONSerialization.jsonObject(with: Data(http("GET", s.base + "/runs", headers: ["Authorization": "Bearer t0ken-0123456789"]).body.utf8)) as? [[String: Any]]) ?? []
    }

    @Test func hooksNeedTheTokenAndBadBodiesNeverStopTheServer() async throws {
        let s = try await start()
        defer { s.child.stop(); try? FileManager.default.removeItem(atPath: s.dir) }
        #expect(try post(s, payload(), token: nil).status == 401)
        #expect(try post(s, payload(), token: "wrong").status == 401)
        let bad = try post(s, "{\"alerts\": 7}")
        #expect(bad.status == 400)
        #expect(bad.body.contains("malformed"), "\(bad.body)")
        #expect(try post(s, "not json at all").status == 400)
        #expect(try post(s, String(repeating: "x", count: 2_000_000)).status == 413)
        #expect(try http("GET", s.base + "/healthz").status == 200)
        #expect(try post(s, payload()).status == 202)
    }

    @Test func repeatNotificationsStartOneRunUntilTheAlertResolves() async throws {
        let s = try await start()
        defer { s.child.stop(); try? FileManager.default.removeItem(atPath: s.dir) }
        let first = try post(s, payload())
        #expect(first.status == 202)
        #expect(first.body.contains("\"status\":\"started\""), "\(first.body)")
        for _ in 0..<3 { #expect(try post(s, payload()).body.contains("\"status\":\"duplicate\"")) }
        #expect(try runs(s).count == 1)
        let resolved = try post(s, payload(status: "resolved"))
        #expect(resolved.status == 202)
        let id = try #require(try runs(s).first?["id"] as? String)
        #expect(resolved.body.contains(id))
        let finished = await waitUntil(15) { ((try? self.runs(s).first?["outcome"]) as? String) == "completed" }
        #expect(finished)
        let detail = try http("GET", s.base + "/runs/\(id)", headers: ["Authorization": "Bearer t0ken-0123456789"]).body
        #expect(detail.contains("\"event\":\"alert.resolved\""), "\(detail)")
        // Resolved: the next firing of the same alert may start a new run.
        #expect(try post(s, payload()).body.contains("\"status\":\"started\""))
        #expect(try runs(s).count == 2)
    }

    @Test func eightConcurrentDeliveriesOfOneAlertStartOneRun() async throws {
        let s = try await start()
        defer { s.child.stop(); try? FileManager.default.removeItem(atPath: s.dir) }
        let body = try payload(fingerprint: "c0ffee0000000001")
        try body.write(toFile: s.dir + "/alert.json", atomically: true, encoding: .utf8)
        // Eight threads post the same alert at the same moment (a barrier), as Alertmanager replicas do.
        let script = """
            import sys, threading, urllib.request
            url, body = sys.argv[1], open(sys.argv[2], "rb").read()
            barrier, out = threading.Barrier(8), []
            def go():
                barrier.wait()
                req = urllib.request.Request(url, data=body, method="POST", headers={"Authorization": "Bearer t0ken-0123456789"})
                out.append(urllib.request.urlopen(req, timeout=30).read().decode())
            ts = [threading.Thread(target=go) for _ in range(8)]
            [t.start() for t in ts]; [t.join() for t in ts]
            print("\\n".join(out))
            """
        let r = try await offPool { try Spawn.run(["python3", "-c", script, s.base + "/hooks/alertmanager", s.dir + "/alert.json"]) }
        let answers = r.stdout.split(separator: "\n")
        #expect(answers.count == 8, "\(r.stderr)")
        #expect(answers.filter { $0.contains("\"status\":\"started\"") }.count == 1, "\(answers)")
        #expect(answers.filter { $0.contains("\"status\":\"duplicate\"") }.count == 7, "\(answers)")
        #expect(try runs(s).count == 1)
    }

    @Test func aHostileLabelValueIsRefusedAndRecorded() async throws {
        let s = try await start()
        defer { s.child.stop(); try? FileManager.default.removeItem(atPath: s.dir) }
        let r = try post(s, payload(labels: ["instance": "x; rm -rf / #$(id)"], fingerprint: "bad1"))
        #expect(r.status == 202)
        #expect(r.body.contains("\"status\":\"refused\"") && r.body.contains("\"guard\":\"params\""), "\(r.body)")
        let run = try #require(try runs(s).first)
        #expect(run["outcome"] as? String == "refused")
        let detail = try http("GET", s.base + "/runs/\(jsonText(run, "id"))", headers: ["Authorization": "Bearer t0ken-0123456789"]).body
        #expect(detail.contains("guard.refused"))
        #expect(!detail.contains("step.started"), "a step ran for a hostile label")
    }

    @Test func guardsRefuseAlertRuns() async throws {
        let manual = ServeTests.runbook.replacingOccurrences(of: "guards: { auto: true }", with: "guards: { auto: false }")
        let s = try await start(manual)
        defer { s.child.stop(); try? FileManager.default.removeItem(atPath: s.dir) }
        let r = try post(s, payload())
        #expect(r.body.contains("\"guard\":\"auto\""), "\(r.body)")
        let cooled = ServeTests.runbook.replacingOccurrences(of: "guards: { auto: true }", with: "guards: { auto: true, cooldown: 1h }")
        s.child.stop()
        let t = try await start(cooled)
        defer { t.child.stop(); try? FileManager.default.removeItem(atPath: t.dir) }
        #expect(try post(t, payload(fingerprint: "a1")).body.contains("started"))
        let second = try post(t, payload(labels: ["instance": "other:9100"], fingerprint: "a2"))
        #expect(second.body.contains("\"guard\":\"cooldown\"") && second.body.contains("\"until\":\"20"), "\(second.body)")
    }

    @Test func maxRunsAndLockRefuseAlertRunsToo() async throws {
        let limited = ServeTests.runbook.replacingOccurrences(of: "guards: { auto: true }", with: "guards: { auto: true, max_runs: { count: 1, per: 1h } }")
        let s = try await start(limited)
        defer { s.child.stop(); try? FileManager.default.removeItem(atPath: s.dir) }
        #expect(try post(s, payload(fingerprint: "m1")).body.contains("started"))
        let second = try post(s, payload(labels: ["instance": "b:1"], fingerprint: "m2"))
        #expect(second.body.contains("\"guard\":\"max_runs\""), "\(second.body)")
        s.child.stop()

        // The first run holds the lock until the test lets it go (no sleep that a slow POST could outlast).
        let lockDir = temporaryFolder()
        let locked = ServeTests.runbook
            .replacingOccurrences(of: "guards: { auto: true }", with: "guards: { auto: true, lock: \"{{ params.instance }}\" }")
            .replacingOccurrences(of: "    check: { command: [\"sleep\", \"1\"] }", with: "    timeout: 10m\n    check: { command: [\"sh\", \"-c\", \"while [ ! -e \\\"$0\\\" ]; do sleep 0.05; done\", \"\(lockDir)/release\"] }")
        let t = try await start(locked, dir: lockDir)
        defer { t.child.stop(); try? FileManager.default.removeItem(atPath: t.dir) }
        #expect(try post(t, payload(labels: ["instance": "same:1"], fingerprint: "l1")).body.contains("started"))
        let held = try post(t, payload(labels: ["instance": "same:1", "job": "other"], fingerprint: "l2"))
        #expect(held.body.contains("\"guard\":\"lock\""), "\(held.body)")
        _ = FileManager.default.createFile(atPath: lockDir + "/release", contents: Data())
        let free = await waitUntil(60) { ((try? self.runs(t))?.contains { $0["outcome"] as? String == "completed" }) ?? false }
        #expect(free)
        #expect(try post(t, payload(labels: ["instance": "same:1", "job": "third"], fingerprint: "l3")).body.contains("started"))
    }

    @Test func sigtermLetsTheRunningStepFinishAndRecordsTheRestInterrupted() async throws {
        let twoSteps = ServeTests.runbook.replacingOccurrences(of: """
              - id: look
                phase: diagnose
                check: { command: ["sleep", "1"] }
            """, with: """
              - id: look
                phase: diagnose
                check: { command: ["sleep", "2"] }
              - id: later
                phase: verify
                check: { command: ["true"] }
            """)
        let s = try await start(twoSteps)
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        #expect(try post(s, payload()).body.contains("started"))
        #expect(await waitForStep(s, "look"))
        kill(s.child.pid, SIGTERM)
        let exited = await waitUntil(15) { kill(s.child.pid, 0) != 0 || ThreadSampler.threads(of: "\(s.child.pid)") <= 1 }
        #expect(exited, "serve did not stop on SIGTERM")
        s.child.stop()
        let history = try await runCLI(["history", "--json", "--state-dir", s.dir + "/state"])
        let run = try #require(jsonLines(history.stdout).first)
        #expect(run["outcome"] as? String == "interrupted")
        let events = await jsonLines(try runCLI(["timeline", run["id"] as? String ?? "", "--json", "--state-dir", s.dir + "/state"]).stdout)
        #expect(events.contains { $0["step"] as? String == "look" && $0["status"] as? String == "passed" }, "the running step was not let finish")
        #expect(events.contains { $0["step"] as? String == "later" && $0["status"] as? String == "skipped" })
    }

    @Test func aRunCutOffByKillIsMarkedInterruptedOnRestart() async throws {
        let slow = ServeTests.runbook.replacingOccurrences(of: "[\"sleep\", \"1\"]", with: "[\"sleep\", \"30\"]")
        let s = try await start(slow)
        defer { try? FileManager.default.removeItem(atPath: s.dir) }
        #expect(try post(s, payload()).body.contains("started"))
        #expect(await waitForStep(s, "look"))
        kill(s.child.pid, SIGKILL)
        s.child.stop()
        // Its step's command outlives it: end exactly that process tree, found by the engine's cookie.
        killProcesses(startedByEngine: s.child.pid)
        let again = try await start(slow, dir: s.dir)
        defer { again.child.stop() }
        let run = try #require(try runs(again).first)
        #expect(run["outcome"] as? String == "interrupted")
        let detail = try http("GET", again.base + "/runs/\(jsonText(run, "id"))", headers: ["Authorization": "Bearer t0ken-0123456789"]).body
        #expect(detail.contains("cut off"), "\(detail)")
        // The still-firing alert does not start the cut-off run's changes again by itself.
        #expect(try runs(again).count == 1)
    }
}

/// One HTTP request through Python's urllib (independent of the code under test).
func http(_ method: String, _ url: String, body: String? = nil, headers: [String: String] = [:]) throws -> (status: Int, body: String) {
    let script = """
        import json, sys, urllib.request, urllib.error
        method, url, headers = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
        data = sys.stdin.buffer.read() if sys.argv[4] == "1" else None
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            r = urllib.request.urlopen(req, timeout=10); code, text = r.status, r.read()
        except urllib.error.HTTPError as e:
            code, text = e.code, e.read()
        except Exception as e:
            code, text = 0, str(e).encode()
        sys.stdout.write(str(code) + "\\n" + text.decode(errors="replace"))
        """
    let bodyFile = NSTemporaryDirectory() + "body-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: bodyFile) }
    try (body ?? "").write(toFile: bodyFile, atomically: true, encoding: .utf8)
    let headerJSON = String(decoding: try JSONSerialization.data(withJSONObject: headers), as: UTF8.self)
    let r = try Spawn.run(["sh", "-c", "exec python3 -c \"$0\" \"$1\" \"$2\" \"$3\" \"$4\" < \"$5\"", script, method, url, headerJSON, body == nil ? "0" : "1", bodyFile])
    let lines = r.stdout.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
    return (Int(lines.first ?? "") ?? 0, lines.count > 1 ? String(lines[1]) : "")
}
