import Foundation
import Testing

/// The command line exactly as responders and the hidden cases use it.
@Suite(.timeLimit(.minutes(10)))
struct CLITests {
    @Test func validateAcceptsTheBundledRunbooks() async throws {
        let r = try await runCLI(["validate", repoRoot + "/runbooks"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("5 runbooks valid"))
    }

    @Test func validateReportsLocatedErrorsAndExits2() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "runbook: bad\nsteps:\n  - id: a\n    phase: detect\n    chek: { command: [\"true\"] }\n".write(toFile: dir + "/bad.yaml", atomically: true, encoding: .utf8)
        let r = try await runCLI(["validate", dir + "/bad.yaml"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("\(dir)/bad.yaml:5:5: error: unknown key 'chek' in step 'a' (did you mean 'check'?)"), "\(r.stderr)")
    }

    @Test func runWithJSONPrintsOnlyTimelineLinesAndRecordsHistory() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/rb", withIntermediateDirectories: true)
        try """
        runbook: hello
        params:
          who: { default: world, pattern: "^[a-z]+$" }
          token: { default: s3cr3t-value, secret: true }
        steps:
          - id: greet
            phase: diagnose
            check: { command: ["echo", "hello {{ params.who }} {{ params.token }}"], }

        """.write(toFile: dir + "/rb/hello.yaml", atomically: true, encoding: .utf8)
        let r = try await runCLI(["run", "hello", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--json", "--yes"])
        #expect(r.status == 0, "\(r.stderr)")
        let lines = jsonLines(r.stdout)
        #expect(lines.count == r.stdout.split(separator: "\n").count, "stdout has non-JSON lines")
        #expect(lines.map { $0["event"] as? String } == ["run.started", "step.started", "step.finished", "run.finished"])
        #expect(lines.last?["outcome"] as? String == "completed")
        for l in lines {
            #expect((l["time"] as? String)?.hasSuffix("Z") == true)
            #expect((l["run"] as? String)?.hasPrefix("r-") == true)
        }
        #expect(!r.stdout.contains("s3cr3t-value"), "a secret reached the timeline")
        let history = try await runCLI(["history", "--json", "--state-dir", dir + "/state"])
        let rows = jsonLines(history.stdout)
        #expect(rows.count == 1)
        for key in ["id", "runbook", "trigger", "outcome", "started", "duration_ms"] { #expect(rows.first?[key] != nil, "history lacks \(key)") }
        let timeline = try await runCLI(["timeline", rows.first?["id"] as? String ?? "", "--json", "--state-dir", dir + "/state"])
        #expect(jsonLines(timeline.stdout).count == 4)
        #expect(!timeline.stdout.contains("s3cr3t-value"))
    }

    @Test func aBadParamRefusesTheRunWithExit2NamingIt() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let r = try await runCLI(["run", "memory-leak", "--runbooks", repoRoot + "/runbooks", "--state-dir", dir, "--param", "service=shop; rm -rf /", "--json"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("param 'service'"), "\(r.stderr)")
        #expect(r.stdout.isEmpty)
    }

    @Test func confirmIsDeclinedWithoutATerminalOrYes() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/rb", withIntermediateDirectories: true)
        try """
        runbook: careful
        steps:
          - id: act
            phase: mitigate
            confirm: true
            command: ["touch", "\(dir)/acted"]

        """.write(toFile: dir + "/rb/careful.yaml", atomically: true, encoding: .utf8)
        let declined = try await runCLI(["run", "careful", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--json"])
        #expect(declined.status == 3)
        #expect(jsonLines(declined.stdout).contains { $0["status"] as? String == "declined" })
        #expect(!FileManager.default.fileExists(atPath: dir + "/acted"))
        let approved = try await runCLI(["run", "careful", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--json", "--yes"])
        #expect(approved.status == 0)
        #expect(FileManager.default.fileExists(atPath: dir + "/acted"))
    }

    @Test func failedRunExits1AndUnknownRunbookExits2() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/rb", withIntermediateDirectories: true)
        try "runbook: fails\nsteps:\n  - id: v\n    phase: verify\n    check: { command: [\"false\"] }\n".write(toFile: dir + "/rb/fails.yaml", atomically: true, encoding: .utf8)
        await #expect(try runCLI(["run", "fails", "--runbooks", dir + "/rb", "--state-dir", dir + "/s", "--json"]).status == 1)
        let missing = try await runCLI(["run", "fials", "--runbooks", dir + "/rb", "--state-dir", dir + "/s"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("did you mean 'fails'"))
    }

    @Test func showPrintsMermaidAndDot() async throws {
        let m = try await runCLI(["show", "memory-leak", "--runbooks", repoRoot + "/runbooks", "--format", "mermaid"])
        #expect(m.status == 0)
        #expect(m.stdout.hasPrefix("flowchart TD"))
        let d = try await runCLI(["show", "memory-leak", "--runbooks", repoRoot + "/runbooks", "--format", "dot"])
        #expect(d.stdout.hasPrefix("digraph"))
        #expect(d.stdout.contains("\"disable-image-resize\" -> \"restart-shop\""))
    }

    @Test func showFillsParamDefaultsIntoChecksAsIntoChanges() async throws {
        let t = try await runCLI(["show", "memory-leak", "--runbooks", repoRoot + "/runbooks"])
        #expect(t.status == 0)
        #expect(t.stdout.contains("check http http://127.0.0.1:8080/health/db"), "\(t.stdout)")
        #expect(!t.stdout.contains("{{ params."), "a param with a default is shown raw:\n\(t.stdout)")
    }
}
