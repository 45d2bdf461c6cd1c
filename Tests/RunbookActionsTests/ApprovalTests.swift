import Foundation
import RunbookCore
import RunbookTestSupport
import Testing

/// Approval gates (SPEC §6.9): the `confirm` map, `guards.auto: ask`, `runbook approve`, the
/// server's approve/deny endpoints, paused runs across a restart, and gates for freezes and the breaker.
@Suite(.timeLimit(.minutes(5)))
struct ApprovalTests {
    static func folder(_ yaml: String) throws -> String {
        try runbookSandbox(yaml, name: "gate", tokens: "am:alerts:am-token-1-0123456789\nops:operator:ops-token-1-0123456789\nlead:operator:lead-token-1-0123456789\n")
    }

    static func gated(_ confirm: String) -> String {
        """
        runbook: gate
        steps:
          - id: look
            phase: detect
            check: { command: ["true"] }
          - id: off
            phase: mitigate
            confirm: \(confirm)
            flag: { file: "DIR/flags.json", key: image-resize, variant: "off" }

        """
    }

    static let asks = """
        runbook: gate
        triggers:
          - alert: { alertname: ShopDown }
        guards: { auto: ask }
        steps:
          - id: look
            phase: detect
            check: { command: ["true"] }
          - id: off
            phase: mitigate
            flag: { file: "DIR/flags.json", key: image-resize, variant: "off" }
          - id: fine
            phase: verify
            check: { command: ["true"] }

        """

    static let alert = #"{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"ShopDown"},"fingerprint":"fp-1"}]}"#

    /// The rest of a live run's stdout, and how it ended.
    static func finish(_ run: LiveProgram) async throws -> ((status: Int32, stderr: String), String) {
        try await offPool {
            var lines: [String] = []
            while let l = run.readLine() { lines.append(l) }
            return (run.wait(), lines.joined(separator: "\n"))
        }
    }

    /// A server on the state folder of a `runbook run`, for answers by other people (their tokens):
    /// the CLI approves only as the user running it, who started the run.
    static func answerDesk(_ dir: String) async throws -> (ChildServer, String) {
        let (server, port) = try await ChildServer.serve(["--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--token-file", dir + "/tokens"])
        return (server, "http://127.0.0.1:\(port)")
    }

    static let opsToken = ["Authorization": "Bearer ops-token-1-0123456789"]
    static let leadToken = ["Authorization": "Bearer lead-token-1-0123456789"]

    /// The operating-system user running the tests: the CLI's approver.
    static var osUser: String { getpwuid(getuid()).flatMap { $0.pointee.pw_name.map { String(cString: $0) } } ?? "uid \(getuid())" }

    func flagIsOff(_ dir: String) throws -> Bool {
        try String(contentsOfFile: dir + "/flags.json", encoding: .utf8).contains(#""defaultVariant": "off""#)
    }

    @Test func aGateThatTimesOutDeclinesAndTheRunIsRefused() async throws {
        let dir = try Self.folder(Self.gated("{ approvals: 1, timeout: 2s, on_timeout: decline }"))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try await offPool { try runCLI(["run", "gate", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--json", "--yes"]) }
        #expect(r.status == 3, "\(r.stderr)")
        let events = jsonLines(r.stdout)
        let asked = try #require(events.first { $0["event"] as? String == "approval.requested" })
        #expect(asked["status"] as? String == "awaiting-approval")
        #expect(asked["gate"] as? String == "off")
        #expect(jsonText(asked, "message").contains("flag image-resize"), "the planned change is shown: \(asked)")
        #expect(events.contains { $0["event"] as? String == "approval.timed_out" && $0["status"] as? String == "declined" })
        #expect(events.last?["outcome"] as? String == "refused")
        #expect(try String(contentsOfFile: dir + "/flags.json", encoding: .utf8) == flagFileText, "a declined gate changed the flag")
    }

    @Test func aGateThatTimesOutWithProceedGoesOn() async throws {
        let dir = try Self.folder(Self.gated("{ timeout: 1s, on_timeout: proceed }"))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try await offPool { try runCLI(["run", "gate", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--json"]) }
        #expect(r.status == 0, "\(r.stderr)")
        #expect(jsonLines(r.stdout).contains { $0["event"] as? String == "approval.timed_out" && $0["status"] as? String == "approved" })
        #expect(try flagIsOff(dir))
    }

    @Test func twoApprovalsNeedTwoPeopleAndOnePersonCountsOnce() async throws {
        let dir = try Self.folder(Self.gated("{ approvals: 2, timeout: 1h }"))
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let state = dir + "/state"
        let run = try LiveProgram([runbookBinary, "run", "gate", "--runbooks", dir + "/rb", "--state-dir", state, "--json"])
        var ended = false
        // A failed expectation before the end must not leave the run waiting at its gate.
        defer { if !ended { run.signal(SIGKILL); _ = run.wait() } }
        let asked = try await offPool { run.readLine(containing: "\"event\":\"approval.requested\"") }
        let id = try #require(jsonLines(asked ?? "").first?["run"] as? String)
        // The user who started the run cannot approve it from the CLI, under any name.
        let own = try await offPool { try runCLI(["approve", id, "--state-dir", state]) }
        #expect(own.status == 1 && own.stderr.contains("cannot answer its own gate"), "\(own.stderr)")
        let renamed = try await offPool { try runCLI(["approve", id, "--as", "alice", "--state-dir", state]) }
        #expect(renamed.status == 2 && renamed.stderr.contains("approves as the user running it"), "\(renamed.stderr)")
        let (desk, base) = try await Self.answerDesk(dir)
        defer { desk.stop() }
        let first = try http("POST", base + "/runs/\(id)/approve", headers: Self.opsToken)
        #expect(first.status == 200 && first.body.contains(#""approvals":1,"needed":2"#), "\(first.body)")
        let again = try http("POST", base + "/runs/\(id)/approve", headers: Self.opsToken)
        #expect(again.status == 409)
        #expect(again.body.contains("already approved"), "\(again.body)")
        #expect(try String(contentsOfFile: dir + "/flags.json", encoding: .utf8) == flagFileText, "one approval of two let the change through")
        let second = try http("POST", base + "/runs/last/approve", headers: Self.leadToken)
        #expect(second.status == 200, "\(second.body)")
        let (end, rest) = try await Self.finish(run)
        ended = true
        #expect(end.status == 0, "\(end.stderr)")
        let granted = jsonLines(rest).filter { $0["event"] as? String == "approval.granted" }.compactMap { $0["by"] as? String }
        #expect(granted == ["ops", "lead"])
        #expect(try flagIsOff(dir))
        let late = try http("POST", base + "/runs/\(id)/deny", headers: ["Authorization": "Bearer am-token-1-0123456789"])
        #expect(late.status == 403)
        let lateCLI = try await offPool { try runCLI(["approve", id, "--state-dir", state]) }
        #expect(lateCLI.status == 1)
        #expect(lateCLI.stderr.contains("not waiting for approval") && lateCLI.stderr.contains("approved by ops, lead"), "\(lateCLI.stderr)")
    }

    @Test func aDeniedGateStopsTheRunAndUndoesEarlierChanges() async throws {
        let dir = try Self.folder("""
            runbook: gate
            steps:
              - id: first
                phase: mitigate
                flag: { file: "DIR/flags.json", key: other, variant: "a" }
              - id: off
                phase: mitigate
                needs: [first]
                confirm: { timeout: 1h }
                flag: { file: "DIR/flags.json", key: image-resize, variant: "off" }

            """)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let state = dir + "/state"
        let run = try LiveProgram([runbookBinary, "run", "gate", "--runbooks", dir + "/rb", "--state-dir", state, "--json"])
        var ended = false
        // A failed expectation before the end must not leave the run waiting at its gate.
        defer { if !ended { run.signal(SIGKILL); _ = run.wait() } }
        _ = try await offPool { run.readLine(containing: "\"event\":\"approval.requested\"") }
        let (desk, base) = try await Self.answerDesk(dir)
        defer { desk.stop() }
        let denied = try http("POST", base + "/runs/last/deny", headers: Self.leadToken)
        #expect(denied.status == 200, "\(denied.body)")
        let (end, rest) = try await Self.finish(run)
        ended = true
        #expect(end.status == 3)
        let events = jsonLines(rest)
        #expect(events.contains { $0["event"] as? String == "approval.denied" && $0["by"] as? String == "lead" })
        #expect(events.contains { $0["event"] as? String == "undo.finished" && $0["step"] as? String == "first" })
        #expect(try String(contentsOfFile: dir + "/flags.json", encoding: .utf8) == flagFileText, "the earlier change was not undone")
    }

    @Test func autoAskPausesAnAlertRunUntilAnOperatorApproves() async throws {
        let dir = try Self.folder(Self.asks)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (server, port) = try await ChildServer.serve(["--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--token-file", dir + "/tokens"])
        defer { server.stop() }
        let base = "http://127.0.0.1:\(port)"
        let posted = try http("POST", base + "/hooks/alertmanager", body: Self.alert, headers: ["Authorization": "Bearer am-token-1-0123456789"])
        let id = try #require(jsonRuns(posted.body).first, "\(posted.body)")
        let ops = ["Authorization": "Bearer ops-token-1-0123456789"]
        let paused = await waitUntil(20) { ((try? http("GET", base + "/runs", headers: ops).body) ?? "").contains(#""status":"awaiting-approval""#) }
        #expect(paused)
        #expect(try String(contentsOfFile: dir + "/flags.json", encoding: .utf8) == flagFileText, "an ask run changed things before approval")
        // The alerts token may not approve; the operator may.
        #expect(try http("POST", base + "/runs/\(id)/approve", headers: ["Authorization": "Bearer am-token-1-0123456789"]).status == 403)
        let ok = try http("POST", base + "/runs/\(id)/approve", headers: ops)
        #expect(ok.status == 200, "\(ok.body)")
        #expect(ok.body.contains(#""by":"ops""#))
        let done = await waitUntil(20) { ((try? http("GET", base + "/runs/\(id)", headers: ops).body) ?? "").contains(#""outcome":"mitigated""#) }
        #expect(done)
        #expect(try flagIsOff(dir))
        let timeline = try http("GET", base + "/runs/\(id)", headers: ops).body
        #expect(timeline.contains(#""event":"approval.granted""#) && timeline.contains(#""by":"ops""#))
    }

    @Test func aPausedRunSurvivesAServerRestartWithItsDeadlineAndIsApprovedFromTheCLI() async throws {
        let dir = try Self.folder(Self.asks)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let args = ["--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--token-file", dir + "/tokens"]
        let ops = ["Authorization": "Bearer ops-token-1-0123456789"]
        let (first, port) = try await ChildServer.serve(args)
        defer { first.stop() }
        let posted = try http("POST", "http://127.0.0.1:\(port)/hooks/alertmanager", body: Self.alert, headers: ["Authorization": "Bearer am-token-1-0123456789"])
        let id = try #require(jsonRuns(posted.body).first, "\(posted.body)")
        let paused = await waitUntil(20) { ((try? http("GET", "http://127.0.0.1:\(port)/runs", headers: ops).body) ?? "").contains(#""status":"awaiting-approval""#) }
        #expect(paused)
        // Killed outright: no chance to say anything.
        kill(first.pid, SIGKILL)
        first.stop()
        let (second, port2) = try await ChildServer.serve(args)
        defer { second.stop() }
        let base = "http://127.0.0.1:\(port2)"
        let run = try http("GET", base + "/runs/\(id)", headers: ops).body
        #expect(run.contains(#""status":"awaiting-approval""#), "\(run)")
        #expect(run.contains(#""event":"run.resumed""#), "\(run)")
        let deadlines = jsonLines(try String(contentsOfFile: dir + "/state/runs/\(id).jsonl", encoding: .utf8))
            .filter { $0["event"] as? String == "approval.requested" }.compactMap { $0["deadline"] as? String }
        #expect(deadlines.count == 2 && deadlines[0] == deadlines[1], "the timeout was not kept: \(deadlines)")
        // The CLI answers as the user running it, never as the alert token's name (or anyone else's).
        let posing = try await offPool { try runCLI(["approve", id, "--as", "am", "--state-dir", dir + "/state"]) }
        #expect(posing.status == 2)
        #expect(posing.stderr.contains("approves as the user running it"), "\(posing.stderr)")
        let ok = try await offPool { try runCLI(["approve", id, "--as", " \(Self.osUser.uppercased()) ", "--state-dir", dir + "/state"]) }
        #expect(ok.status == 0, "\(ok.stderr)")
        let done = await waitUntil(20) { ((try? http("GET", base + "/runs/\(id)", headers: ops).body) ?? "").contains(#""outcome":"mitigated""#) }
        #expect(done)
        #expect(try flagIsOff(dir))
        // The detect step ran once, before the restart: finished steps are never rerun.
        let timeline = try String(contentsOfFile: dir + "/state/runs/\(id).jsonl", encoding: .utf8)
        #expect(jsonLines(timeline).filter { $0["event"] as? String == "step.started" && $0["step"] as? String == "look" }.count == 1)
        // The postmortem tells who approved, and the restart.
        let pm = try await offPool { try runCLI(["postmortem", id, "--state-dir", dir + "/state"]) }
        #expect(pm.stdout.contains("Approved by \(Self.osUser)") && pm.stdout.contains("Run resumed"), "\(pm.stdout)")
    }

    @Test func aGracefulShutdownLeavesAPausedRunForTheNextServer() async throws {
        let dir = try Self.folder(Self.asks)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let args = ["--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--token-file", dir + "/tokens"]
        let ops = ["Authorization": "Bearer ops-token-1-0123456789"]
        let (first, port) = try await ChildServer.serve(args)
        defer { first.stop() }
        let posted = try http("POST", "http://127.0.0.1:\(port)/hooks/alertmanager", body: Self.alert, headers: ["Authorization": "Bearer am-token-1-0123456789"])
        let id = try #require(jsonRuns(posted.body).first, "\(posted.body)")
        #expect(await waitUntil(20) { ((try? http("GET", "http://127.0.0.1:\(port)/runs", headers: ops).body) ?? "").contains(#""status":"awaiting-approval""#) })
        first.stop()
        // Nobody finalised it: still open, still waiting.
        let history = try await offPool { try runCLI(["history", "--json", "--state-dir", dir + "/state"]) }
        #expect(history.stdout.contains(#""outcome":null"#), "\(history.stdout)")
        let (second, port2) = try await ChildServer.serve(args)
        defer { second.stop() }
        let denied = try http("POST", "http://127.0.0.1:\(port2)/runs/\(id)/deny", headers: ["Authorization": "Bearer lead-token-1-0123456789"])
        #expect(denied.status == 200, "\(denied.body)")
        let done = await waitUntil(20) { ((try? http("GET", "http://127.0.0.1:\(port2)/runs/\(id)", headers: ops).body) ?? "").contains(#""outcome":"refused""#) }
        #expect(done)
        #expect(try String(contentsOfFile: dir + "/flags.json", encoding: .utf8) == flagFileText)
    }

    @Test func withAnApprovalChannelTheBreakerAndAFreezePauseInsteadOfRefusing() async throws {
        let (hooks, hookPort) = try ChildServer.target()
        defer { hooks.stop() }
        let dir = try Self.folder("""
            runbook: gate
            approvals_channel: "http://127.0.0.1:\(hookPort)/hook"
            steps:
              - id: off
                phase: mitigate
                flag: { file: "DIR/flags.json", key: image-resize, variant: "off" }

            """)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "- { from: 2000-01-01T00:00:00Z, to: 2999-01-01T00:00:00Z, reason: holiday freeze }\n".write(toFile: dir + "/freeze.yaml", atomically: true, encoding: .utf8)
        let (server, port) = try await ChildServer.serve(["--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--token-file", dir + "/tokens",
                                                          "--freeze", dir + "/freeze.yaml", "--max-changes", "1/1h"])
        defer { server.stop() }
        let base = "http://127.0.0.1:\(port)"
        let ops = ["Authorization": "Bearer ops-token-1-0123456789"]
        let started = try http("POST", base + "/hooks/run", body: #"{"runbook": "gate"}"#, headers: ops)
        let id = try #require(jsonRuns(started.body).first, "\(started.body)")
        #expect(started.body.contains(#""status":"started""#), "a freeze with an approval path pauses, it does not refuse: \(started.body)")
        #expect(await waitUntil(20) { ((try? http("GET", base + "/runs/\(id)", headers: ops).body) ?? "").contains(#""status":"awaiting-approval""#) })
        let run = try http("GET", base + "/runs/\(id)", headers: ops).body
        #expect(run.contains("holiday freeze"), "the gate names the window: \(run)")
        // The approvals channel heard of it, with the run id, the change and how to answer.
        #expect(await waitUntil(10) { ((try? fetch("http://127.0.0.1:\(hookPort)/hooks")) ?? "").contains(id) })
        let hooksPosted = try JSONSerialization.jsonObject(with: Data(fetch("http://127.0.0.1:\(hookPort)/hooks").utf8)) as? [[String: Any]] ?? []
        let bodies = hooksPosted.compactMap { $0["body"] as? String }
        let told = bodies.compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }.compactMap { $0["text"] as? String }.joined()
        #expect(told.contains("image-resize") && told.contains("/runs/\(id)/approve"), "\(told)")
        // The person who started it cannot approve it.
        #expect(try http("POST", base + "/runs/\(id)/approve", headers: ops).status == 409)
        #expect(try http("POST", base + "/runs/\(id)/approve", headers: ["Authorization": "Bearer lead-token-1-0123456789"]).status == 200)
        #expect(await waitUntil(20) { ((try? http("GET", base + "/runs/\(id)", headers: ops).body) ?? "").contains(#""outcome":"mitigated""#) })
        // The budget (1/1h) is spent: once the freeze is approved, the change itself waits for its own
        // approval, naming the breaker.
        let next = try http("POST", base + "/hooks/run", body: #"{"runbook": "gate"}"#, headers: ops)
        let nextID = try #require(jsonRuns(next.body).first)
        #expect(await waitUntil(20) { ((try? http("GET", base + "/runs/\(nextID)", headers: ops).body) ?? "").contains(#""awaiting":["changes"]"#) })
        #expect(try http("POST", base + "/runs/\(nextID)/approve", headers: ["Authorization": "Bearer lead-token-1-0123456789"]).status == 200)
        #expect(await waitUntil(20) { ((try? http("GET", base + "/runs/\(nextID)", headers: ops).body) ?? "").contains("change breaker: 1 change") })
        let run2 = try http("GET", base + "/runs/\(nextID)", headers: ops).body
        #expect(run2.contains(#""awaiting":["changes#2"]"#), "\(run2)")
        #expect(!run2.contains(#""event":"change.applied""#), "a change over the cap went through without its approval")
    }

    @Test func drillsRehearseApprovalsAndFreezes() async throws {
        let dir = try Self.folder(Self.asks)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func drill(_ name: String, _ text: String) async throws -> (status: Int32, stdout: String, stderr: String) {
            try text.write(toFile: dir + "/rb/drills/\(name).yaml", atomically: true, encoding: .utf8)
            return try await offPool { try runCLI(["drill", "gate", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--scenario", dir + "/rb/drills/\(name).yaml"]) }
        }
        let base = "drill: D\nrunbook: gate\noutcomes: { look: passed, fine: passed }\n"
        let approved = try await drill("approved", base + "approvals: { act: approve }\nexpect: { outcome: mitigated, changes: [\"flag image-resize\"] }\n")
        #expect(approved.status == 0, "\(approved.stdout)\(approved.stderr)")
        let denied = try await drill("denied", base + "approvals: { act: deny }\nexpect: { outcome: refused, changes: [] }\n")
        #expect(denied.status == 0, "\(denied.stdout)\(denied.stderr)")
        let timedOut = try await drill("timeout", base + "approvals: { act: timeout }\nexpect: { outcome: refused }\n")
        #expect(timedOut.status == 0, "\(timedOut.stdout)\(timedOut.stderr)")
        let silent = try await drill("silent", base + "expect: { outcome: mitigated }\n")
        #expect(silent.status == 2)
        #expect(silent.stderr.contains("approvals: { act: approve }"), "\(silent.stderr)")
        let wrong = try await drill("wrong", base + "approvals: { act: deny }\nexpect: { outcome: mitigated }\n")
        #expect(wrong.status == 1)
        #expect(wrong.stdout.contains("outcome: expected mitigated, actual refused"), "\(wrong.stdout)")
        // A freeze: the run's gate names it.
        let frozen = try await drill("frozen", base + "state: { freeze: release week }\napprovals: { act: deny }\nexpect: { outcome: refused }\n")
        #expect(frozen.status == 0, "\(frozen.stdout)\(frozen.stderr)")
        let timeline = try await offPool { try runCLI(["timeline", "last", "--json", "--state-dir", dir + "/state"]) }
        #expect(timeline.stdout.contains("change freeze: release week"), "\(timeline.stdout)")
    }
}
