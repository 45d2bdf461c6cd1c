import ArgumentParser
import Dispatch
import Foundation
import RunbookActions
import RunbookCore
import RunbookStoreContract

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run a runbook now, with a live timeline.",
        discussion: "A step with an approval gate (confirm: {approvals, timeout, on_timeout}) pauses the run until others answer with `runbook approve RUN_ID [--deny] --as NAME`; you started the run, so you cannot approve it yourself.\n\nExit codes: 0 mitigated, completed, not-confirmed or would-mitigate (dry run); 1 failed or aborted (after undo); 2 invalid runbook, bad param or usage; 3 refused (a guard, a declined confirmation, a gate not approved); 4 inconclusive (a detect check could not measure); 130 interrupted.")

    @Argument(help: "Runbook name.", completion: Completions.runbookNames) var name: String
    @Option(name: .customLong("param"), help: "A param value, K=V (repeatable).") var params: [String] = []
    @Flag(help: "Run read-only checks for real; describe every change instead of making it.") var dryRun = false
    @Flag(name: [.customLong("yes"), .customShort("y")], help: "Approve every confirm: true step (an approval gate, confirm: {approvals, ...}, still waits for `runbook approve` from someone else).") var yes = false
    @Flag(help: "JSON Lines timeline on stdout; human text goes to stderr.") var json = false
    @Flag(help: "On Ctrl-C, leave completed changes in place.") var noUndo = false
    @Flag(help: "Run despite cooldown, max_runs or a change freeze (recorded on the timeline); a lock or max_active is never overridden.") var force = false
    @Option(help: "Change freeze windows (a YAML list): a run that would change things during one is refused unless --force.") var freeze: String?
    @Option(help: "Most steps running a process at once (commands, command checks, restarts); default 4 x cores. Waits and network checks are not counted (those have a cap of 1,000).") var maxParallel: Int?
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
        guard (maxParallel ?? 1) >= 1 else { printError("error: --max-parallel must be at least 1"); throw ExitCode(2) }
        // A closed stdout (a pager quit early, `| head -1`) must not kill a run halfway through its changes,
        // nor a file-size limit kill it mid-write.
        signal(SIGPIPE, SIG_IGN)
        signal(SIGXFSZ, SIG_IGN)
        let store = try state.openStore()
        if state.isDefault, state.databaseURL == nil { printError("history: \(state.directory) (--state-dir DIR or $RUNBOOK_STATE_DIR to keep it elsewhere)") }
        let now = Date()
        let runID = RunInputs.newRunID(now)
        let lockKey = GuardCheck.lockKey(runbook.guards, params: values, runID: runID)
        var record = RunRecord(id: runID, runbook: runbook.name, trigger: "manual", started: now, dryRun: dryRun, drill: false)
        record.lockKey = lockKey
        let start = RunInputs.startEvent(runbook: runbook, runID: runID, trigger: "manual", params: values, dryRun: dryRun, drill: false, now: now)
        let secrets = RunInputs.secrets(runbook, values)

        // Guards and the run's row in one transaction: of ten racing runs, the guards admit exactly
        // those they should. A dry run changes nothing, so it is never refused.
        var request = AdmissionRequest(runbook: runbook, record: record)
        request.checkGuards = !dryRun
        request.force = force
        if let freeze {
            let windows: [FreezeWindow]
            do { windows = try FreezeFile.load(path: freeze) } catch let e as LoadError {
                printError(e.description)
                throw ExitCode(2)
            }
            // A freeze is about changes: a runbook with no change step is not held by it.
            if runbook.steps.contains(where: { $0.action.isChange }) { request.freeze = FreezeFile.refusal(windows, at: now) }
        }
        let decision: AdmissionDecision
        do { decision = try store.admitAll([request], now: now)[0] } catch {
            printError("error: run not started: \(error)")
            throw ExitCode(2)
        }
        let lease: any RunHold, runLock: (any RunHold)?, overridden: GuardCheck.Refusal?
        switch decision {
        case .duplicate:
            printError("error: run not started: a duplicate of a running alert")
            throw ExitCode(3)
        case .refused(let r, _):
            // The refusal is a row in the history (its timeline is told from it), shown here too.
            let out = SecretRedactor(secrets: secrets, next: json ? JSONLinesStdout() : HumanTimeline(isTerminal: isatty(1) == 1))
            for event in RunEndings.refusalEvents(start: start, refusal: r) { out.record(event) }
            printError("error: run refused by guard \(r.guardName)\(r.until.map { " until \(TimelineEvent.timestamp($0))" } ?? ""): \(r.message)\(["lock", "max_active"].contains(r.guardName) ? "" : " (use --force to override)")")
            throw ExitCode(3)
        case .admitted(let l, let held, let o):
            (lease, runLock, overridden) = (l, held, o)
        }

        // Fail closed: no step runs unless the run's start is on disk.
        let health = RecordHealth()
        let file: any DurableTimeline
        do {
            file = try store.timelineSink(runID: runID, health: health)
            try file.write(SecretRedactor.redact(start, secrets))
        } catch {
            try? store.finish(runID: runID, outcome: .failed, durationMs: 0)
            lease.release()
            printError("error: run not started: \(error)")
            throw ExitCode(2)
        }
        var sinks: [any TimelineSink] = [file, HistorySink(store: store, health: health)]
        if json {
            sinks.append(JSONLinesStdout())
        } else {
            sinks.append(HumanTimeline(isTerminal: isatty(1) == 1))
        }
        let sink = SecretRedactor(secrets: secrets, next: TimelineFanOut(sinks))
        // The start is on disk already; the terminal still shows it.
        for s in sinks.dropFirst(2) { SecretRedactor(secrets: secrets, next: s).record(start) }
        if let r = overridden {
            var e = TimelineEvent(time: now, run: runID, event: "guard.overridden")
            e.guardName = r.guardName
            e.until = r.until
            e.message = "--force: " + r.message
            sink.record(e)
            printError("warning: overriding guard \(r.guardName): \(r.message)")
        }
        var runOptions = RunStateMachine.Options(runID: runID, params: values)
        if let maxParallel { runOptions.maxParallel = maxParallel }
        runOptions.autoConfirm = yes
        runOptions.noUndo = noUndo
        runOptions.dryRun = dryRun
        let queue = DispatchQueue(label: "runbook.run.\(runID)")
        let prompter: any ConfirmationPrompter = isatty(0) == 1 ? TerminalPrompter() : DeclineAll()
        ChildWatcher.shared.becomeSubreaper()
        let driver = RunDriver(runbook: runbook, options: runOptions, dryRun: dryRun, queue: queue, executor: LiveExecutor(),
                               scheduler: DispatchScheduler(queue: queue), sink: sink, prompter: prompter, health: health,
                               desk: StoreApprovalDesk(store: store, startedBy: ApproveCommand.currentUser, resumable: false))

        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let interrupts = InterruptCounter()
        var signalSources: [any DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM] {
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler {
                if interrupts.increment() > 1 {
                    // The final record is written before the process goes: the run never stays "running".
                    printError("second interrupt: killing running commands and exiting now; changes not yet undone stay in place")
                    // Stop the run first, so that no further undo starts when the kill ends the one running.
                    driver.abandon()
                    ChildWatcher.shared.killEverything()
                    lease.release()
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
        driver.start(startEvent: nil) { outcome in
            result.set(outcome)
            done.signal()
        }
        done.wait()
        // A stopped process tree is owed its KILL: do not leave before it is sent.
        ChildWatcher.shared.waitForOwedKills(timeout: ChildWatcher.killGrace + 5)
        runLock?.release()
        lease.release()
        signalSources.forEach { $0.cancel() }
        let outcome = result.get() ?? .failed
        if let why = health.failure {
            printError("error: run \(runID) could not be fully recorded: \(why); outcome \(outcome == .mitigated || outcome == .completed ? "unrecorded" : outcome.rawValue)")
            throw ExitCode(1)
        }
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
        let store = try state.openStore()
        let runs = try store.runs(limit: limit)
        let awaiting = (try? store.runsAwaitingApproval()) ?? []
        func status(_ r: RunRecord) -> String { r.outcome != nil ? "finished" : awaiting.contains(r.id) ? "awaiting-approval" : "running" }
        if json {
            for r in runs {
                var line = "{\"id\":\(JSONText.string(r.id)),\"runbook\":\(JSONText.string(r.runbook)),\"trigger\":\(JSONText.string(r.trigger))"
                line += ",\"outcome\":\(r.outcome.map(JSONText.string) ?? "null"),\"status\":\"\(status(r))\",\"start\":\"\(TimelineEvent.timestamp(r.started))\""
                line += ",\"duration_ms\":\(r.durationMs.map(String.init) ?? "null"),\"dry_run\":\(r.dryRun),\"drill\":\(r.drill)}"
                print(line)
            }
            return
        }
        let rows = runs.map { r in
            [r.id, r.runbook + (r.drill ? " [drill]" : r.dryRun ? " [dry run]" : ""), r.trigger, r.outcome ?? status(r),
             TimelineEvent.timestamp(r.started), r.durationMs.map { Quantity.formatDuration(Double($0) / 1000) } ?? "-"]
        }
        StandardStreams.out(Table.render(header: ["ID", "RUNBOOK", "TRIGGER", "OUTCOME", "START", "DURATION"], rows: rows.map { $0.map { Escape.text($0) } }))
    }
}

struct TimelineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "timeline", abstract: "A past run's timeline.")
    @Argument(help: "Run id: the whole id, a unique prefix of it or of its final hex part, or 'last'.", completion: Completions.runIDs) var runID: String
    @Flag(help: "JSON Lines.") var json = false
    @OptionGroup var state: StateOptions

    func run() throws {
        let (store, events) = try state.timeline(of: runID)
        if let r = try store.run(events.first?.run ?? runID), r.drill, !json { StandardStreams.out("DRILL: a rehearsal, not an incident\n") }
        let human = HumanTimeline(isTerminal: isatty(1) == 1)
        for e in events {
            if json { StandardStreams.out(e.jsonLine() + "\n") } else { human.record(e) }
        }
    }
}

struct ApproveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve", abstract: "Approve (or deny) a run waiting at an approval gate.",
        discussion: "The run goes on once its gate has the approvals it needs (a server or a `runbook run` waiting on the same state folder sees the answer within a second). Whoever started the run cannot answer its gate, and one person counts once.\n\nExit codes: 0 answer recorded; 1 not recorded (the run waits at no gate, you started it, or you answered already); 2 unknown run or usage.")

    @Argument(help: "Run id: the whole id, a unique prefix of it or of its final hex part, or 'last'.", completion: Completions.runIDs) var runID: String
    @Flag(help: "Deny instead: the run stops, undoes what it changed and ends refused.") var deny = false
    @Option(name: .customLong("as"), help: "Your name, recorded as the approver (default: $USER).") var approver: String?
    @OptionGroup var state: StateOptions

    /// The login name: `$USER`, else the password entry, else the uid.
    static var currentUser: String {
        if let u = ProcessInfo.processInfo.environment["USER"], !u.isEmpty { return u }
        if let pw = getpwuid(getuid()), let name = pw.pointee.pw_name { return String(cString: name) }
        return "uid \(getuid())"
    }

    func run() throws {
        guard let name = ApprovalError.approverName(approver ?? Self.currentUser) else {
            printError("error: --as takes a name of 1 to 100 printable characters")
            throw ExitCode(2)
        }
        let store = try state.openStore()
        let id: String
        do { id = try store.resolveRunID(runID) } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        do {
            let receipt = try store.answer(runID: id, approve: !deny, by: name, via: "cli", now: Date())
            for g in receipt.gates {
                let what = RunStateMachine.isRunGate(g.gate) ? "its changes" : "step \(g.gate)"
                if deny {
                    StandardStreams.out("denied \(what) of run \(id) as \(Escape.text(name)): the run stops and ends refused\n")
                } else if g.approvals >= g.needed {
                    StandardStreams.out("approved \(what) of run \(id) as \(Escape.text(name)) (\(g.approvals) of \(g.needed)): the run goes on\n")
                } else {
                    StandardStreams.out("approved \(what) of run \(id) as \(Escape.text(name)) (\(g.approvals) of \(g.needed)): waiting for \(g.needed - g.approvals) more\n")
                }
            }
        } catch let e as ApprovalError {
            printError("error: \(Escape.text(e.description))")
            throw ExitCode(1)
        } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
    }
}
