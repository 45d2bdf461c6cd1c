import Foundation
import RunbookCore
import RunbookTestSupport
import Testing

/// The change breaker under races (issue 19): twenty one-change runs at once under
/// `--max-changes 2/1h` apply exactly two changes, on one server (SQLite; alerts in separate
/// requests and in one payload) and on three replicas of one PostgreSQL database.
@Suite(.serialized, .timeLimit(.minutes(8)))
struct BreakerRaceTests {
    static let tokens = "am:alerts:am-token-1-0123456789\nops:operator:ops-token-1-0123456789\n"
    static let auth = ["Authorization": "Bearer am-token-1-0123456789"]
    static let ops = ["Authorization": "Bearer ops-token-1-0123456789"]

    /// Twenty runbooks `b0`...`b19`, each started by its own alert and making one change that takes
    /// 0.2 s: a line appended to `DIR/applied` (what really happened, whatever the records say).
    static func folder() throws -> String {
        func runbook(_ i: Int) -> String {
            """
            runbook: b\(i)
            triggers:
              - alert: { alertname: B\(i) }
            guards: { auto: true }
            steps:
              - id: look
                phase: detect
                check: { command: ["true"] }
              - id: change
                phase: mitigate
                command: ["sh", "-c", "sleep 0.2; echo b\(i) >> DIR/applied"]

            """
        }
        let dir = try runbookSandbox(runbook(0), name: "b0", tokens: tokens)
        for i in 1..<20 {
            try runbook(i).replacingOccurrences(of: "DIR", with: dir).write(toFile: dir + "/rb/b\(i).yaml", atomically: true, encoding: .utf8)
        }
        return dir
    }

    static func alert(_ i: Int, _ tag: String) -> String {
        #"{"status":"firing","labels":{"alertname":"B\#(i)"},"fingerprint":"\#(tag)-\#(i)"}"#
    }

    static func payload(_ alerts: [String]) -> String {
        #"{"version":"4","status":"firing","alerts":["# + alerts.joined(separator: ",") + "]}"
    }

    /// Changes that really happened.
    static func applied(_ dir: String) -> [String] {
        ((try? String(contentsOfFile: dir + "/applied", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Waits until no run in `base`'s list is open, and returns their outcomes.
    static func outcomes(_ base: String, count: Int) async -> [String] {
        var last: [[String: Any]] = []
        _ = await waitUntil(120) {
            guard let body = try? http("GET", base + "/runs", headers: ops).body,
                  let runs = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [[String: Any]] else { return false }
            last = runs
            return runs.count >= count && runs.allSatisfy { $0["outcome"] is String }
        }
        return last.compactMap { $0["outcome"] as? String }
    }

    /// Posts every body at once, each to the next server in turn.
    static func postAll(_ bodies: [String], to bases: [String]) async throws -> [(Int, String)] {
        try await withThrowingTaskGroup(of: (Int, String).self) { group in
            for (i, body) in bodies.enumerated() {
                let url = bases[i % bases.count] + "/hooks/alertmanager"
                group.addTask { try await offPool { try http("POST", url, body: body, headers: auth) } }
            }
            var all: [(Int, String)] = []
            for try await a in group { all.append(a) }
            return all
        }
    }

    @Test func oneServerAppliesExactlyTwoChangesOfTwentyWhetherAlertsComeAloneOrInOnePayload() async throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (round, together) in [false, true].enumerated() {
            let state = dir + "/state\(round)"
            try? FileManager.default.removeItem(atPath: dir + "/applied")
            let (server, port) = try await ChildServer.serve(["--runbooks", dir + "/rb", "--state-dir", state, "--token-file", dir + "/tokens",
                                                              "--max-changes", "2/1h"])
            defer { server.stop() }
            let base = "http://127.0.0.1:\(port)"
            let alerts = (0..<20).map { Self.alert($0, "r\(round)") }
            let answers = try await Self.postAll(together ? [Self.payload(alerts)] : alerts.map { Self.payload([$0]) }, to: [base])
            #expect(answers.allSatisfy { $0.0 == 202 }, "\(answers)")
            let outcomes = await Self.outcomes(base, count: 20)
            #expect(outcomes.count == 20, "\(outcomes)")
            #expect(outcomes.filter { $0 == "mitigated" }.count == 2, "together: \(together): \(outcomes)")
            #expect(outcomes.filter { $0 == "refused" }.count == 18, "together: \(together): \(outcomes)")
            #expect(Self.applied(dir).count == 2, "together: \(together): \(Self.applied(dir))")
            let metrics = try http("GET", base + "/metrics", headers: Self.ops).body
            #expect(metrics.contains("runbook_change_budget_remaining 0"), "\(metrics)")
        }
    }

    @Test(.enabled(if: TestPostgres.available, "needs RUNBOOK_TEST_DATABASE_URL (scripts/test.sh starts a cluster)"))
    func threeReplicasApplyExactlyTwoChangesOfTwentyTenTimesOver() async throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = try TestPostgres.freshDatabase()
        var servers: [ChildServer] = []
        defer { servers.forEach { $0.stop() } }
        var bases: [String] = []
        for i in 0..<3 {
            let (s, port) = try await ChildServer.serve(["--runbooks", dir + "/rb", "--state-dir", dir + "/state\(i)", "--token-file", dir + "/tokens",
                                                         "--database", db, "--max-changes", "2/1h"])
            servers.append(s)
            bases.append("http://127.0.0.1:\(port)")
        }
        for round in 0..<10 {
            let answers = try await Self.postAll((0..<20).map { Self.payload([Self.alert($0, "r\(round)")]) }, to: bases)
            #expect(answers.allSatisfy { $0.0 == 202 }, "round \(round): \(answers)")
            let outcomes = await Self.outcomes(bases[round % 3], count: 20 * (round + 1))
            let ran = Self.applied(dir)
            #expect(ran.count == 2, "round \(round): \(ran) \(outcomes)")
            #expect(outcomes.filter { $0 == "mitigated" }.count == 2 * (round + 1), "round \(round): \(outcomes)")
            let reserved = try TestPostgres.query(db, "select count(*) from changes where state is not null")
            #expect(reserved == ["0"], "round \(round): places left reserved: \(reserved)")
            // The next round starts with an empty window.
            _ = try TestPostgres.query(db, "delete from changes")
            try? FileManager.default.removeItem(atPath: dir + "/applied")
        }
    }
}
