import Foundation
import RunbookCore
import RunbookTestSupport
import Testing

/// Safety rails that need no human (SPEC §6.9): abort on alarm and the concurrency cap.
@Suite(.timeLimit(.minutes(5)))
struct SafetyRailTests {
    static func folder(_ yaml: String) throws -> String {
        try runbookSandbox(yaml, name: "rail")
    }

    static let alarmed = """
        runbook: rail
        steps:
          - id: look
            phase: detect
            check: { command: ["true"] }
          - id: off
            phase: mitigate
            flag: { file: "DIR/flags.json", key: image-resize, variant: "off" }
          - id: trip
            phase: mitigate
            needs: [off]
            command: ["touch", "DIR/errors-up"]
          - id: settle
            phase: mitigate
            needs: [trip]
            wait: 60s
          - id: fine
            phase: verify
            check: { command: ["true"] }
        abort_if:
          - id: errors-up
            check: { command: ["test", "-e", "DIR/errors-up"] }
            every: 200ms

        """

    @Test func anAlarmThatStartsPassingAfterTheFirstChangeAbortsAndUndoes() async throws {
        let dir = try Self.folder(Self.alarmed)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try await offPool { try runCLI(["run", "rail", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--json", "--yes"]) }
        #expect(r.status == 1, "\(r.stderr)")
        let events = jsonLines(r.stdout)
        #expect(events.contains { $0["event"] as? String == "alarm.fired" && $0["step"] as? String == "errors-up" })
        let end = events.last
        #expect(end?["outcome"] as? String == "aborted")
        #expect(jsonText(end, "message").contains("alarm errors-up"), "\(end ?? [:])")
        #expect(events.contains { $0["event"] as? String == "undo.finished" && $0["step"] as? String == "off" })
        #expect(try String(contentsOfFile: dir + "/flags.json", encoding: .utf8) == flagFileText, "the flag change was not undone")
        #expect(RunOutcome.aborted.exitCode == 1)
    }

    @Test func anAlarmThatCannotBeEvaluatedThreeTimesAbortsFailClosed() async throws {
        let dir = try Self.folder(Self.alarmed.replacingOccurrences(of: #"["test", "-e", "DIR/errors-up"]"#, with: #"["/nonexistent/probe"]"#))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try await offPool { try runCLI(["run", "rail", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--json", "--yes"]) }
        #expect(r.status == 1)
        let end = jsonLines(r.stdout).last
        #expect(end?["outcome"] as? String == "aborted")
        #expect(jsonText(end, "message").contains("could not be evaluated 3 times"), "\(end ?? [:])")
    }

    @Test func aDrillRehearsesAnAlarm() async throws {
        let dir = try Self.folder(Self.alarmed)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
            drill: alarm
            runbook: rail
            state: { flags: { image-resize: "on" } }
            outcomes:
              look: passed
              fine: passed
              errors-up: passed
            expect:
              outcome: aborted
              undone: ["flag image-resize: on -> off"]

            """.write(toFile: dir + "/rb/drills/alarm.yaml", atomically: true, encoding: .utf8)
        let r = try await offPool { try runCLI(["drill", "rail", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--scenario", dir + "/rb/drills/alarm.yaml"]) }
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/errors-up"), "a drill ran the command")
    }

    @Test func maxActiveCapsRunsAcrossLockKeysAndIsNeverOverridden() async throws {
        let dir = try Self.folder("""
            runbook: rail
            params:
              svc: { default: a, pattern: "[a-z]+" }
            guards: { lock: "{{ params.svc }}", max_active: 1 }
            steps:
              - id: hold
                phase: mitigate
                command: ["sleep", "3600"]
                timeout: 2h

            """)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try LiveProgram([runbookBinary, "run", "rail", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--json", "--param", "svc=a"])
        _ = try await offPool { first.readLine(containing: "\"event\":\"step.started\"") }
        let second = try await offPool {
            try runCLI(["run", "rail", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--json", "--force", "--param", "svc=b"])
        }
        #expect(second.status == 3)
        #expect(second.stderr.contains("max_active 1"), "\(second.stderr)")
        first.signal(SIGINT)
        #expect(try await offPool { first.wait().status } == 130)
    }

    @Test func theChangeBreakerRefusesNewRunsOnceTheBudgetIsSpent() async throws {
        let dir = try Self.folder("""
            runbook: rail
            steps:
              - id: look
                phase: detect
                check: { command: ["true"] }
              - id: off
                phase: mitigate
                flag: { file: "DIR/flags.json", key: image-resize, variant: "off" }

            """)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeTokenFile("ops:operator:breaker-token-1-0123456789\n", to: dir + "/tokens")
        let (server, port) = try await ChildServer.serve(["--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--token-file", dir + "/tokens",
                                                          "--max-changes", "1/1h"])
        defer { server.stop() }
        let base = "http://127.0.0.1:\(port)"
        let auth = ["Authorization": "Bearer breaker-token-1-0123456789"]
        let first = try http("POST", base + "/hooks/run", body: #"{"runbook": "rail"}"#, headers: auth)
        #expect(first.body.contains(#""status":"started""#), "\(first.body)")
        let id = try #require(jsonRuns(first.body).first)
        let done = await waitUntil(20) { ((try? http("GET", base + "/runs/\(id)", headers: auth).body) ?? "").contains(#""outcome":"mitigated""#) }
        #expect(done)
        let second = try http("POST", base + "/hooks/run", body: #"{"runbook": "rail"}"#, headers: auth)
        #expect(second.body.contains(#""guard":"breaker""#), "\(second.body)")
        #expect(try http("GET", base + "/metrics", headers: auth).body.contains("runbook_change_budget_remaining 0"))
    }

    @Test func aChangeFreezeRefusesRunsUnlessForcedOnTheCLIAndAlwaysOnTheServer() async throws {
        let dir = try Self.folder("""
            runbook: rail
            steps:
              - id: off
                phase: mitigate
                flag: { file: "DIR/flags.json", key: image-resize, variant: "off" }

            """)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "- { from: 2000-01-01T00:00:00Z, to: 2999-01-01T00:00:00Z, reason: test freeze }\n".write(toFile: dir + "/freeze.yaml", atomically: true, encoding: .utf8)
        let args = ["run", "rail", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--json", "--freeze", dir + "/freeze.yaml"]
        let refused = try await offPool { try runCLI(args) }
        #expect(refused.status == 3)
        #expect(refused.stderr.contains("guard freeze") && refused.stderr.contains("test freeze"), "\(refused.stderr)")
        #expect(try String(contentsOfFile: dir + "/flags.json", encoding: .utf8) == flagFileText)
        let forced = try await offPool { try runCLI(args + ["--force"]) }
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(jsonLines(forced.stdout).contains { $0["event"] as? String == "guard.overridden" && ($0["message"] as? String ?? "").contains("test freeze") })
        let shown = try await offPool { try runCLI(["freeze", "--freeze", dir + "/freeze.yaml"]) }
        #expect(shown.stdout.contains("in force now:") && shown.stdout.contains("test freeze"), "\(shown.stdout)")
        try writeTokenFile("ops:operator:freeze-token-1-0123456789\n", to: dir + "/tokens")
        let (server, port) = try await ChildServer.serve(["--runbooks", dir + "/rb", "--state-dir", dir + "/state2", "--token-file", dir + "/tokens",
                                                          "--freeze", dir + "/freeze.yaml"])
        defer { server.stop() }
        let r = try http("POST", "http://127.0.0.1:\(port)/hooks/run", body: #"{"runbook": "rail"}"#, headers: ["Authorization": "Bearer freeze-token-1-0123456789"])
        #expect(r.body.contains(#""guard":"freeze""#), "\(r.body)")
    }
}
