import ArgumentParser
import Dispatch
import Foundation
import RunbookActions
import RunbookCore
import RunbookRuntime
import RunbookStoreContract

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run a runbook now, with a live timeline.",
        discussion: "A step with an approval gate (confirm: {approvals, timeout, on_timeout}) pauses the run until others answer with `runbook approve RUN_ID [--deny]` from their own accounts (or a server's POST /runs/ID/approve with their tokens); you started the run, so you cannot approve it yourself.\n\nExit codes: 0 mitigated, completed, not-confirmed or would-mitigate (dry run); 1 failed or aborted (after undo); 2 invalid runbook, bad param or usage; 3 refused (a guard, a declined confirmation, a gate not approved); 4 inconclusive (a detect check could not measure); 130 interrupted.")

    @Argument(help: "Runbook name.", completion: Completions.runbookNames) var name: String
    @Option(name: .customLong("param"), help: "A param value, K=V (repeatable).") var params: [String] = []
    @Flag(help: "Run read-only checks for real; describe every change instead of making it.") var dryRun = false
    @Flag(name: [.customLong("yes"), .customShort("y")], help: "Approve every confirm: true step (an approval gate, confirm: {approvals, ...}, still waits for `runbook approve` from someone else).") var yes = false
    @Flag(help: "JSON Lines timeline on stdout; human text goes to stderr.") var json = false
    @Flag(help: "On Ctrl-C, leave completed changes in place.") var noUndo = false
    @Flag(help: "Run despite cooldown, max_runs or a change freeze (recorded on the timeline); a lock or max_active is never overridden.") var force = false
    @Option(help: "Change freeze windows (a YAML list): a run that would change things during one is refused unless --force.") var freeze: String?
    @Option(help: "Most steps running a process at once (commands, command checks, restarts); default 4 x cores. Waits and network checks are not counted (those have a cap of 1,000).") var maxParallel: Int?
    @Option(help: "ssh_config file for steps with across: (passed as ssh -F FILE); default your own.") var sshConfig: String?
    @OptionGroup var options: RunbookOptions
    @OptionGroup var state: StateOptions

    func run() throws {
        let runbook = try loadRunbook(name, options)
        var request = RunRequest(runbook: runbook, given: try givenParams(), trigger: "manual")
        request.by = ApproveCommand.currentUser
        request.mode = dryRun ? .dryRun : .live
        request.autoConfirm = yes
        request.noUndo = noUndo
        request.maxParallel = maxParallel
        request.force = force
        request.prometheus = PrometheusHosts()
        guard (maxParallel ?? 1) >= 1 else { printError("error: --max-parallel must be at least 1"); throw ExitCode(2) }
        var windows: [FreezeWindow] = []
        if let freeze {
            do { windows = try FreezeFile.load(path: freeze) } catch let e as LoadError {
                printError(e.description)
                throw ExitCode(2)
            }
        }
        // A run from the terminal has nobody to wait for: a freeze refuses it (unless --force).
        let rule = ChangeApprovalRule.windows(windows, mayPause: false)
        let prepared = PreparedRun(request, rule: rule, now: Date())
        if let e = prepared.paramError {
            guard e is ParamError || e is TargetError else { throw e }
            printError("error: run refused: \(e)")
            throw ExitCode(2)
        }
        // A closed stdout (a pager quit early, `| head -1`) must not kill a run halfway through its changes,
        // nor a file-size limit kill it mid-write.
        signal(SIGPIPE, SIG_IGN)
        signal(SIGXFSZ, SIG_IGN)
        let store = try state.openStore()
        // The first line says where this run's history is kept, so it can be found again.
        if let url = state.databaseURL {
            printError("history: \(redactedPassword(url)) (runbook history --database URL)")
        } else if state.isDefault {
            printError("history: \(state.directory) (--state-dir DIR or $RUNBOOK_STATE_DIR to keep it elsewhere)")
        } else {
            printError("history: \(state.directory) (runbook history --state-dir \(state.directory))")
        }
        let terminal: any TimelineSink = json ? JSONLinesStdout() : HumanTimeline(isTerminal: isatty(1) == 1)

        // Guards and the run's row in one transaction: of ten racing runs, the guards admit exactly
        // those they should. A dry run changes nothing, so it is never refused.
        let admitted: AdmittedRun
        do {
            switch try RunAdmission.decide([prepared], store: store, now: prepared.start.time)[0] {
            case .duplicate:
                printError("error: run not started: a duplicate of a running alert")
                throw ExitCode(3)
            case .refused(let r, _, _):
                // The refusal is a row in the history (its timeline is told from it), shown here too.
                let out = SecretRedactor(secrets: prepared.secrets, next: terminal)
                for event in RunEndings.refusalEvents(start: prepared.start, refusal: r) { out.record(event) }
                printError("error: run refused by guard \(r.guardName)\(r.until.map { " until \(TimelineEvent.timestamp($0))" } ?? ""): \(r.message)\(["lock", "max_active"].contains(r.guardName) ? "" : " (use --force to override)")")
                throw ExitCode(3)
            case .admitted(let a):
                admitted = a
            }
        } catch let e as ExitCode { throw e } catch {
            printError("error: run not started: \(error)")
            throw ExitCode(2)
        }

        // A run of its own control sockets, closed when it ends: nothing it started outlives it.
        var ssh = SSHSettings(configFile: sshConfig.map(PathParam.canonical))
        let fleet = runbook.steps.contains { $0.across != nil } && !dryRun
        if fleet { ssh.controlDirectory = SSHControlFolder.prepare(stateDirectory: state.directory, name: "run-\(getpid())") }
        defer { if let dir = ssh.controlDirectory { SSHControlFolder.closeAll(dir, settings: ssh) } }
        var env = RunEnvironment(store: store, executor: LiveExecutor(ssh: ssh), rule: rule)
        env.prompter = isatty(0) == 1 ? TerminalPrompter() : DeclineAll()
        env.approver = .store(startedBy: ApproveCommand.currentUser, resumable: false)
        env.subscribers = [terminal]
        // A stopped process tree is owed its KILL: the lock is not given up before it is sent.
        env.settle = { ChildWatcher.shared.waitForOwedKills(timeout: ChildWatcher.killGrace + 5) }
        ChildWatcher.shared.becomeSubreaper()
        let session: RunSession
        do throws(RunStartError) { session = try RunSession.open(admitted, environment: env) } catch {
            printError("error: run not started: \(error.cause)")
            throw ExitCode(2)
        }
        if let r = admitted.overridden { printError("warning: overriding guard \(r.guardName): \(r.message)") }
        let interrupts = RunInterrupts(session: session, noUndo: noUndo)
        // `runbook cancel` from another terminal (or the server) leaves a request in the store.
        let cancels = CancelWatch(store: store)
        cancels.add(session)
        let done = DispatchSemaphore(value: 0)
        let result = OutcomeBox()
        let lost = LostBox()
        session.begin(onEnd: { _, outcome in
            result.set(outcome)
            done.signal()
        }, onLost: { _, why in
            lost.set(why)
            done.signal()
        })
        if let shared = store as? any ReplicatedRunDatabase {
            // Its lease taken by another process, or given up because it could not be renewed in time.
            shared.onLost = { [runID = session.runID] ids in
                guard ids.contains(runID), session.stopNow() else { return }
                lost.set("its lease could not be renewed in time, or another process took the run over")
                done.signal()
            }
        }
        // This command runs on the main thread (`RunbookCommand.main`), never the cooperative pool.
        StoreThreads.assertNotInTask("runbook run waiting for its run to end")
        done.wait()
        interrupts.stop()
        cancels.stop()
        if let why = lost.get() {
            // Fenced: another process took the run over. Its commands were stopped; they get their KILL before we go.
            ChildWatcher.shared.waitForOwedKills(timeout: ChildWatcher.killGrace + 5)
            printError("error: run \(session.runID) is no longer this process's: \(why); stopped without undoing (its new owner goes on)")
            throw ExitCode(1)
        }
        let outcome = result.get() ?? .failed
        if let why = session.health?.failure {
            printError("error: run \(session.runID) could not be fully recorded: \(why); outcome \(outcome == .mitigated || outcome == .completed ? "unrecorded" : outcome.rawValue)")
            throw ExitCode(1)
        }
        if json { printError("run \(session.runID): \(outcome.rawValue)") }
        if outcome.exitCode != 0 { throw ExitCode(outcome.exitCode) }
    }

    /// `--param K=V`, repeatable.
    func givenParams() throws -> [String: String] {
        var given: [String: String] = [:]
        for p in params {
            guard let eq = p.firstIndex(of: "="), eq != p.startIndex else {
                printError("error: --param takes K=V, got '\(p)'")
                throw ExitCode(2)
            }
            given[String(p[..<eq])] = String(p[p.index(after: eq)...])
        }
        return given
    }
}

/// Hands the outcome from the run queue to the main thread.
final class OutcomeBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: RunOutcome?
    func set(_ v: RunOutcome) { lock.withLock { value = v } }
    func get() -> RunOutcome? { lock.withLock { value } }
}

/// Why the run stopped being this process's (fenced, or its lease given up), set once.
final class LostBox: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var value: String?
    func set(_ v: String) { lock.withLock { if value == nil { value = v } } }
    func get() -> String? { lock.withLock { value } }
}


/// A database URL fit to print: the password, if any, replaced by `***`.
func redactedPassword(_ url: String) -> String {
    guard let at = url.range(of: "@"), let scheme = url.range(of: "://"), scheme.upperBound < at.lowerBound else { return url }
    let userInfo = url[scheme.upperBound..<at.lowerBound]
    guard let colon = userInfo.firstIndex(of: ":") else { return url }
    return String(url[..<colon]) + ":***" + String(url[at.lowerBound...])
}
