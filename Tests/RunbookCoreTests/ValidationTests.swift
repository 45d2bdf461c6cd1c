import Foundation
import Testing
@testable import RunbookCore

/// Each validation rule of SPEC, pinned by a broken runbook: the line and column reported and the message.
struct ValidationTests {
    struct Case: CustomStringConvertible, Sendable {
        var name: String
        var yaml: String
        var line: Int
        var column: Int?
        var message: String
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(name: "yaml syntax", yaml: "runbook: t\nsteps:\n  - id: a\n    phase: [detect\n", line: 5, column: nil, message: "YAML syntax"),
        Case(name: "unknown key with hint", yaml: minimalHeader + "  - id: a\n    phase: detect\n    timout: 5s\n    check: { command: [\"true\"] }\n",
             line: 7, column: 5, message: "unknown key 'timout' in step 'a' (did you mean 'timeout'?)"),
        Case(name: "unknown top-level key", yaml: "runbok: t\nsteps: []\n", line: 1, column: 1, message: "unknown key 'runbok' in the runbook (did you mean 'runbook'?)"),
        Case(name: "missing id", yaml: minimalHeader + "  - phase: detect\n    check: { command: [\"true\"] }\n",
             line: 5, column: 5, message: "steps[0] is missing required key 'id'"),
        Case(name: "duplicate id", yaml: minimalHeader + "  - id: a\n    phase: detect\n    check: { command: [\"true\"] }\n  - id: a\n    phase: diagnose\n    check: { command: [\"true\"] }\n",
             line: 8, column: 9, message: "duplicate step id 'a' (first defined at line 5)"),
        Case(name: "unknown needs with hint", yaml: minimalHeader + "  - id: probe\n    phase: detect\n    check: { command: [\"true\"] }\n  - id: b\n    phase: diagnose\n    needs: [prob]\n    check: { command: [\"true\"] }\n",
             line: 10, column: 13, message: "unknown step 'prob' in needs (did you mean 'probe'?)"),
        Case(name: "cycle named", yaml: minimalHeader + "  - id: a\n    phase: diagnose\n    needs: [b]\n    check: { command: [\"true\"] }\n  - id: b\n    phase: diagnose\n    needs: [a]\n    check: { command: [\"true\"] }\n",
             line: 7, column: 12, message: "needs form a cycle: a -> b -> a"),
        Case(name: "needs into a later phase", yaml: minimalHeader + "  - id: a\n    phase: diagnose\n    needs: [b]\n    check: { command: [\"true\"] }\n  - id: b\n    phase: verify\n    check: { command: [\"true\"] }\n",
             line: 7, column: 13, message: "needs 'b', which is in the later phase verify"),
        Case(name: "no action key", yaml: minimalHeader + "  - id: a\n    phase: detect\n",
             line: 5, column: 5, message: "needs exactly one of check, flag, restart, command, notify, wait; it has none"),
        Case(name: "two action keys", yaml: minimalHeader + "  - id: a\n    phase: mitigate\n    wait: 1s\n    command: [\"true\"]\n",
             line: 8, column: 5, message: "has both 'wait' and 'command'"),
        Case(name: "bad duration", yaml: minimalHeader + "  - id: a\n    phase: detect\n    timeout: 5 minutes\n    check: { command: [\"true\"] }\n",
             line: 7, column: 14, message: "step 'a' timeout: bad duration '5 minutes'"),
        Case(name: "bad size", yaml: minimalHeader + "  - id: a\n    phase: detect\n    check:\n      process: { pid: 1, max_rss: 12 parsecs }\n",
             line: 8, column: 35, message: "bad size '12 parsecs'"),
        Case(name: "bad rate", yaml: minimalHeader + "  - id: a\n    phase: detect\n    check:\n      metric_trend: { url: \"http://x/metrics\", metric: m, window: 10s, every: 1s, min_slope: fast }\n",
             line: 8, column: 94, message: "bad rate 'fast'"),
        Case(name: "bad pattern", yaml: "runbook: t\nparams:\n  svc: { pattern: \"^[a-z\" }\nsteps:\n  - id: a\n    phase: detect\n    check: { command: [\"true\"] }\n",
             line: 3, column: 19, message: "bad pattern '^[a-z'"),
        Case(name: "unknown param in template", yaml: minimalHeader + "  - id: a\n    phase: detect\n    check: { command: [\"echo\", \"{{ params.servce }}\"] }\n",
             line: 7, column: 32, message: "unknown param 'servce' (did you mean 'service'?)"),
        Case(name: "unknown step in when", yaml: minimalHeader + "  - id: probe\n    phase: detect\n    check: { command: [\"true\"] }\n  - id: b\n    phase: mitigate\n    when: steps.prob.passed\n    wait: 1s\n",
             line: 10, column: 11, message: "unknown step 'prob' in 'steps.prob.passed' (did you mean 'probe'?)"),
        Case(name: "bad when syntax", yaml: minimalHeader + "  - id: probe\n    phase: detect\n    check: { command: [\"true\"] }\n  - id: b\n    phase: mitigate\n    when: steps.probe.passed = true\n    wait: 1s\n",
             line: 10, column: 30, message: "'=' is not an operator: write '==' to compare"),
        Case(name: "alert names outside triggers", yaml: minimalHeader + "  - id: a\n    phase: detect\n    check: { command: [\"echo\", \"{{ alert.labels.x }}\"] }\n",
             line: 7, column: 32, message: "only available in triggers[].params"),
        Case(name: "trigger without matchers", yaml: "runbook: t\ntriggers:\n  - alert: {}\nsteps:\n  - id: a\n    phase: detect\n    check: { command: [\"true\"] }\n",
             line: 3, column: 12, message: "trigger has no label matchers"),
        Case(name: "same-phase read without needs", yaml: minimalHeader + "  - id: a\n    phase: diagnose\n    check: { command: [\"true\"] }\n  - id: b\n    phase: diagnose\n    when: steps.a.passed\n    check: { command: [\"true\"] }\n",
             line: 10, column: 11, message: "step 'a' is not certain to finish before 'b' starts"),
        Case(name: "command as a string", yaml: minimalHeader + "  - id: a\n    phase: mitigate\n    command: \"rm -rf {{ params.service }}\"\n",
             line: 7, column: 14, message: "a string is never run through a shell"),
        Case(name: "change outside mitigate", yaml: minimalHeader + "  - id: a\n    phase: verify\n    command: [\"systemctl\", \"restart\", \"x\"]\n",
             line: 5, column: 5, message: "changes belong in mitigate"),
        Case(name: "duplicate yaml key", yaml: minimalHeader + "  - id: a\n    phase: detect\n    phase: diagnose\n    check: { command: [\"true\"] }\n",
             line: 7, column: 5, message: "duplicate key 'phase' in mapping"),
        Case(name: "not a mapping", yaml: "- a\n- b\n", line: 1, column: 1, message: "the file must be a mapping, not a list"),
        Case(name: "phase misspelt", yaml: minimalHeader + "  - id: a\n    phase: mitgate\n    wait: 1s\n",
             line: 6, column: 12, message: "must be one of detect, diagnose, mitigate, verify, not 'mitgate' (did you mean 'mitigate'?)"),
    ]

    @Test(arguments: cases)
    func reportsRuleAtTheOffendingNode(_ c: Case) {
        let found = diagnostics(c.yaml)
        let match = found.first { $0.message.contains(c.message) }
        #expect(match != nil, "expected '\(c.message)', got \(found)")
        #expect(match?.location.line == c.line, "line: \(found)")
        if let column = c.column { #expect(match?.location.column == column, "column: \(found)") }
    }

    @Test func reportsEveryErrorOfAFileInOnePass() {
        let yaml = minimalHeader + """
          - id: a
            phase: detect
            timout: 5s
            check: { command: ["true"] }
          - id: b
            phase: mitigate
            needs: [zzz]
            wait: forever

        """
        let found = diagnostics(yaml)
        #expect(found.count >= 3)
        #expect(found.contains { $0.message.contains("timout") })
        #expect(found.contains { $0.message.contains("zzz") })
        #expect(found.contains { $0.message.contains("bad duration") })
        #expect(found.map(\.location.line) == found.map(\.location.line).sorted())
    }

    @Test func formatsErrorsCompilerStyle() {
        let d = diagnostics("runbook: t\nsteps:\n  - id: A\n    phase: detect\n    check: { command: [\"true\"] }\n", file: "rb/x.yaml")
        #expect(d.first?.description == "rb/x.yaml:3:9: error: step id 'A' must be lower-case letters, digits and '-' ([a-z0-9-]+)")
    }

    @Test func refusesFilesOverOneMebibyte() throws {
        let path = NSTemporaryDirectory() + "big-\(UUID().uuidString).yaml"
        try String(repeating: "# padding\n", count: 110_000).write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: LoadError.self) { try RunbookLoader.load(path: path) }
        do { _ = try RunbookLoader.load(path: path) } catch let e as LoadError {
            #expect(e.diagnostics.first?.message.contains("limited to 1 MiB") == true)
        } catch {}
    }

    /// Files are read with one stat(2) and decoded without Foundation: a byte order mark is dropped
    /// (so locations are as without it), a folder, a missing file and bytes that are not UTF-8 are
    /// each told apart.
    @Test func readsFilesByteOrderMarkFoldersAndBadBytes() throws {
        let dir = NSTemporaryDirectory() + "read-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let bom = Data([0xEF, 0xBB, 0xBF]) + Data("bogus: 1\nrunbook: x\nsteps:\n  - id: a\n    phase: diagnose\n    wait: 1s\n".utf8)
        #expect(FileManager.default.createFile(atPath: dir + "/bom.yaml", contents: bom))
        #expect(try RunbookLoader.readText(path: dir + "/bom.yaml").hasPrefix("bogus"))
        func message(_ path: String) -> String {
            do { _ = try RunbookLoader.load(path: path); return "" } catch let e as LoadError { return e.description } catch { return "\(error)" }
        }
        #expect(message(dir + "/bom.yaml").contains("bom.yaml:1:1: error: unknown key 'bogus'"))
        #expect(FileManager.default.createFile(atPath: dir + "/latin1.yaml", contents: Data([0x72, 0xE9, 0x0A])))
        #expect(message(dir + "/latin1.yaml").contains("not UTF-8"))
        #expect(message(dir).contains("is a folder"))
        #expect(message(dir + "/none.yaml").contains("no such file"))
    }

    /// Several files load at once (a folder is read at every command's start); each result is its
    /// own file's, in the order given.
    @Test func loadingManyFilesAtOnceKeepsTheirOrder() throws {
        let dir = NSTemporaryDirectory() + "many-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var paths: [String] = []
        for i in 0..<40 {
            let yaml = i % 7 == 3 ? "runbook: r\(i)\nsteps: nope\n" : "runbook: r\(i)\nsteps:\n  - id: a\n    phase: diagnose\n    wait: 1s\n"
            try yaml.write(toFile: dir + "/r\(i).yaml", atomically: true, encoding: .utf8)
            paths.append(dir + "/r\(i).yaml")
        }
        let results = RunbookLoader.load(paths: paths)
        #expect(results.count == 40)
        for (i, r) in results.enumerated() {
            switch r {
            case .success(let rb): #expect(i % 7 != 3 && rb.name == "r\(i)")
            case .failure(let e): #expect(i % 7 == 3 && "\(e)".contains("r\(i).yaml"), "\(e)")
            }
        }
    }

    @Test func refusesAliasBombs() {
        var yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1...9 { yaml += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n" }
        yaml += "runbook: t\nsteps: []\n"
        let found = diagnostics(yaml)
        #expect(found.first?.message.contains("alias bomb") == true)
    }

    @Test func acceptsEveryBundledRunbook() throws {
        let files = try RunbookCatalog.yamlFiles(in: repoRoot + "/runbooks")
        #expect(files.count >= 5)
        for f in files {
            let problems: [Diagnostic]
            do { _ = try RunbookLoader.load(path: f); problems = [] } catch let e as LoadError { problems = e.diagnostics }
            #expect(problems.isEmpty, "\(f): \(problems)")
        }
    }

    @Test func defaultMustMatchItsPattern() {
        let d = diagnostics("runbook: t\nparams:\n  svc: { default: \"a b\", pattern: \"^[a-z]+$\" }\nsteps:\n  - id: a\n    phase: detect\n    check: { command: [\"true\"] }\n")
        #expect(d.first?.message.contains("does not match its pattern") == true)
        #expect(d.first?.location.line == 3)
    }
}
