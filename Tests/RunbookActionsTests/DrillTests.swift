import Foundation
import Testing

/// Drills through the CLI, as `runbook drill` and `runbook test` are used.
@Suite(.timeLimit(.minutes(10)))
struct DrillTests {
    @Test func bundledDrillsAllPass() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try await runCLI(["test", "--runbooks", repoRoot + "/runbooks", "--state-dir", dir, "--junit", dir + "/junit.xml"], cwd: repoRoot)
        #expect(r.status == 0, "\(r.stdout)")
        #expect(r.stdout.hasSuffix(" passed, 0 failed\n"))
        let junit = try String(contentsOfFile: dir + "/junit.xml", encoding: .utf8)
        #expect(junit.contains("<testsuite name=\"runbook drills\"") && junit.contains("failures=\"0\""))
        let drills = await jsonLines(try runCLI(["history", "--json", "--kind", "drill", "--limit", "1000", "--state-dir", dir]).stdout)
        #expect(!drills.isEmpty && drills.allSatisfy { $0["drill"] as? Bool == true })
        let shown = try await runCLI(["history", "--state-dir", dir])
        #expect(shown.status == 0 && !shown.stdout.contains("[drill]"), "drill rows bury real runs:\n\(shown.stdout)")
        #expect(shown.stderr.contains("--all"), "history does not say drills are hidden")
        let all = await jsonLines(try runCLI(["history", "--json", "--all", "--limit", "1000", "--state-dir", dir]).stdout)
        #expect(all.count == drills.count)
    }

    func sandbox(port: Int = 9) throws -> String {
        let dir = temporaryFolder()
        try FileManager.default.createDirectory(atPath: dir + "/rb/drills", withIntermediateDirectories: true)
        try flagFileText.write(toFile: dir + "/flags.json", atomically: true, encoding: .utf8)
        try """
        runbook: toucher
        steps:
          - id: look
            phase: detect
            check: { http: { url: "http://127.0.0.1:\(port)/health" } }
          - id: off
            phase: mitigate
            flag: { file: \(dir)/flags.json, key: image-resize, variant: "off" }
          - id: touch
            phase: mitigate
            command: ["touch", "\(dir)/touched"]
          - id: tell
            phase: mitigate
            notify: { url: "http://127.0.0.1:\(port)/hook", text: hi }
          - id: pause
            phase: mitigate
            wait: 10m
          - id: ok
            phase: verify
            check: { command: ["touch", "\(dir)/checked"] }
            retry: { attempts: 3, delay: 1m }

        """.write(toFile: dir + "/rb/toucher.yaml", atomically: true, encoding: .utf8)
        return dir
    }

    @Test func aDrillTouchesNoFileProcessOrNetworkAndTakesSimulatedTime() async throws {
        let (target, port) = try ChildServer.target()
        defer { target.stop() }
        let dir = try sandbox(port: port)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
        drill: all-good
        runbook: toucher
        outcomes:
          look: passed
          ok: { status: failed, times: 2 }
        expect:
          outcome: mitigated
          ran: [off, touch, tell, pause]
          changes: ["flag image-resize: on -> off", "command touch", "notify http://127.0.0.1:\(port)/hook"]

        """.write(toFile: dir + "/rb/drills/all-good.yaml", atomically: true, encoding: .utf8)
        let started = Date()
        let r = try await runCLI(["drill", "toucher", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--scenario", dir + "/rb/drills/all-good.yaml"])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        // The drill simulates 12 minutes: waiting them for real would take 720 s, far above what a
        // loaded machine adds to the drill itself (98 s seen under a CPU hog with a build beside it).
        #expect(Date().timeIntervalSince(started) < 600, "simulated time waited for real")
        #expect(r.stdout.contains("simulated 12m"), "\(r.stdout)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/flags.json")) == Data(flagFileText.utf8))
        #expect(!FileManager.default.fileExists(atPath: dir + "/touched"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/checked"))
        #expect(try fetch("http://127.0.0.1:\(port)/hooks") == "[]", "the drill posted a notification")
    }

    @Test func aWrongExpectationFailsWithExpectedVersusActual() async throws {
        let dir = try sandbox()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
        drill: wrong
        runbook: toucher
        outcomes: { look: passed, ok: failed }
        expect:
          outcome: mitigated
          skipped: [off]

        """.write(toFile: dir + "/wrong.yaml", atomically: true, encoding: .utf8)
        let r = try await runCLI(["drill", "toucher", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--scenario", dir + "/wrong.yaml"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("outcome: expected mitigated, actual failed"), "\(r.stdout)")
        #expect(r.stdout.contains("skipped: expected [off] skipped; [off] were not"), "\(r.stdout)")
    }

    @Test func aMissingOutcomeIsAnInvalidScenarioNamingTheStep() async throws {
        let dir = try sandbox()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "drill: gap\nrunbook: toucher\noutcomes:\n  look: passed\nexpect: { outcome: mitigated }\n".write(toFile: dir + "/gap.yaml", atomically: true, encoding: .utf8)
        let r = try await runCLI(["drill", "toucher", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--scenario", dir + "/gap.yaml"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("check 'ok'"), "\(r.stderr)")
    }

    @Test func scenarioErrorsAreLocated() async throws {
        let dir = try sandbox()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "drill: bad\nrunbook: toucher\noutcomes:\n  lok: passed\n  ok: maybe\nexpect: { outcome: mitigated }\n".write(toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)
        let r = try await runCLI(["drill", "toucher", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--scenario", dir + "/bad.yaml"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("\(dir)/bad.yaml:5:7: error:"), "\(r.stderr)")
    }

    @Test func unknownStepInOutcomesIsLocatedWithAHint() async throws {
        let dir = try sandbox()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "drill: bad\nrunbook: toucher\noutcomes:\n  lok: passed\n  ok: passed\nexpect: { outcome: mitigated }\n".write(toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)
        let r = try await runCLI(["drill", "toucher", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--scenario", dir + "/bad.yaml"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("\(dir)/bad.yaml:4:3: error: unknown step 'lok' in runbook toucher (did you mean 'look'?)"), "\(r.stderr)")
    }

    @Test func replayRehearsesAPastRunsCheckResults() async throws {
        let dir = try sandbox()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "runbook: probe\nsteps:\n  - id: a\n    phase: detect\n    check: { command: [\"true\"] }\n  - id: b\n    phase: diagnose\n    check: { command: [\"false\"] }\n"
            .write(toFile: dir + "/rb/probe.yaml", atomically: true, encoding: .utf8)
        let live = try await runCLI(["run", "probe", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--json"])
        let runID = jsonLines(live.stdout).first?["run"] as? String ?? ""
        let replay = try await runCLI(["drill", "probe", "--replay", runID, "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--json"])
        #expect(replay.status == 0, "\(replay.stderr)")
        let events = jsonLines(replay.stdout)
        #expect(events.first?["drill"] as? Bool == true)
        #expect(events.contains { $0["step"] as? String == "b" && $0["status"] as? String == "failed" })
    }

    @Test func anInvalidDrillLeavesNoRowInTheHistory() async throws {
        let dir = try sandbox()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Invalid only once the rehearsal reaches check 'ok': events were already flowing.
        try "drill: gap\nrunbook: toucher\noutcomes:\n  look: passed\nexpect: { outcome: mitigated }\n".write(toFile: dir + "/gap.yaml", atomically: true, encoding: .utf8)
        let r = try await runCLI(["drill", "toucher", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--scenario", dir + "/gap.yaml"])
        #expect(r.status == 2)
        let rows = await jsonLines(try runCLI(["history", "--all", "--json", "--state-dir", dir + "/state"]).stdout)
        #expect(rows.isEmpty, "an invalid drill left rows: \(rows)")
        let test = try await runCLI(["test", dir + "/rb/drills", "--runbooks", dir + "/rb", "--state-dir", dir + "/state"])
        #expect(!test.stderr.contains("marked"), "\(test.stderr)")
    }

    @Test func replayingADryRunAssumesTheChecksItDidNotRunAndSaysSo() async throws {
        let dir = try sandbox()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
        runbook: fixer
        steps:
          - id: sick
            phase: detect
            check: { command: ["true"] }
          - id: fix
            phase: mitigate
            command: ["touch", "\(dir)/fixed"]
          - id: well
            phase: verify
            check: { command: ["true"] }
        """.write(toFile: dir + "/rb/fixer.yaml", atomically: true, encoding: .utf8)
        let dry = try await runCLI(["run", "fixer", "--dry-run", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--json"])
        #expect(dry.status == 0, "\(dry.stderr)")
        let runID = try #require(jsonLines(dry.stdout).first?["run"] as? String)
        let replay = try await runCLI(["drill", "fixer", "--replay", runID, "--runbooks", dir + "/rb", "--state-dir", dir + "/state"])
        #expect(replay.status == 0, "\(replay.stdout)\n\(replay.stderr)")
        #expect(replay.stdout.contains("assumed to pass (well)"), "\(replay.stdout)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/fixed"), "a dry run or a drill changed something")
    }
}
