import Dispatch
import Foundation
import RunbookCore
import RunbookStoreContract

/// One run, from admission to release, the same for every front end (`runbook run`, the server's
/// alerts and `/hooks/run`, resume and takeover, drills): it records the run's start, builds its
/// one event stream (the record first, then the front end's subscribers and any live watchers),
/// drives the state machine on a queue of its own, and gives up the run's lease once it ends (its lock key is its open row).
///
/// Front ends differ only in their `RunEnvironment`: the subscribers, the approver, the executor and
/// the clock.
public final class RunSession: @unchecked Sendable {
    // Every property is immutable; the driver owns the run's mutable state on its queue.
    public let runID: String
    public let runbook: Runbook
    /// The run's one event stream: `events.watch()` for a live view.
    public let events: RunEventStream
    /// Set when the run's record could not be written (nil: nothing durable).
    public let health: RecordHealth?
    /// The run's clock (simulated in drills).
    public let scheduler: any RunScheduler
    let driver: RunDriver
    let holds: RunHolds
    let settle: (@Sendable () -> Void)?

    init(runbook: Runbook, events: RunEventStream, health: RecordHealth?, scheduler: any RunScheduler, driver: RunDriver,
         holds: RunHolds, settle: (@Sendable () -> Void)?) {
        self.runID = driver.runID
        self.runbook = runbook
        self.events = events
        self.health = health
        self.scheduler = scheduler
        self.driver = driver
        self.holds = holds
        self.settle = settle
    }

    /// Starts an admitted run (`open`, then `begin`).
    /// - Parameters:
    ///   - onEnd: called once with the outcome, on the run's queue, after the holds are given up.
    /// - Throws: `RunStartError` when the start cannot be recorded (see `open`).
    @discardableResult
    public static func start(_ admitted: AdmittedRun, environment env: RunEnvironment,
                             onEnd: @escaping @Sendable (RunSession, RunOutcome) -> Void = { _, _ in }) throws(RunStartError) -> RunSession {
        let session = try open(admitted, environment: env)
        session.begin(onEnd: onEnd)
        return session
    }

    /// Records an admitted run's start and builds its stream and driver; no step runs until `begin`
    /// (so a front end can register the session first). `run.started` is on record before any step
    /// runs (fail closed), then `guard.overridden` if `--force` set a refusal aside.
    /// - Throws: `RunStartError` when the start cannot be recorded; the row is then closed `failed`
    ///   and the lease is given up.
    public static func open(_ admitted: AdmittedRun, environment env: RunEnvironment) throws(RunStartError) -> RunSession {
        let p = admitted.prepared
        let health = env.store == nil ? nil : RecordHealth()
        var record: [any TimelineSink] = []
        if let store = env.store {
            do {
                let fence = admitted.holds.fence
                let file = try fence.map { try store.timelineSink(fence: $0, health: health) } ?? store.timelineSink(runID: p.runID, health: health)
                if !admitted.holds.startRecorded { try file.write(SecretRedactor.redact(p.start, p.secrets)) }
                record = [file, HistorySink(store: store, health: health, fence: fence, rowClosedByTimeline: file.closesRowAtRunFinished)]
            } catch {
                try? store.finish(runID: p.runID, outcome: .failed, durationMs: 0)
                admitted.holds.release()
                throw RunStartError(runID: p.runID, cause: error)
            }
        }
        let stream = RunEventStream(secrets: p.secrets, record: record, subscribers: env.subscribers)
        if env.store != nil { stream.announce(p.start) } else { stream.record(p.start) }
        let now = p.start.time
        if let r = admitted.overridden {
            var e = TimelineEvent(time: now, run: p.runID, event: "guard.overridden")
            e.guardName = r.guardName
            e.until = r.until
            e.message = "--force: " + r.message
            stream.record(e)
        }
        var options = options(for: p.request.runbook, runID: p.runID, values: p.values, alertRun: p.request.alertRun, environment: env)
        if let n = p.request.maxParallel { options.maxParallel = n }
        options.autoConfirm = p.request.autoConfirm
        options.noUndo = p.request.noUndo
        options.dryRun = p.request.mode.followsDryRunPath
        options.targets = p.targets
        let facts = facts(for: p.request.runbook, runID: p.runID, alertRun: p.request.alertRun, environment: env)
        return make(p.request.runbook, options: options, facts: facts, mode: p.request.mode, stream: stream, health: health,
                    holds: admitted.holds, environment: env, resuming: nil)
    }

    /// The state machine's options every path shares: the approval rule, the breaker, jitter.
    static func options(for runbook: Runbook, runID: String, values: [String: Value], alertRun: Bool, environment env: RunEnvironment) -> RunStateMachine.Options {
        var options = RunStateMachine.Options(runID: runID, params: values)
        if let n = env.maxParallel { options.maxParallel = n }
        options.asksBeforeChanges = true
        options.reservesBreakerPlaces = facts(for: runbook, runID: runID, alertRun: alertRun, environment: env).hasBreaker
        options.breakerMayAsk = env.rule.pauses(runbook)
        if let r = env.random { options.random = r }
        return options
    }

    /// What the run's driver asks for the machine: why changes wait (the approval rule), the breaker.
    static func facts(for runbook: Runbook, runID: String, alertRun: Bool, environment env: RunEnvironment) -> RuleChangeFacts {
        RuleChangeFacts(env.rule, runbook: runbook, alertRun: alertRun, store: env.store, runID: runID)
    }

    /// The run's queue, clock, approver and driver.
    static func make(_ runbook: Runbook, options: RunStateMachine.Options, facts: any ChangeFacts, mode: RunMode, stream: RunEventStream, health: RecordHealth?,
                     holds: RunHolds, environment env: RunEnvironment, resuming events: [TimelineEvent]?) -> RunSession {
        let queue = DispatchQueue(label: "\(env.queueLabel).\(options.runID)")
        let scheduler: any RunScheduler = switch env.clock {
        case .wall: DispatchScheduler(queue: queue)
        case .virtual(let start): VirtualScheduler(queue: queue, start: start)
        }
        let desk: any ApprovalDesk = switch env.approver {
        case .none: NoApprovals()
        case .store(let startedBy, let resumable): env.store.map { StoreApprovalDesk(store: $0, startedBy: startedBy, resumable: resumable) } ?? NoApprovals()
        case .custom(let make): make(scheduler)
        }
        // `across:` steps run host by host on the front end's executor (issue 22).
        let executor: any StepExecutor = runbook.steps.contains { $0.across != nil }
            ? FleetExecutor(inner: env.executor, runbook: runbook, describeOnly: mode == .dryRun) : env.executor
        let driver = RunDriver(runbook: runbook, options: options, dryRun: mode.describesChanges, queue: queue, executor: executor,
                               scheduler: scheduler, sink: stream, prompter: env.prompter, health: health, desk: desk, facts: facts,
                               resuming: events, inFlight: env.inFlight)
        driver.leavesRunWhenStoreUnreachable = env.leavesRunWhenStoreUnreachable
        return RunSession(runbook: runbook, events: stream, health: health, scheduler: scheduler, driver: driver, holds: holds, settle: env.settle)
    }

    /// Runs the steps. `onEnd` gets the outcome once, on the run's queue, after `settle` and after
    /// the run's lease is given up and its watchers ended. Call once.
    /// - Parameters:
    ///   - onLost: called instead of `onEnd` when a write was fenced (another owner holds the run):
    ///     the run stopped at once, its commands killed, nothing undone, nothing more written.
    public func begin(onEnd: @escaping @Sendable (RunSession, RunOutcome) -> Void = { _, _ in },
                      onLost: @escaping @Sendable (RunSession, String) -> Void = { _, _ in }) {
        let fenced: @Sendable (String) -> Void = { [self] why in
            // Its lease is not renewed from here on (a fenced one is gone already); off the run's
            // queue, as giving it up writes to a database that may not answer.
            let holds = self.holds
            DispatchQueue.global().async { holds.release() }
            events.finish()
            onLost(self, why)
        }
        driver.start(startEvent: nil, onFenced: fenced) { [self] outcome in
            settle?()
            holds.release()
            events.finish()
            onEnd(self, outcome)
        }
    }

    /// Stops running steps and undoes completed changes (unless `--no-undo`).
    public func interrupt() { driver.interrupt() }

    /// Lets running steps finish or time out, starts nothing new, and ends the run `interrupted`.
    public func drain() { driver.drain() }

    /// Ends the run now, `interrupted`, its final record written, and gives up its holds.
    /// Blocks the caller until the run's queue has written the end: never call it from a task.
    public func abandon(reason: AbandonReason = .interruptedTwice) {
        driver.abandon(reason: reason)
        holds.release()
    }

    /// Leaves a run that only waits for approval for the next server (its lock key is the open row
    /// and stays held; its lease goes with the process). Returns false when the run is doing anything else.
    /// Blocks the caller on the run's queue: never call it from a task.
    public func detachIfPaused() -> Bool {
        guard driver.detachIfPaused() else { return false }
        events.finish()
        return true
    }

    /// Stops driving the run without a word, from any thread, without waiting for the run's queue:
    /// its lease was lost or given up. Running commands are killed now; nothing is undone or
    /// written. Returns false when it was stopped already.
    public func stopNow() -> Bool {
        guard driver.stopNow() else { return false }
        events.finish()
        return true
    }

    /// Stops driving the run without a word: another process owns it now. Returns false when it was
    /// detached already. Blocks the caller on the run's queue: never call it from a task.
    public func detach() -> Bool {
        guard driver.detach() else { return false }
        events.finish()
        return true
    }
}
