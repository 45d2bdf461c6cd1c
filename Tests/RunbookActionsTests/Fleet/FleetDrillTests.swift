import Foundation
import Testing

/// Drills rehearse `across:` steps host by host in simulated time, with outcomes per host.
struct FleetDrillTests {
    static func sandbox(scenario: String) throws -> String {
        let dir = temporaryFolder()
        try FileManager.default.createDirectory(atPath: dir + "/rb/drills", withIntermediateDirectories: true)
        try (1...6).map { "web-\($0)" }.joined(separator: "\n").write(toFile: dir + "/rb/inventory", atomically: true, encoding: .utf8)
        try """
            runbook: fleet
            targets:
              web: { inventory: inventory }
            steps:
              - id: restart-shop
                phase: mitigate
                across: { targets: web, concurrency: 2, max_errors: 1 }
                command: ["systemctl", "restart", "shop"]
                undo: { command: ["systemctl", "start", "shop"] }
                timeout: 30s
            """.write(toFile: dir + "/rb/fleet.yaml", atomically: true, encoding: .utf8)
        try scenario.write(toFile: dir + "/rb/drills/one.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    @Test func perHostOutcomesExerciseMaxErrorsAndUndoEachHost() throws {
        let dir = try Self.sandbox(scenario: """
            drill: two-hosts-fail
            runbook: fleet
            outcomes:
              restart-shop: { web-2: failed, web-3: timed-out, default: passed }
            expect: { outcome: failed }
            """)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try runCLI(["drill", "fleet", "--scenario", dir + "/rb/drills/one.yaml", "--runbooks", dir + "/rb", "--state-dir", dir + "/st", "--json"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let events = jsonLines(r.stdout)
        func targets(_ name: String, _ status: String? = nil) -> [String] {
            events.filter { $0["event"] as? String == name && (status == nil || $0["status"] as? String == status) }.compactMap { $0["target"] as? String }
        }
        #expect(targets("host.finished", "failed") == ["web-2"])
        #expect(targets("host.finished", "timed-out") == ["web-3"])
        // Failures passed max_errors 1 at web-3: no new host; the hosts done are undone in reverse.
        let step = events.first { $0["event"] as? String == "step.finished" && $0["step"] as? String == "restart-shop" }
        #expect((step?["message"] as? String)?.contains("2 hosts failed, more than max_errors 1") == true)
        let undone = targets("undo.finished", "passed")
        #expect(undone == targets("host.finished", "would-change").reversed(), "\(undone)")
    }

    @Test func aPerHostOutcomeMustBeAStatus() throws {
        let dir = try Self.sandbox(scenario: """
            drill: bad
            runbook: fleet
            outcomes:
              restart-shop: { web-2: broken }
            expect: { outcome: failed }
            """)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try runCLI(["drill", "fleet", "--scenario", dir + "/rb/drills/one.yaml", "--runbooks", dir + "/rb", "--state-dir", dir + "/st"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("one.yaml:4:") && r.stderr.contains("outcomes.restart-shop.web-2 must be one of"), "\(r.stderr)")
    }
}
