import ArgumentParser
import Dispatch
import Foundation
import RunbookActions
import RunbookCore
import RunbookStore

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run a runbook now, with a live timeline.",
        discussion: "Exit codes: 0 mitigated, completed or not-confirmed; 1 failed (after undo); 2 invalid runbook or usage; 3 refused (declined confirmation); 130 interrupted.")

    @Argument(help: "Runbook name.") var name: String
    @Option(name: .customLong("param"), help: "A param value, K=V (repeatable).") var params: [String] = []
    @Flag(help: "Run read-only checks for real; describe every change instead of making it.") var dryRun = false
    @Flag(name: [.customLong("yes"), .customShort("y")], help: "Approve every confirm: true step.") var yes = false
    @Flag(help: "JSON Lines timeline on stdout; human text goes to stderr.") var json = false
    @Flag(help: "On Ctrl-C, leave completed changes in place.") var noUndo = false
    @Flag(help: "Run despite cooldown and max_runs (recorded on the timeline); a lock is never overridden.") var force = false
    @Option(help: "Most steps running at once.") var maxParallel = 64
    @OptionGroup var options: RunbookOptions
    @OptionGroup var state: StateOptions

    func run() throws {
        let runbook = try loadRunbook(name, options)
        var given: [String: String] = [:]
        for p in params {
            guard let eq = p.firstIndex(of: "="), eq != p.startIndex else {
                printError("error: --param takes K=V, got '\(p)'")
                throw ExitCode(2)
            }
            given[String(p[..<eq])] = String(p[p.index(after: eq)...])
        }
        let values: [String: Value]
        do { values = try RunInputs.resolve(runbook, given: given) } catch let e as ParamError {
            printError("error: run refused: \(e)")
            throw ExitCode(2)
        }
        guard maxParallel >= 1 else { printError("error: --max-parallel must be at least 1"); throw ExitCode(2) }
        let store: RunStore
        do { store = try RunStore(directory: state.directory) } catch {
            printError("error: cannot open the state folder \(state.directory): \(error)")
            throw ExitCode(2)
        }
        let now = Date()
        let runID = RunInputs.newRunID(now)
        let lockKey = GuardCheck.lockKey(runbook.guards, params: values, runID: runID)
        var record = RunRecord(id: runID, runbook: runbook.name, trigger: "manual", started: now, dryRun: dryRun, drill: false)
        record.lockKey = lockKey
        var sinks: [any TimelineSink] = [try TimelineFileSink(path: store.timelinePath(runID)), HistorySink(store: store, record: record)]
        if json {
            sinks.append(JSONLinesStdout())
        } else {
            sinks.append(HumanTimeline(handle: .standardOutput, isTerminal: isatty(1) == 1))
        }
        let sink = SecretRedactor(secrets: RunInputs.secrets(runbook, values), next: TimelineFanOut(sinks))
        let start = RunInputs.startEvent(runbook: runbook, runID: runID, trigger: "manual", params: values, dryRun: dryRun, drill: false, now: now)

        // Guards: a dry run changes nothing, so it is never refused.
        var runLock: RunLock?
        var startRecorded = false
        if !dryRun {
            let admission = store.admit(runbook, lockKey: lockKey, now: now)
            runLock = admission.lock
            var refusal = admission.refusal
            if let r = refusal, r.guardName != "lock", force {
                var e = TimelineEvent(time: now, run: runID, event: "guard.overridden")
                e.guardName = r.guardName
                e.until = r.until
                e.message = "--force: " + r.message
                sink.record(start)
                sink.record(e)
                startRecorded = true
                printError("warning: overriding guard \(r.guardName): \(r.message)")
                refusal = nil
            }
            if let r = refusal {
                for event in RunStore.refusalEvents(start: start, refusal: r) { sink.record(event) }
                printError("error: run refused by guard \(r.guardName)\(r.until.map { " until \(TimelineEvent.timestamp($0))" } ?? ""): \(r.message)\(r.guardName == "lock" ? "" : " (use --force to override)")")
                throw ExitCode(3)
            }
        }
        var runOptions = RunStateMachine.Options(runID: runID, params: values)
        runOptions.maxParallel = maxParallel
        runOptions.autoConfirm = yes
        runOptions.noUndo = noUndo
        let queue = DispatchQueue(label: "runbook.run.\(runID)")
        let prompter: any ConfirmationPrompter = isatty(0) == 1 ? TerminalPrompter() : DeclineAll()
        let driver = RunDriver(runbook: runbook, options: runOptions, dryRun: dryRun, queue: queue, executor: LiveExecutor(),
                               scheduler: DispatchScheduler(queue: queue), sink: sink, prompter: prompter)

        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        // A closed stdout (a pager quit early) must not kill a run halfway through its changes.
        signal(SIGPIPE, SIG_IGN)
        let interrupts = InterruptCounter()
        var signalSources: [any DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                if interrupts.increment() > 1 {
                    printError("second interrupt: exiting now without undo")
                    Foundation.exit(130)
                }
                printError("\ninterrupt: stopping running steps\(noUndo ? "" : " and undoing completed changes") (again to exit at once)")
                driver.interrupt()
            }
            source.resume()
            signalSources.append(source)
        }
        let done = DispatchSemaphore(value: 0)
        let result = OutcomeBox()
        driver.start(startEvent: startRecorded ? nil : start) { outcome in
            result.set(outcome)
            done.signal()
        }
        done.wait()
        runLock?.release()
        signalSources.forEach { $0.cancel() }
        let outcome = result.get() ?? .failed
        if json { printError("run \(runID): \(outcome.rawValue)") }
        if outcome.exitCode != 0 { throw ExitCode(outcome.exitCode) }
    }
}

/// Counts interrupts across signal handler calls.
final class InterruptCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func increment() -> Int { lock.withLock { count += 1; return count } }
}

/// Hands the outcome from the run queue to the main thread.
final class OutcomeBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: RunOutcome?
    func set(_ v: RunOutcome) { lock.withLock { value = v } }
    func get() -> RunOutcome? { lock.withLock { value } }
}

struct HistoryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "history", abstract: "Past runs: id, runbook, trigger, outcome, start, duration.")
    @Flag(help: "One JSON object a line.") var json = false
    @Option(help: "Most runs shown.") var limit = 50
    @OptionGroup var state: StateOptions

    func run() throws {
        let store = try RunStore(directory: state.directory)
        let runs = try store.runs(limit: limit)
        if json {
            for r in runs {
                var line = "{\"id\":\(JSONText.string(r.id)),\"runbook\":\(JSONText.string(r.runbook)),\"trigger\":\(JSONText.string(r.trigger))"
                line += ",\"outcome\":\(r.outcome.map(JSONText.string) ?? "null"),\"start\":\"\(TimelineEvent.timestamp(r.started))\""
                line += ",\"duration_ms\":\(r.durationMs.map(String.init) ?? "null"),\"dry_run\":\(r.dryRun),\"drill\":\(r.drill)}"
                print(line)
            }
            return
        }
        let rows = runs.map { r in
            [r.id, r.runbook + (r.drill ? " [drill]" : r.dryRun ? " [dry run]" : ""), r.trigger, r.outcome ?? "running",
             TimelineEvent.timestamp(r.started), r.durationMs.map { Quantity.formatDuration(Double($0) / 1000) } ?? "-"]
        }
        print(Table.render(header: ["ID", "RUNBOOK", "TRIGGER", "OUTCOME", "START", "DURATION"], rows: rows), terminator: "")
    }
}

struct TimelineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "timeline", abstract: "A past run's timeline.")
    @Argument(help: "Run id (from runbook history).") var runID: String
    @Flag(help: "JSON Lines.") var json = false
    @OptionGroup var state: StateOptions

    func run() throws {
        let (store, events) = try state.timeline(of: runID)
        if let r = try store.run(runID), r.drill, !json { FileHandle.standardOutput.write(Data("DRILL: a rehearsal, not an incident\n".utf8)) }
        let human = HumanTimeline(handle: .standardOutput, isTerminal: isatty(1) == 1)
        for e in events {
            if json { print(e.jsonLine()) } else { human.record(e) }
        }
    }
}
