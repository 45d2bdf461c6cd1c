import Foundation
import RunbookTestSupport
import Testing

/// Callers without a token cannot keep alerts out: 600 half-open request heads from the same
/// address as the alerts (loopback), trickled and reopened as the server closes them, with a 300 s
/// head deadline for authenticated callers. Before the connection gate the server held 512
/// connections and no alert got in until a head deadline freed a slot.
@Suite(.timeLimit(.minutes(4)))
struct HalfOpenFloodTests {
    @Test func everyRealAlertIsAnsweredWhileHundredsOfHalfOpenHeadsAreHeld() async throws {
        let yaml = """
            runbook: flood
            triggers:
              - alert: { alertname: Flood }
            guards: { auto: true }
            steps:
              - id: look
                phase: detect
                check: { command: ["true"] }

            """
        let dir = try runbookSandbox(yaml, name: "flood", tokens: "am:alerts:flood-token-0123456789\nrd:reader:flood-reader-0123456789\n")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (server, port) = try await ChildServer.serve(["--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--token-file", dir + "/tokens",
                                                          "--head-timeout", "300"])
        defer { server.stop() }
        let flood = try await offPool {
            try Spawn.run(["python3", repoRoot + "/Tests/Fixtures/half_open_flood.py", "\(port)", "600", "20", "flood-token-0123456789"])
        }
        let report = try #require(try JSONSerialization.jsonObject(with: Data(flood.stdout.utf8)) as? [String: Any], "\(flood.stderr)")
        let statuses = report["statuses"] as? [Int] ?? []
        #expect(statuses == Array(repeating: 202, count: 20), "\(report) \(flood.stderr)")
        #expect((report["opened"] as? Int ?? 0) >= 600, "\(report)")
        let runs = try await offPool { try httpPatiently("GET", "http://127.0.0.1:\(port)/runs", headers: ["Authorization": "Bearer flood-reader-0123456789"]) }
        let list = try JSONSerialization.jsonObject(with: Data(runs.body.utf8)) as? [[String: Any]] ?? []
        #expect(list.count == 20, "\(runs)")
    }
}
