import Foundation
import RunbookCore
import RunbookTestSupport
import Testing

/// `runbook serve` under overlapping runs that each start processes: every run finishes and the
/// server stays up (it used to crash in libdispatch after a few hundred).
@Suite(.timeLimit(.minutes(10)))
struct ServeStressTests {
    @Test(.timeLimit(.minutes(6)))
    func twoThousandOverlappingRunsOfEightParallelCommandsAllFinish() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/rb", withIntermediateDirectories: true)
        // A step's timeout counts its wait for a process slot: 3 minutes, so that a loaded machine
        // (this suite runs beside the others) queues steps rather than timing them out.
        let steps = (0..<8).map { i in "  - id: c\(i)\n    phase: detect\n    timeout: 3m\n    check: { command: [\"sh\", \"-c\", \"echo \(i)\"] }\n" }
        try ("runbook: eight\nsteps:\n" + steps.joined()).write(toFile: dir + "/rb/eight.yaml", atomically: true, encoding: .utf8)
        try writeTokenFile("load-token-0123456789\n", to: dir + "/token")
        let (server, port) = try await ChildServer.serve(["--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--token-file", dir + "/token"])
        defer { server.stop() }
        let base = "http://127.0.0.1:\(port)"
        let load = try await offPool {
            try Spawn.run(["python3", repoRoot + "/Tests/Fixtures/hook_load.py", base, "load-token-0123456789", "eight", "2000", "32"])
        }
        let report = try #require(try JSONSerialization.jsonObject(with: Data(load.stdout.utf8)) as? [String: Any], "\(load.stderr)")
        let counts = report["counts"] as? [String: Int] ?? [:]
        #expect(counts["started"] == 2000, "\(counts)")
        let drained = await waitUntil(240) {
            ((try? http("GET", base + "/healthz"))?.body ?? "").contains("\"active_runs\":0")
        }
        #expect(drained, "runs still active: \((try? http("GET", base + "/healthz"))?.body ?? "server down")")
        #expect(kill(server.pid, 0) == 0, "the server died")
        let history = try await offPool { try runCLI(["history", "--json", "--limit", "5000", "--state-dir", dir + "/state"]) }
        let outcomes = jsonLines(history.stdout).map { $0["outcome"] as? String ?? "running" }
        #expect(outcomes.count == 2000)
        let finished = Dictionary(grouping: outcomes, by: { $0 }).mapValues(\.count)
        // Every run finished, and said how: none is left running.
        #expect(finished["running"] == nil, "\(finished)")
        #expect(finished["completed"] == 2000, "\(finished)")
    }
}
