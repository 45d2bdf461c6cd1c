import Dispatch
import Foundation

/// Asks a human whether a `confirm: true` step may run.
public protocol ConfirmationPrompter: Sendable {
    /// Calls `answer` once, from any thread. `change` is exactly what the step will do, templates rendered.
    func confirm(step: Step, change: String, runID: String, answer: @escaping @Sendable (Bool) -> Void)
}

/// Declines every confirmation: no terminal and no `--yes`.
public struct DeclineAll: ConfirmationPrompter {
    public init() {}
    public func confirm(step: Step, change: String, runID: String, answer: @escaping @Sendable (Bool) -> Void) { answer(false) }
}

/// Runs a runbook on Dispatch: one serial queue owns the state machine; step work is handed to the
/// executor and reports back to the queue; timeouts and retry delays are scheduler timers.
public final class RunDriver: @unchecked Sendable {
    // Every mutable property below is read and written only on `queue`; public entry points hop onto it.
    public let queue: DispatchQueue
    public let runbook: Runbook
    public let runID: String
    let executor: any StepExecutor
    let scheduler: any RunScheduler
    let sink: any TimelineSink
    let prompter: any ConfirmationPrompter
    let dryRun: Bool
    var machine: RunStateMachine
    var attempts: [String: (attempt: Int, handle: any Cancellable, timeout: any Cancellable)] = [:]
    var retries: [String: any Cancellable] = [:]
    var undos: [Int: (handle: any Cancellable, timeout: any Cancellable)] = [:]
    /// Per alarm: the timer to its next evaluation, or the evaluation in flight and its timeout.
    var alarms: [String: [any Cancellable]] = [:]
    var alarmRound = 0
    var completion: (@Sendable (RunOutcome) -> Void)?
    /// Where the run's sinks report a record they could not write; nil when nothing is durable (drills).
    let health: RecordHealth?
    var recordFailureHandled = false
    var applying = 0

    /// - Parameters:
    ///   - queue: the serial queue that owns the run; the scheduler's blocks must run on it too.
    ///   - startEvent: the `run.started` event to emit first (runbook, trigger, params, dry_run).
    public init(runbook: Runbook, options: RunStateMachine.Options, dryRun: Bool, queue: DispatchQueue,
                executor: any StepExecutor, scheduler: any RunScheduler, sink: any TimelineSink,
                prompter: any ConfirmationPrompter, health: RecordHealth? = nil) {
        self.health = health
        self.queue = queue
        self.runbook = runbook
        self.runID = options.runID
        self.executor = executor
        self.scheduler = scheduler
        self.sink = sink
        self.prompter = prompter
        self.dryRun = dryRun
        self.machine = RunStateMachine(runbook: runbook, options: options)
    }

    /// Starts the run after emitting `startEvent` (nil when the caller recorded it already);
    /// `completion` gets the outcome on the run queue.
    public func start(startEvent: TimelineEvent?, completion: @escaping @Sendable (RunOutcome) -> Void) {
        queue.async {
            self.completion = completion
            if let startEvent { self.sink.record(startEvent) }
            self.apply(self.machine.start(now: self.scheduler.now))
        }
    }

    /// Stops running steps and undoes completed changes (unless the options said not to).
    public func interrupt() {
        queue.async { self.apply(self.machine.interrupt(now: self.scheduler.now)) }
    }

    /// Lets running steps finish or time out, starts nothing new, and ends the run `interrupted`.
    public func drain() {
        queue.async { self.apply(self.machine.drain(now: self.scheduler.now)) }
    }

    /// A second interrupt (or the end of a shutdown's grace period): the run ends now, `interrupted`,
    /// and its final record is written before this returns.
    public func abandon(reason: String = "interrupted twice: exited without finishing") {
        queue.sync { self.apply(self.machine.abandon(now: self.scheduler.now, reason: reason)) }
    }

    /// True once a sink said the run's record could not be written.
    var recordFailed: Bool { health?.failure != nil }

    func apply(_ effects: [RunStateMachine.Effect]) {
        dispatchPrecondition(condition: .onQueue(queue))
        applying += 1
        defer {
            applying -= 1
            // Fail closed: once the record cannot be written, nothing new starts and completed changes are undone.
            if applying == 0, !recordFailureHandled, let why = health?.failure {
                recordFailureHandled = true
                apply(machine.recordingFailed(why, now: scheduler.now))
            }
        }
        for effect in effects {
            switch effect {
            case .emit(let e):
                // A step that will not start (the record failed) is not shown as started.
                if recordFailed, e.event == "step.started" { continue }
                sink.record(e)
            case .startAttempt(let id, let attempt, let values):
                // A step whose start could not be recorded does not run.
                if recordFailed { continue }
                startAttempt(id, attempt, values)
            case .scheduleRetry(let id, let attempt, let delay):
                retries[id] = scheduler.schedule(after: delay) { [self] in
                    retries[id] = nil
                    apply(machine.retryDue(step: id, attempt: attempt, now: scheduler.now))
                }
            case .cancelAttempt(let id):
                if let a = attempts.removeValue(forKey: id) { a.handle.cancel(); a.timeout.cancel() }
            case .cancelRetry(let id):
                retries.removeValue(forKey: id)?.cancel()
            case .askConfirmation(let id):
                if recordFailed { continue }
                guard let step = runbook.step(id) else { continue }
                let values = machine.values
                let change = ChangeText.exact(step.action) { $0.render(values.lookup) }
                prompter.confirm(step: step, change: change, runID: runID) { [self] approved in
                    queue.async { self.apply(self.machine.confirmationAnswered(step: id, approved: approved, now: self.scheduler.now)) }
                }
            case .startUndo(let index, let change, let stepID, let values):
                guard let step = runbook.step(stepID) else { continue }
                var request = StepRequest(step: step, attempt: 1, runID: runID, dryRun: dryRun, values: values, scheduler: scheduler)
                request.runbookName = runbook.name
                let timeout = scheduler.schedule(after: machine.options.undoTimeout) { [self] in
                    apply(machine.undoTimedOut(index: index, now: scheduler.now))
                }
                let handle = executor.undo(change, action: step.undo, request: request) { [self] result in
                    queue.async { self.apply(self.machine.undoFinished(index: index, result: result, now: self.scheduler.now)) }
                }
                undos[index] = (handle, timeout)
            case .endUndo(let index):
                if let u = undos.removeValue(forKey: index) { u.timeout.cancel(); u.handle.cancel() }
            case .scheduleAlarm(let id):
                scheduleAlarm(id)
            case .stopAlarms:
                stopAlarms()
            case .finished(let outcome):
                for (_, a) in attempts { a.handle.cancel(); a.timeout.cancel() }
                attempts.removeAll()
                for (_, r) in retries { r.cancel() }
                retries.removeAll()
                for (_, u) in undos { u.timeout.cancel(); u.handle.cancel() }
                undos.removeAll()
                stopAlarms()
                completion?(outcome)
                completion = nil
            }
        }
    }

    func stopAlarms() {
        alarmRound += 1
        for (_, handles) in alarms { handles.forEach { $0.cancel() } }
        alarms.removeAll()
    }

    /// Evaluates alarm `id` after its `every`; the result goes to the state machine, which asks for
    /// the next evaluation or stops the run.
    func scheduleAlarm(_ id: String) {
        guard let alarm = runbook.abortIf.first(where: { $0.id == id }) else { return }
        let round = alarmRound
        alarms[id]?.forEach { $0.cancel() }
        alarms[id] = [scheduler.schedule(after: alarm.every) { [self] in
            guard round == alarmRound else { return }
            var request = StepRequest(step: alarm.asStep, attempt: 1, runID: runID, dryRun: dryRun, values: machine.values, scheduler: scheduler)
            request.runbookName = runbook.name
            let done = CancelFlag()
            let report: @Sendable (StepResult) -> Void = { [self] result in
                queue.async {
                    guard round == self.alarmRound, !done.isCancelled else { return }
                    done.cancel()
                    self.alarms[id]?.forEach { $0.cancel() }
                    self.alarms[id] = nil
                    self.apply(self.machine.alarmResult(id: id, result: result, now: self.scheduler.now))
                }
            }
            let timeout = scheduler.schedule(after: alarm.timeout) {
                report(StepResult(.timedOut, "timed out after \(Quantity.formatDuration(alarm.timeout))"))
            }
            let handle = executor.execute(request) { report($0) }
            alarms[id] = [handle, timeout, done]
        }]
    }

    func startAttempt(_ id: String, _ attempt: Int, _ values: TemplateValues) {
        guard let step = runbook.step(id) else { return }
        var request = StepRequest(step: step, attempt: attempt, runID: runID, dryRun: dryRun, values: values, scheduler: scheduler)
        request.runbookName = runbook.name
        let timeout = scheduler.schedule(after: step.timeout) { [self] in
            guard let a = attempts[id], a.attempt == attempt else { return }
            attempts[id] = nil
            a.handle.cancel()
            let result = StepResult(.timedOut, "timed out after \(Quantity.formatDuration(step.timeout))")
            apply(machine.attemptFinished(step: id, attempt: attempt, result: result, now: scheduler.now))
        }
        let handle = executor.execute(request) { [self] result in
            queue.async {
                guard let a = self.attempts[id], a.attempt == attempt else { return }
                self.attempts[id] = nil
                a.timeout.cancel()
                self.apply(self.machine.attemptFinished(step: id, attempt: attempt, result: result, now: self.scheduler.now))
            }
        }
        // The executor may have answered synchronously; its completion hops through the queue, so this runs first.
        attempts[id] = (attempt, handle, timeout)
    }
}

/// Where a run's durable sinks report that a record could not be written (full disk, read-only
/// folder). The driver checks it after each event and stops the run when it is set.
public final class RecordHealth: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var first: String?

    public init() {}

    /// The first failure reported, e.g. `cannot write /var/lib/runbook/runs/X.jsonl: No space left on device (errno 28)`.
    public var failure: String? { lock.withLock { first } }

    /// Reports a failed write; the first report wins.
    public func report(_ why: String) { lock.withLock { if first == nil { first = why } } }
}
