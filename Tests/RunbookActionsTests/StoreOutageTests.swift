import Foundation
import RunbookTestSupport
import Testing

/// `runbook serve` on a PostgreSQL that stops mid-test (a cluster of the test's own, so no other
/// test loses its database): webhooks answer 503 (Alertmanager sends again), never a late 202 or a
/// cut connection; reads answer 503, not an empty list; `/healthz` says the store is unreachable and
/// `/readyz` answers 503; when the database is back, the alert sent again is recorded once.
@Suite(.timeLimit(.minutes(15)), .enabled(if: TestPostgres.available, "needs PostgreSQL (scripts/test.sh sets RUNBOOK_TEST_DATABASE_URL)"))
struct StoreOutageTests {
    static let runbook = """
        runbook: outage
        triggers:
          - alert: { alertname: OutageAlert }
        guards: { auto: true }
        steps:
          - id: look
            phase: detect
            check: { command: ["true"] }

        """

    static func payload(_ fingerprint: String) -> String {
        #"{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"OutageAlert"},"fingerprint":"\#(fingerprint)"}]}"#
    }

    @Test func duringAnOutageWebhooksAndReadsAnswer503AndNothingIsRecordedLate() async throws {
        let dir = try runbookSandbox(Self.runbook, name: "outage", tokens: "am:alerts:am-token-outage-0123456789\nops:admin:ops-token-outage-0123456789\n")
        let cluster = dir + "/pg"
        defer {
            _ = try? Spawn.run([repoRoot + "/scripts/pg-cluster.sh", "stop", cluster])
            try? FileManager.default.removeItem(atPath: dir)
        }
        let started = try await offPool { try Spawn.run([repoRoot + "/scripts/pg-cluster.sh", "start", cluster]) }
        try #require(started.status == 0, "\(started.stderr)")
        let db = started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let (server, port) = try await ChildServer.serve(["--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--token-file", dir + "/tokens", "--database", db])
        defer { server.stop() }
        let base = "http://127.0.0.1:\(port)"
        let alerts = ["Authorization": "Bearer am-token-outage-0123456789"]
        let admin = ["Authorization": "Bearer ops-token-outage-0123456789"]

        let before = try await offPool { try httpPatiently("POST", base + "/hooks/alertmanager", body: Self.payload("fp-before"), headers: alerts) }
        #expect(before.status == 202, "\(before)")
        let runID = try #require((try? JSONSerialization.jsonObject(with: Data(before.body.utf8)) as? [String: Any])
            .flatMap { ($0["runs"] as? [[String: Any]])?.first?["run"] as? String })

        let stopped = try await offPool { try Spawn.run([repoRoot + "/scripts/pg-cluster.sh", "stop", cluster]) }
        try #require(stopped.status == 0, "\(stopped.stderr)")

        // Right after the stop, and again once the server knows: 503 with a reason, never 202 or no answer.
        for i in 0..<3 {
            let during = try await offPool { try httpPatiently("POST", base + "/hooks/alertmanager", body: Self.payload("fp-during-\(i)"), headers: alerts) }
            #expect(during.status == 503, "\(during)")
            #expect(during.body.contains("send again"), "\(during.body)")
        }
        let list = try await offPool { try httpPatiently("GET", base + "/runs", headers: admin) }
        #expect(list.status == 503, "an empty or partial list would not be true: \(list)")
        let one = try await offPool { try httpPatiently("GET", base + "/runs/\(runID)", headers: admin) }
        #expect(one.status == 503, "\(one)")
        let health = try await offPool { try httpPatiently("GET", base + "/healthz") }
        #expect(health.status == 200 && health.body.contains("\"store\":\"unreachable\""), "\(health)")
        let ready = try await offPool { try httpPatiently("GET", base + "/readyz") }
        #expect(ready.status == 503, "\(ready)")

        let restarted = try await offPool { try Spawn.run([repoRoot + "/scripts/pg-cluster.sh", "start", cluster]) }
        try #require(restarted.status == 0, "\(restarted.stderr)")
        // Back: ready again, and reads through the server's own connections answer (so any query
        // left waiting for a connection would have run by now).
        var back = false
        for _ in 0..<600 where !back {
            let r = try await offPool { try httpPatiently("GET", base + "/runs", headers: admin) }
            back = r.status == 200
            if !back { try await Task.sleep(for: .milliseconds(100)) }
        }
        #expect(back)
        let readyAgain = try await offPool { try httpPatiently("GET", base + "/readyz") }
        #expect(readyAgain.status == 200, "\(readyAgain)")
        // Nothing answered 503 was recorded behind the caller's back once the database came back.
        let late = try TestPostgres.query(db, "select count(*) from runs where fingerprint like 'fp-during-%'")
        #expect(late == ["0"], "\(late)")
        // Alertmanager sends again: recorded now, once.
        let again = try await offPool { try httpPatiently("POST", base + "/hooks/alertmanager", body: Self.payload("fp-during-0"), headers: alerts) }
        #expect(again.status == 202 && again.body.contains("\"started\""), "\(again)")
        let health2 = try await offPool { try httpPatiently("GET", base + "/healthz") }
        #expect(health2.body.contains("\"store\":\"ok\""), "\(health2)")
        #expect(try TestPostgres.query(db, "select count(*) from runs where fingerprint = 'fp-during-0'") == ["1"])
    }
}

/// One HTTP request through Python's urllib with a 60 s limit, far above any answer expected: a
/// status of 0 means no answer at all (a cut connection).
func httpPatiently(_ method: String, _ url: String, body: String? = nil, headers: [String: String] = [:]) throws -> (status: Int, body: String) {
    let script = """
        import json, sys, urllib.request, urllib.error
        method, url, headers = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
        data = sys.argv[4].encode() if len(sys.argv) > 4 else None
        req = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            r = urllib.request.urlopen(req, timeout=60); code, text = r.status, r.read()
        except urllib.error.HTTPError as e:
            code, text = e.code, e.read()
        except Exception as e:
            code, text = 0, str(e).encode()
        sys.stdout.write(str(code) + "\\n" + text.decode(errors="replace"))
        """
    let headerJSON = String(decoding: try JSONSerialization.data(withJSONObject: headers), as: UTF8.self)
    let r = try Spawn.run(["python3", "-c", script, method, url, headerJSON] + (body.map { [$0] } ?? []))
    let lines = r.stdout.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false)
    return (Int(lines.first ?? "") ?? 0, lines.count > 1 ? String(lines[1]) : "")
}
