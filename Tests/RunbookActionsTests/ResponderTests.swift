import Foundation
import RunbookCore
import RunbookDrills
import RunbookTestSupport
import Testing

/// A responder's first hour (SPEC §6.1–§6.4, §6.6, §6.10): honest statuses, dry runs, hermetic
/// drills, clear prompts, names and ids, through the real binary.
@Suite(.timeLimit(.minutes(10)))
struct ResponderTests {
    struct Box {
        let dir: String
        var rb: String { dir + "/rb" }
        var state: String { dir + "/state" }
        init(_ files: [String: String]) throws {
            dir = temporaryFolder()
            try FileManager.default.createDirectory(atPath: dir + "/rb/drills", withIntermediateDirectories: true)
            for (name, text) in files {
                try text.replacingOccurrences(of: "DIR", with: dir).write(toFile: "\(dir)/rb/\(name)", atomically: true, encoding: .utf8)
            }
        }
        /// The command with the folders it takes.
        func cli(_ args: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
            let command = args.first ?? ""
            var extra: [String] = []
            if !["history", "timeline"].contains(command) { extra += ["--runbooks", rb] }
            if !["list", "validate", "show"].contains(command) { extra += ["--state-dir", state] }
            return try runCLI(args + extra)
        }
        func remove() { try? FileManager.default.removeItem(atPath: dir) }
    }

    @Test func anUnreachableDetectTargetIsInconclusiveNotHealthy() async throws {
        let box = try Box(["down.yaml": """
            runbook: down
            steps:
              - id: up
                phase: detect
                check: { http: { url: "http://127.0.0.1:9/health", status: 200 } }
              - id: fix
                phase: mitigate
                command: ["true"]

            """])
        defer { box.remove() }
        let r = try await offPool { try box.cli(["run", "down", "--json"]) }
        #expect(r.status == 4, "\(r.stderr)")
        let events = jsonLines(r.stdout)
        let up = events.first { $0["step"] as? String == "up" && $0["event"] as? String == "step.finished" }
        #expect(up?["status"] as? String == "errored")
        #expect(jsonText(up, "message").contains("refused"), "the OS error is in the message: \(up ?? [:])")
        #expect(events.last?["outcome"] as? String == "inconclusive")
        #expect(events.contains { $0["step"] as? String == "fix" && $0["status"] as? String == "skipped" })
    }

    @Test func aMisspelledOutputNameIsALocatedErrorWithASuggestion() async throws {
        let box = try Box(["disk.yaml": """
            runbook: disk
            steps:
              - id: d
                phase: detect
                check: { host: { disk: { path: /, max_used: 100% } } }
              - id: clean
                phase: mitigate
                when: steps.d.output.used_percent > 5
                command: ["true"]

            """])
        defer { box.remove() }
        let r = try await offPool { try runCLI(["validate", box.rb + "/disk.yaml"]) }
        #expect(r.status == 2)
        #expect(r.stderr.contains("disk.yaml:8:11: error: step 'd' (check.host) has no output 'used_percent' (did you mean 'disk_used_percent'?)"), "\(r.stderr)")
    }

    @Test func percentagesAndCountRatesAreAccepted() async throws {
        let rb = try RunbookLoader.load(text: minimalTestHeader + """
              - id: d
                phase: detect
                check: { host: { disk: { path: /, max_used: 100% }, memory: { min_used: 0.5 } } }
              - id: t
                phase: diagnose
                check: { metric_trend: { url: "http://x/metrics", metric: requests_total, window: 10s, every: 1s, min_slope: 600/min } }
            """, file: "p.yaml")
        guard case .check(.host(let host))? = rb.step("d")?.action.spec, case .check(.metricTrend(let trend))? = rb.step("t")?.action.spec else {
            Issue.record("the steps did not decode as a host check and a trend check")
            return
        }
        #expect(host.disk?.used.max == 100)
        #expect(host.memory?.min == 0.5)
        #expect(trend.minSlope == 10)
    }

    @Test func aDryRunNeverSleepsNorAsksAndEndsWouldMitigate() async throws {
        let box = try Box(["dry.yaml": """
            runbook: dry
            params:
              port: { default: "8080", pattern: "[0-9]+" }
            steps:
              - id: look
                phase: detect
                check: { command: ["true"] }
              - id: pause
                phase: mitigate
                wait: 30s
              - id: bounce
                phase: mitigate
                needs: [pause]
                confirm: true
                command: ["echo", "restart", "{{ params.port }}"]
              - id: ok
                phase: verify
                check: { command: ["false"] }

            """])
        defer { box.remove() }
        let r = try await offPool { try box.cli(["run", "dry", "--dry-run", "--json"]) }
        #expect(r.status == 0, "\(r.stderr)")
        let events = jsonLines(r.stdout)
        func status(_ s: String) -> String? { events.last { $0["step"] as? String == s && $0["event"] as? String == "step.finished" }?["status"] as? String }
        #expect(status("pause") == "would-wait")
        #expect(status("bounce") == "would-change", "no --yes and no terminal, yet the dry run does not ask")
        #expect(status("ok") == "skipped")
        #expect(events.last?["outcome"] as? String == "would-mitigate")
        let bounce = events.last { $0["step"] as? String == "bounce" && $0["event"] as? String == "step.finished" }
        #expect(jsonText(bounce, "message").contains("echo restart 8080"), "rendered, not a template")
        let history = try box.cli(["history", "--kind", "dry-run"])
        #expect(history.stdout.contains("[dry run]") && history.stdout.contains("would-mitigate"), "\(history.stdout)")
        let live = try box.cli(["history"])
        #expect(!live.stdout.contains("[dry run]"), "a dry run is listed among live runs:\n\(live.stdout)")
    }

    @Test func twoFilesWithOneNameAreRefusedNamingBoth() async throws {
        let one = "runbook: same\nsteps:\n  - id: a\n    phase: detect\n    check: { command: [\"true\"] }\n"
        let box = try Box(["a.yaml": one, "b.yaml": one, "other.yaml": one.replacingOccurrences(of: "same", with: "other")])
        defer { box.remove() }
        let list = try await offPool { try box.cli(["list"]) }
        #expect(list.status == 2)
        #expect(list.stderr.contains("a.yaml") && list.stderr.contains("b.yaml"), "\(list.stderr)")
        let run = try await offPool { try box.cli(["run", "same"]) }
        #expect(run.status == 2)
        #expect(run.stderr.contains("a.yaml") && run.stderr.contains("b.yaml"), "\(run.stderr)")
        #expect(try await offPool { try box.cli(["run", "other"]) }.status == 0)
        try writeTokenFile("just-a-token-0123456789", to: box.dir + "/tokens")
        // Bounded: a server that wrongly started must not outlive the test.
        let serve = try await offPool {
            try Spawn.run(["timeout", "30", runbookBinary, "serve", "--listen", "127.0.0.1:0", "--token-file", box.dir + "/tokens",
                           "--runbooks", box.rb, "--state-dir", box.state])
        }
        #expect(serve.status == 2, "\(serve.stderr)")
    }

    static let flagRunbook = """
        runbook: flagged
        params:
          file: { default: "DIR/missing/flags.json", type: path, within: "DIR" }
        steps:
          - id: look
            phase: detect
            check: { command: ["true"] }
          - id: off
            phase: mitigate
            flag: { file: "{{ params.file }}", key: image-resize, variant: "off" }
          - id: bounce
            phase: mitigate
            needs: [off]
            restart: { supervisor: shop }
          - id: flat
            phase: verify
            check: { command: ["true"] }

        """

    @Test func aDrillStartsFromItsStateAndReadsNoFlagFile() async throws {
        let box = try Box(["flagged.yaml": Self.flagRunbook, "drills/undo.yaml": """
            drill: undo
            runbook: flagged
            state: { flags: { image-resize: "on" } }
            outcomes:
              look: passed
              flat: failed
            expect:
              outcome: failed
              changes: ["flag image-resize: on -> off", "restart shop"]
              undone: ["flag image-resize: on -> off"]

            """])
        defer { box.remove() }
        let r = try await offPool { try box.cli(["drill", "flagged", "--scenario", box.rb + "/drills/undo.yaml"]) }
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: box.dir + "/missing/flags.json"))
    }

    @Test func everyProblemOfAScenarioIsReportedAtOnce() async throws {
        let box = try Box(["flagged.yaml": Self.flagRunbook, "drills/bad.yaml": """
            drill: bad
            runbook: flagged
            outcomes:
              lok: passed
              flat: { status: failed, output: { slope: 3 } }
            expect:
              outcome: failed
              ran: [nope]

            """])
        defer { box.remove() }
        let r = try await offPool { try box.cli(["drill", "flagged", "--scenario", box.rb + "/drills/bad.yaml"]) }
        #expect(r.status == 2)
        let errors = r.stderr.split(separator: "\n").filter { $0.contains(": error: ") }
        #expect(errors.count == 3, "\(r.stderr)")
        #expect(r.stderr.contains("unknown step 'lok'") && r.stderr.contains("(did you mean 'look'?)"))
        #expect(r.stderr.contains("has no output 'slope'"))
        #expect(r.stderr.contains("unknown step 'nope'"))
    }

    @Test func theConfirmationPromptShowsExactlyWhatWillRunOnATerminal() async throws {
        let box = try Box(["ask.yaml": """
            runbook: ask
            params:
              port: { default: "19001", pattern: "[0-9]+" }
            steps:
              - id: look
                phase: detect
                check: { command: ["true"] }
              - id: bounce
                phase: mitigate
                confirm: true
                restart: { command: ["DIR/restart.sh", "{{ params.port }}", "--now"] }

            """])
        defer { box.remove() }
        // `script` gives the run a pseudo-terminal; the answer is "n".
        let command = "\(runbookBinary) run ask --runbooks \(box.rb) --state-dir \(box.state)"
        let r = try await offPool { try Spawn.run(["sh", "-c", "printf 'n\\n' | script -qec \"$0\" /dev/null", command]) }
        #expect(r.stdout.contains("it will: restart \(box.dir)/restart.sh 19001 --now"), "\(r.stdout)")
        #expect(!r.stdout.contains("{{"), "a template reached the prompt: \(r.stdout)")
        #expect(r.stdout.contains("refused"))
    }

    @Test func runIDsTakeLastAndUniquePrefixesAndVersionIsSetOnce() async throws {
        let box = try Box(["one.yaml": "runbook: one\nsteps:\n  - id: a\n    phase: detect\n    check: { command: [\"true\"] }\n"])
        defer { box.remove() }
        #expect(try await offPool { try box.cli(["run", "one"]) }.status == 0)
        let history = jsonLines(try box.cli(["history", "--json"]).stdout)
        let id = try #require(history.first?["id"] as? String)
        let last = try box.cli(["timeline", "last", "--json"])
        #expect(jsonLines(last.stdout).first?["run"] as? String == id)
        let hex = String(id.split(separator: "-").last!.prefix(5))
        let byHex = try box.cli(["postmortem", hex])
        #expect(byHex.status == 0, "\(byHex.stderr)")
        #expect(byHex.stdout.contains(id))
        let byPrefix = try box.cli(["timeline", String(id.prefix(id.count - 3)), "--json"])
        #expect(jsonLines(byPrefix.stdout).first?["run"] as? String == id)
        #expect(try box.cli(["timeline", "r-1999"]).status == 2)
        let version = try await runCLI(["--version"])
        #expect(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == RunbookVersion.current)
    }

    @Test func theActionsReferenceIsUpToDate() async throws {
        let committed = try String(contentsOfFile: repoRoot + "/docs/actions.md", encoding: .utf8)
        #expect(committed == ActionReference.markdown(), "docs/actions.md is stale: run `runbook reference > docs/actions.md`")
        // Every example in it is a valid step.
        let fleet = Set(["targets", "across"])
        for e in ActionReference.entries where !fleet.contains(e.key) {
            let body = e.example.split(separator: "\n").map { "    " + $0 }.joined(separator: "\n")
            let phase = e.key.hasPrefix("check.") ? "diagnose" : "mitigate"
            let yaml = "runbook: ex\nparams:\n  base_url: { default: x, pattern: \".*\" }\n  db_host: { default: x, pattern: \".*\" }\n"
                + "  flags_file: { default: x, pattern: \".*\" }\n  chat_webhook: { default: x, pattern: \".*\" }\n  service: { default: x, pattern: \".*\" }\n"
                + "steps:\n  - id: a\n    phase: \(phase)\n\(body)\n"
            #expect(throws: Never.self, "\(e.key)") { _ = try RunbookLoader.load(text: yaml, file: "\(e.key).yaml") }
        }
        // The fleet examples go together: targets at the top level, across on a step, an inventory beside.
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "[web]\nweb-1\nweb-2\n".write(toFile: dir + "/inventory.ini", atomically: true, encoding: .utf8)
        let example = { (key: String) in ActionReference.entries.first { $0.key == key }?.example ?? "" }
        let across = example("across").split(separator: "\n").map { "    " + $0 }.joined(separator: "\n")
        let yaml = "runbook: fleet\n" + example("targets") + "\nsteps:\n  - id: shop-healthy\n    phase: verify\n    check: { command: [\"true\"] }\n"
            + "  - id: a\n    phase: mitigate\n" + across + "\n"
        try yaml.write(toFile: dir + "/fleet.yaml", atomically: true, encoding: .utf8)
        #expect(throws: Never.self, "targets + across") { _ = try RunbookLoader.load(path: dir + "/fleet.yaml") }
    }
}

let minimalTestHeader = "runbook: t\nsteps:\n"
