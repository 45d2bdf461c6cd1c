import ArgumentParser
import Foundation
import RunbookCore
import RunbookDrills
import RunbookStoreContract

struct DrillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drill", abstract: "Rehearse a runbook against recorded outcomes and check the path it takes.",
        discussion: "Nothing is touched: checks report the scenario's outcomes, changes are only described, time is simulated. Exit 0 when every expectation holds, 1 when one does not, 2 for an invalid scenario.")

    @Argument(help: "Runbook name.", completion: Completions.runbookNames) var name: String
    @Option(help: "Scenario file.", completion: Completions.drillFiles) var scenario: String?
    @Option(help: "Rehearse against the check results recorded in a past run (an id, a prefix, or 'last').", completion: Completions.runIDs) var replay: String?
    @Flag(help: "JSON Lines timeline on stdout.") var json = false
    @Option(help: "ssh_config file (accepted for symmetry with run: a drill contacts no host).") var sshConfig: String?
    @OptionGroup var options: RunbookOptions
    @OptionGroup var state: StateOptions

    func run() throws {
        let runbook = try loadRunbook(name, options)
        let store = try state.openStore()
        let scenario: Scenario
        switch (self.scenario, replay) {
        case (let path?, nil):
            do { scenario = try ScenarioLoader.load(path: path) } catch let e as LoadError {
                printError(e.description)
                throw ExitCode(2)
            }
        case (nil, let runID?):
            let (_, events) = try state.timeline(of: runID)
            scenario = Scenario.replay(of: events, runbook: runbook)
        default:
            printError("error: give exactly one of --scenario FILE or --replay RUN_ID")
            throw ExitCode(2)
        }
        if !json, !scenario.description.isEmpty, replay != nil { print("note: " + scenario.description) }
        let report = try runDrill(scenario, runbook: runbook, store: store, json: json)
        if !json { printReport(report) }
        if !report.passed { throw ExitCode(1) }
    }

    func printReport(_ r: DrillReport) {
        print("drill \(r.scenario.name): outcome \(r.outcome.rawValue) (simulated \(Quantity.formatDuration(r.simulatedDuration)))")
        if !r.changes.isEmpty { print("would change: " + r.changes.joined(separator: "; ")) }
        if r.passed { print("ok") } else { for f in r.failures { print("  " + f) }; print("FAILED") }
    }
}

/// Runs one drill, then records it in the history marked as a drill. Exits 2 for an invalid scenario,
/// which leaves no row: nothing is written until the rehearsal is known to be valid.
func runDrill(_ scenario: Scenario, runbook: Runbook, store: any RunDatabase, json: Bool) throws -> DrillReport {
    let report: DrillReport
    do {
        report = try DrillRunner.run(scenario, runbook: runbook, extraSink: json ? JSONLinesStdout() : nil)
    } catch let e as DrillInvalid {
        printError(e.description)
        throw ExitCode(2)
    }
    recordDrill(report, runbook: runbook.name, store: store)
    return report
}

/// Writes a finished, valid drill to the history: its row, its timeline and its outcome. A drill's
/// record is a convenience (the report is the result), so a store that fails is only warned about.
func recordDrill(_ report: DrillReport, runbook: String, store: any RunDatabase) {
    guard let first = report.events.first else { return }
    do {
        try store.insert(RunRecord(id: report.runID, runbook: runbook, trigger: "drill", started: first.time, dryRun: true, drill: true))
        let file = try store.timelineSink(runID: report.runID, health: nil)
        for e in report.events { try file.write(e) }
        let duration = report.events.last { $0.event == "run.finished" }?.durationMs ?? 0
        try store.finish(runID: report.runID, outcome: report.outcome, durationMs: duration)
    } catch {
        printError("warning: the drill's record was not kept in \(store.location): \(error)")
    }
}

struct TestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test", abstract: "Run every drill scenario like a test suite.",
        discussion: "Prints one line a drill and 'N passed, N failed' last. Exit 1 if any failed or was invalid.")

    @Argument(help: "Folder of scenarios (default: the runbooks folder's drills/).") var directory: String?
    @Option(help: "Write JUnit XML here.") var junit: String?
    @OptionGroup var options: RunbookOptions
    @OptionGroup var state: StateOptions

    func run() throws {
        let dir = directory ?? options.catalog.directory + "/drills"
        let files: [String]
        do { files = try RunbookCatalog.yamlFiles(in: dir) } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        let store = try state.openStore()
        var results: [(name: String, file: String, seconds: Double, failure: String?)] = []
        for file in files {
            let started = Date()
            var name = (file as NSString).lastPathComponent
            var failure: String?
            do {
                let scenario = try ScenarioLoader.load(path: file)
                name = scenario.name
                let runbook = try options.catalog.runbook(named: scenario.runbook)
                let report = try DrillRunner.run(scenario, runbook: runbook)
                recordDrill(report, runbook: runbook.name, store: store)
                if !report.passed { failure = report.failures.joined(separator: "\n") }
            } catch let e as LoadError {
                failure = "invalid: " + e.description
            } catch let e as DrillInvalid {
                failure = "invalid: " + e.description
            } catch {
                failure = "invalid: \(error)"
            }
            let seconds = Date().timeIntervalSince(started)
            results.append((name, file, seconds, failure))
            print("\(name.padding(toLength: max(40, name.count), withPad: " ", startingAt: 0))  \(failure == nil ? "ok" : "FAILED")  \(Int((seconds * 1000).rounded()))ms")
        }
        let failed = results.filter { $0.failure != nil }
        for f in failed {
            print("\n--- \(f.name) (\(f.file))")
            print(f.failure!.split(separator: "\n").map { "  " + $0 }.joined(separator: "\n"))
        }
        if let junit { try writeJUnit(results, to: junit) }
        print("\(results.count - failed.count) passed, \(failed.count) failed")
        if !failed.isEmpty { throw ExitCode(1) }
    }

    func writeJUnit(_ results: [(name: String, file: String, seconds: Double, failure: String?)], to path: String) throws {
        func esc(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
                .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
        }
        let failures = results.filter { $0.failure != nil }.count
        let total = results.reduce(0) { $0 + $1.seconds }
        var xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        xml += "<testsuites tests=\"\(results.count)\" failures=\"\(failures)\" time=\"\(String(format: "%.3f", total))\">\n"
        xml += "  <testsuite name=\"runbook drills\" tests=\"\(results.count)\" failures=\"\(failures)\" time=\"\(String(format: "%.3f", total))\">\n"
        for r in results {
            xml += "    <testcase classname=\"\(esc(r.file))\" name=\"\(esc(r.name))\" time=\"\(String(format: "%.3f", r.seconds))\""
            if let f = r.failure {
                xml += ">\n      <failure message=\"\(esc(f.split(separator: "\n").first.map(String.init) ?? f))\">\(esc(f))</failure>\n    </testcase>\n"
            } else {
                xml += "/>\n"
            }
        }
        xml += "  </testsuite>\n</testsuites>\n"
        try xml.write(toFile: path, atomically: true, encoding: .utf8)
    }
}

struct PostmortemCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "postmortem", abstract: "Draft a Markdown postmortem from a run's timeline.")
    @Argument(help: "Run id: the whole id, a unique prefix of it or of its final hex part, or 'last'.", completion: Completions.runIDs) var runID: String
    @Option(help: "Write the draft here instead of stdout.") var output: String?
    @OptionGroup var options: RunbookOptions
    @OptionGroup var state: StateOptions

    func run() throws {
        let (_, events) = try state.timeline(of: runID)
        let runbook = events.first?.runbook.flatMap { try? options.catalog.runbook(named: $0) }
        let md = Postmortem.markdown(events: events, runbook: runbook)
        if let output {
            try md.write(toFile: output, atomically: true, encoding: .utf8)
            printError("postmortem draft written to \(output)")
        } else {
            print(md, terminator: "")
        }
    }
}
