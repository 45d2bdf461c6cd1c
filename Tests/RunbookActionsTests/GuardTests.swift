import Foundation
import RunbookCore
import RunbookTestSupport
import Testing

/// Guards on a responder's `runbook run`: refused with exit 3 saying which guard and until when.
@Suite(.timeLimit(.minutes(10)))
struct GuardTests {
    func sandbox(guards: String, command: String = "[\"true\"]") throws -> String {
        let dir = temporaryFolder()
        try FileManager.default.createDirectory(atPath: dir + "/rb", withIntermediateDirectories: true)
        try """
        runbook: guarded
        params:
          svc: { default: shop, pattern: "^[a-z]+$" }
          secs: { default: "3600", pattern: "[0-9]+" }
        guards: \(guards)
        steps:
          - id: act
            phase: mitigate
            command: \(command)
            timeout: 10m

        """.write(toFile: dir + "/rb/guarded.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    func run(_ dir: String, _ extra: [String] = []) throws -> (status: Int32, stdout: String, stderr: String) {
        try runCLI(["run", "guarded", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--json"] + extra)
    }

    @Test func cooldownRefusesUntilItEndsAndForceOverridesOnTheRecord() async throws {
        let dir = try sandbox(guards: "{ cooldown: 1h }")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try run(dir).status == 0)
        let refused = try run(dir)
        #expect(refused.status == 3)
        #expect(refused.stderr.contains("refused by guard cooldown until"), "\(refused.stderr)")
        let event = jsonLines(refused.stdout).first { $0["event"] as? String == "guard.refused" }
        #expect(event?["guard"] as? String == "cooldown")
        #expect(event?["until"] as? String != nil)
        #expect(jsonLines(refused.stdout).last?["outcome"] as? String == "refused")
        let dry = try run(dir, ["--dry-run"])
        #expect(dry.status == 0, "a dry run changes nothing and is not refused")
        let forced = try run(dir, ["--force"])
        #expect(forced.status == 0)
        #expect(jsonLines(forced.stdout).contains { $0["event"] as? String == "guard.overridden" && $0["guard"] as? String == "cooldown" })
    }

    @Test func maxRunsCountsRunsInTheWindow() async throws {
        let dir = try sandbox(guards: "{ max_runs: { count: 2, per: 1h } }")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try run(dir).status == 0)
        #expect(try run(dir).status == 0)
        let third = try run(dir)
        #expect(third.status == 3)
        #expect(third.stderr.contains("max_runs 2 per 1h00m reached"), "\(third.stderr)")
    }

    @Test(.timeLimit(.minutes(5))) func aLockIsNeverOverriddenAcrossProcesses() async throws {
        // The first run holds the lock until it is interrupted: no timing assumption about a loaded machine.
        let dir = try sandbox(guards: "{ lock: \"{{ params.svc }}\" }", command: "[\"sleep\", \"{{ params.secs }}\"]")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try LiveProgram([runbookBinary, "run", "guarded", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--json"])
        // Wait for the first run to be under way (its step started), not for a fixed time.
        _ = try await offPool { first.readLine(containing: "\"event\":\"step.started\"") }
        let second = try run(dir, ["--force"])
        #expect(second.status == 3)
        #expect(second.stderr.contains("holds lock 'shop'"), "\(second.stderr)")
        #expect(second.stderr.contains("(r-"), "the refusal names the run holding the lock: \(second.stderr)")
        first.signal(SIGINT)
        #expect(try await offPool { first.wait().status } == 130)
        // Once the first run ends, its lock is free again.
        let third = try run(dir, ["--param", "svc=shop", "--param", "secs=0"])
        #expect(third.status == 0, "\(third.stderr)")
    }

    @Test func guardCheckIsPure() {
        var g = Guards()
        g.cooldown = 600
        let now = Date(timeIntervalSince1970: 10_000)
        #expect(GuardCheck.evaluate(g, now: now, starts: [now.addingTimeInterval(-601)]) == nil)
        let r = GuardCheck.evaluate(g, now: now, starts: [now.addingTimeInterval(-60)])
        #expect(r?.guardName == "cooldown")
        #expect(r?.until == now.addingTimeInterval(540))
    }
}
