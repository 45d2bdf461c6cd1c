import Foundation
import Testing

/// Drills rehearse `across:` steps host by host in simulated time, with outcomes per host.
struct FleetDrillTests {
    static func sandbox(scenario: String, runbookExtra: String = "") throws -> String {
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
            \(runbookExtra)
            """.write(toFile: dir + "/rb/fleet.yaml", atomically: true, encoding: .utf8)
        try scenario.write(toFile: dir + "/rb/drills/one.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    @Test func perHostOutcomesExerciseMaxErrorsAndUndoEachHost() async throws {
        let dir = try Self.sandbox(scenario: """
            drill: two-hosts-fail
            runbook: fleet
            outcomes:
              restart-shop: { web-2: failed, web-3: timed-out, default: passed }
            expect: { outcome: failed }
            """)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try await runCLI(["drill", "fleet", "--scenario", dir + "/rb/drills/one.yaml", "--runbooks", dir + "/rb", "--state-dir", dir + "/st", "--json"])
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

    /// A per-host outcome naming a host outside the step's target set (a typo) would rehearse every
    /// host passing: the drill is invalid (exit 2), naming the host, the set and its hosts.
    @Test func aPerHostOutcomeForAHostOutsideTheTargetsMakesTheDrillInvalid() async throws {
        let dir = try Self.sandbox(scenario: """
            drill: typo
            runbook: fleet
            outcomes:
              restart-shop: { web-22: failed, default: passed }
            expect: { outcome: failed }
            """)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try await runCLI(["drill", "fleet", "--scenario", dir + "/rb/drills/one.yaml", "--runbooks", dir + "/rb", "--state-dir", dir + "/st"])
        #expect(r.status == 2, "\(r.stdout)\(r.stderr)")
        let said = r.stdout + r.stderr
        #expect(said.contains("one.yaml:4:") && said.contains("'web-22' is not a host of targets.web") && said.contains("web-1, web-2"), "\(said)")
    }

    @Test func anAlarmStopsNewHostsLetsHostsInFlightFinishAndUndoesEachHost() async throws {
        // Hosts take 20 s, two at a time: web-1 and web-2 end at 20 s (the alarms start), web-3 and
        // web-4 run from 20 s to 40 s; the alarm fires at its first look, at 30 s.
        let dir = try Self.sandbox(scenario: """
            drill: alarm-mid-fleet
            runbook: fleet
            outcomes:
              restart-shop: { status: passed, duration: 20s }
              errors-high: passed
            expect: { outcome: aborted }
            """, runbookExtra: """
            abort_if:
              - id: errors-high
                every: 10s
                check: { command: ["check-errors"] }
            """)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try await runCLI(["drill", "fleet", "--scenario", dir + "/rb/drills/one.yaml", "--runbooks", dir + "/rb", "--state-dir", dir + "/st", "--json"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let events = jsonLines(r.stdout)
        func targets(_ name: String) -> [String] { events.filter { $0["event"] as? String == name }.compactMap { $0["target"] as? String } }
        let fired = events.firstIndex { $0["event"] as? String == "alarm.fired" }
        #expect(fired != nil)
        #expect(targets("host.started") == ["web-1", "web-2", "web-3", "web-4"], "no host starts once the alarm fired")
        // The hosts in flight when it fired finished after it, and their changes were recorded.
        let finishedAfter = events.indices.filter { $0 > (fired ?? 0) && events[$0]["event"] as? String == "host.finished" }.compactMap { events[$0]["target"] as? String }
        #expect(finishedAfter == ["web-3", "web-4"], "\(finishedAfter)")
        let step = events.first { $0["event"] as? String == "step.finished" && $0["step"] as? String == "restart-shop" }
        #expect(step?["status"] as? String == "failed")
        let message = step?["message"] as? String ?? ""
        #expect(message.contains("alarm errors-high fired") && message.contains("not started: web-5, web-6"), "\(message)")
        #expect(targets("undo.finished") == ["web-4", "web-3", "web-2", "web-1"], "each host undone, in reverse")
        let end = events.last { $0["event"] as? String == "run.finished" }
        #expect(end?["outcome"] as? String == "aborted", "\(end ?? [:])")
    }

    @Test func aPerHostOutcomeMustBeAStatus() async throws {
        let dir = try Self.sandbox(scenario: """
            drill: bad
            runbook: fleet
            outcomes:
              restart-shop: { web-2: broken }
            expect: { outcome: failed }
            """)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try await runCLI(["drill", "fleet", "--scenario", dir + "/rb/drills/one.yaml", "--runbooks", dir + "/rb", "--state-dir", dir + "/st"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("one.yaml:4:") && r.stderr.contains("outcomes.restart-shop.web-2 must be one of"), "\(r.stderr)")
    }
}
