import Foundation
import RunbookTestSupport
import Testing

/// Alert intake has a path of its own: approvals and reads are never queued behind an alert flood,
/// and a payload still being handled is answered, not cut off by the head deadline.
@Suite(.timeLimit(.minutes(5)), .serialized)
struct ServeIntakeTests {
    /// The serve tests' runbook, with all but one run refused (every alert of a flood is decided).
    static let runbook = ServeTests.runbook.replacingOccurrences(of: "guards: { auto: true }", with: "guards: { auto: true, max_runs: { count: 1, per: 1h } }")

    @Test func anApprovalIsAnsweredWhileAnAlertFloodIsStillBeingAdmitted() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/rb", withIntermediateDirectories: true)
        try Self.runbook.write(toFile: dir + "/rb/node-down.yaml", atomically: true, encoding: .utf8)
        try writeTokenFile("t0ken-0123456789\n", to: dir + "/token")
        // A head deadline far shorter than the flood takes to admit: the flood must still be answered.
        let (child, port) = try await ChildServer.serve(["--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--token-file", dir + "/token",
                                                         "--head-timeout", "1"])
        defer { child.stop() }
        // The flood goes out whole; only then is the approval asked. Each answer is stamped in the
        // order it arrives.
        let script = """
            import json, socket, sys, threading
            port = int(sys.argv[1])
            alerts = [{"status": "firing", "labels": {"alertname": "NodeExporterDown", "instance": "h%d" % i},
                       "annotations": {}, "startsAt": "2026-11-25T14:47:04.491259587Z", "endsAt": "0001-01-01T00:00:00Z",
                       "fingerprint": "f%08d" % i} for i in range(3000)]
            body = json.dumps({"version": "4", "status": "firing", "receiver": "r", "alerts": alerts}).encode()
            def request(method, path, body=b""):
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(("%s %s HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer t0ken-0123456789\\r\\nContent-Type: application/json\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n" % (method, path, len(body))).encode() + body)
                return s
            order, lock = [], threading.Lock()
            def answer(name, s):
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk: break
                    data += chunk
                with lock: order.append((name, data.split(b"\\r\\n", 1)[0].decode()))
            flood = request("POST", "/hooks/alertmanager", body)
            t = threading.Thread(target=answer, args=("flood", flood)); t.start()
            answer("approval", request("POST", "/runs/r-nope/approve"))
            t.join()
            for name, status in order: print(name, status)
            """
        let r = try await offPool { try Spawn.run(["python3", "-c", script, "\(port)"]) }
        let lines = r.stdout.split(separator: "\n").map(String.init)
        // Both are answered, and rightly. Which comes first is not asserted: how long the flood takes
        // to admit depends on the machine (the intake benchmark measures the approval's latency).
        #expect(lines.count == 2, "\(r.stdout) \(r.stderr)")
        #expect(lines.contains { $0.hasPrefix("approval HTTP/1.1 404") }, "the approval was not answered: \(lines)")
        #expect(lines.contains { $0.hasPrefix("flood HTTP/1.1 202") }, "the flood was not answered: \(lines)")
    }

    /// Webhooks that arrive together are admitted together (one transaction for those waiting): each
    /// answer still lists exactly its own alerts, an alert in many of them starts one run, and
    /// every run carries its own alert's params.
    @Test func webhooksAdmittedTogetherEachGetTheirOwnAnswers() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/rb", withIntermediateDirectories: true)
        try ServeTests.runbook.write(toFile: dir + "/rb/node-down.yaml", atomically: true, encoding: .utf8)
        try writeTokenFile("t0ken-0123456789\n", to: dir + "/token")
        let (child, port) = try await ChildServer.serve(["--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--token-file", dir + "/token"])
        defer { child.stop() }
        // 20 webhooks at one moment (a barrier): each its own alert (instance hN) and one alert all share.
        let script = """
            import json, sys, threading, urllib.request
            port = int(sys.argv[1])
            def alert(fp, inst):
                return {"status": "firing", "labels": {"alertname": "NodeExporterDown", "instance": inst}, "annotations": {},
                        "startsAt": "2026-11-25T14:47:04.491259587Z", "endsAt": "0001-01-01T00:00:00Z", "fingerprint": fp}
            barrier, out, lock = threading.Barrier(20), {}, threading.Lock()
            def go(i):
                body = json.dumps({"version": "4", "status": "firing", "receiver": "r",
                                   "alerts": [alert("own%04d" % i, "h%d" % i), alert("shared0001", "shared")]}).encode()
                barrier.wait()
                req = urllib.request.Request("http://127.0.0.1:%d/hooks/alertmanager" % port, data=body, method="POST",
                                             headers={"Authorization": "Bearer t0ken-0123456789"})
                r = urllib.request.urlopen(req, timeout=60)
                with lock: out[i] = (r.status, json.loads(r.read()))
            ts = [threading.Thread(target=go, args=(i,)) for i in range(20)]
            [t.start() for t in ts]; [t.join() for t in ts]
            print(json.dumps(out))
            """
        let r = try await offPool { try Spawn.run(["python3", "-c", script, "\(port)"]) }
        let out = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: [Any]], "\(r.stdout) \(r.stderr)")
        #expect(out.count == 20)
        var ownRuns: [String: Int] = [:], sharedStarted: [String] = [], sharedDuplicates: [String] = []
        for (key, answer) in out {
            let i = try #require(Int(key))
            #expect(answer.first as? Int == 202)
            let runs = try #require((answer.last as? [String: Any])?["runs"] as? [[String: Any]])
            try #require(runs.count == 2, "webhook \(i) got \(runs)")
            #expect(runs[0]["status"] as? String == "started", "webhook \(i): \(runs)")
            ownRuns[try #require(runs[0]["run"] as? String)] = i
            switch runs[1]["status"] as? String {
            case "started": sharedStarted.append(runs[1]["run"] as? String ?? "")
            case "duplicate": sharedDuplicates.append(runs[1]["run"] as? String ?? "")
            default: Issue.record("webhook \(i): the shared alert got \(runs[1])")
            }
        }
        #expect(ownRuns.count == 20, "two webhooks were told of one run: \(ownRuns)")
        #expect(sharedStarted.count == 1 && sharedDuplicates.count == 19, "\(sharedStarted) \(sharedDuplicates)")
        #expect(Set(sharedDuplicates) == Set(sharedStarted), "a duplicate named another run than the one started")
        // Each webhook's own run was started with its own alert's instance.
        for (id, i) in ownRuns {
            let detail = try http("GET", "http://127.0.0.1:\(port)/runs/\(id)", headers: ["Authorization": "Bearer t0ken-0123456789"]).body
            #expect(detail.contains("\"instance\":\"h\(i)\""), "run \(id) of webhook \(i): \(detail.prefix(400))")
        }
    }
}
