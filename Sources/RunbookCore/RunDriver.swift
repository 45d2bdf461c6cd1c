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
    /// Where gates are recorded and answered.
    let desk: any ApprovalDesk
    /// Why changes wait and the change breaker's budget, asked for the machine.
    let facts: any ChangeFacts
    /// Per open gate: its timeout and its answer watch.
    var gates: [String: [any Cancellable]] = [:]
    /// Set when a paused run is left for a later process to resume: it takes no more events.
    var detached = false
    /// Called once, on the run's queue, when a write was fenced and the run stopped without a word.
    var onFenced: (@Sendable (String) -> Void)?
    /// A replica's run whose database cannot be reached stops as a fenced one does (nothing undone
    /// here): its lease lapses and the next owner, another replica or this one once the database
    /// answers, finishes it from its record. Undoing here, unrecorded, the next owner would undo again.
    public var leavesRunWhenStoreUnreachable = false
    /// Attempts and undos in flight, killed from any thread when the run's lease is lost (`stopNow`).
    let killSwitch = RunKillSwitch()

    /// - Parameters:
    ///   - queue: the serial queue that owns the run; the scheduler's blocks must run on it too.
    ///   - startEvent: the `run.started` event to emit first (runbook, trigger, params, dry_run).
    ///   - facts: why changes wait and the breaker's budget, asked on `queue` when the machine says so.
    public init(runbook: Runbook, options: RunStateMachine.Options, dryRun: Bool, queue: DispatchQueue,
                executor: any StepExecutor, scheduler: any RunScheduler, sink: any TimelineSink,
                prompter: any ConfirmationPrompter, health: RecordHealth? = nil, desk: any ApprovalDesk = NoApprovals(),
                facts: any ChangeFacts = NoChangeFacts(),
                resuming events: [TimelineEvent]? = nil, inFlight: ((Step, TemplateValues) -> InFlightVerdict)? = nil) {
        self.health = health
        self.desk = desk
        self.facts = facts
        self.queue = queue
        self.runbook = runbook
        self.runID = options.runID
        self.executor = executor
        self.scheduler = scheduler
        self.sink = sink
        self.prompter = prompter
        self.dryRun = dryRun
        self.machine = events.map { RunStateMachine(runbook: runbook, options: options, resuming: $0, inFlight: inFlight, now: scheduler.now) }
            ?? RunStateMachine(runbook: runbook, options: options)
    }

    /// Leaves a run that only waits for approvals as it is (open, its gates recorded) for a later
    /// server to resume: timers and watches stop, nothing is written. Returns false (and does
    /// nothing) when the run is doing anything else.
    public func detachIfPaused() -> Bool {
        assertNotInTask("detachIfPaused")
        return queue.sync {
            guard !detached, machine.isPausedForApproval else { return false }
            detached = true
            cancelAllWork()
            return true
        }
    }

    /// Stops driving the run without a word, from any thread and without waiting for the run's
    /// queue (which may be waiting for the database): running commands are killed now, nothing new
    /// starts, nothing more is written. Returns false when it was stopped already.
    public func stopNow() -> Bool {
        guard killSwitch.throwNow() else { return false }
        queue.async { [self] in
            guard !detached else { return }
            detached = true
            cancelAllWork()
        }
        return true
    }

    /// Stops driving the run without a word (another process owns it now): timers, watches and
    /// alarms stop; steps in flight are cancelled; nothing more is written.
    public func detach() -> Bool {
        assertNotInTask("detach")
        return queue.sync {
            guard !detached else { return false }
            detached = true
            cancelAllWork()
            return true
        }
    }

    /// The gates open now, for `/runs` and the terminal.
    public var gatesOpen: [GateRequest] {
        assertNotInTask("gatesOpen")
        return queue.sync { machine.gatesOpen }
    }

    /// Starts the run after emitting `startEvent` (nil when the caller recorded it already);
    /// `completion` gets the outcome on the run queue; `onFenced` is called instead when a write is
    /// refused because another owner holds the run (the run then stops without a word).
    public func start(startEvent: TimelineEvent?, onFenced: (@Sendable (String) -> Void)? = nil,
                      completion: @escaping @Sendable (RunOutcome) -> Void) {
        queue.async {
            self.completion = completion
            self.onFenced = onFenced
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
    public func abandon(reason: AbandonReason = .interruptedTwice) {
        assertNotInTask("abandon")
        queue.sync { self.apply(self.machine.abandon(now: self.scheduler.now, reason: reason)) }
    }

    /// Debug builds: the blocking entry points wait on the run's queue, which must never park a
    /// thread of Swift's cooperative pool (call them from a thread or queue of your own).
    func assertNotInTask(_ what: StaticString) {
        assert(withUnsafeCurrentTask { $0 == nil }, "RunDriver.\(what) blocks on the run queue: never call it from a task")
    }

    /// True once a sink said the run's record could not be written, or that the run is fenced.
    var recordFailed: Bool { health?.failure != nil || health?.fenced != nil }

    /// True once this process may no longer act for the run: a write was fenced, or (for a replica's
    /// run) the database could not be reached.
    var mustNotAct: Bool {
        health?.fenced != nil || (leavesRunWhenStoreUnreachable && health?.storeUnreachable == true)
    }

    func apply(_ effects: [RunStateMachine.Effect]) {
        dispatchPrecondition(condition: .onQueue(queue))
        if detached || killSwitch.isThrown { return }
        applying += 1
        // Answers the machine waits for, fed back once this batch is carried out (so in the order
        // the machine asked, after everything it asked for before).
        var answers: [(inout RunStateMachine, Date) -> [RunStateMachine.Effect]] = []
        defer {
            applying -= 1
            // Fenced: another owner holds the run (or, for a replica, nobody can be told what happens
            // next). Stop at once: kill what runs, undo nothing, write nothing.
            if let why = health?.fenced ?? (mustNotAct ? health?.failure : nil), !detached {
                detached = true
                cancelAllWork()
                onFenced?(why)
                onFenced = nil
                completion = nil
            }
            // Fail closed: once the record cannot be written, nothing new starts and completed changes are undone.
            if applying == 0, !recordFailureHandled, let why = health?.failure {
                recordFailureHandled = true
                apply(machine.recordingFailed(why, now: scheduler.now))
            }
        }
        // Events the machine emits one after another are recorded together (one write, all or
        // none), before the next effect acts: the record still comes first.
        var emitted: [TimelineEvent] = []
        func recordEmitted() {
            guard !emitted.isEmpty else { return }
            if emitted.count == 1 { sink.record(emitted[0]) } else { sink.record(emitted) }
            emitted.removeAll()
        }
        for effect in effects {
            if case .emit = effect {} else if case .emitNote = effect {} else { recordEmitted() }
            switch effect {
            case .emit, .emitNote:
                guard let e = effect.recordedEvent else { continue }
                // A step that will not start (the record failed) is not shown as started.
                if recordFailed, e.event == "step.started" { continue }
                emitted.append(e)
                // A change is also counted in the store (the breaker's window), which may fail after
                // the timeline took it: what follows waits to know.
                if e.event == "change.applied" { recordEmitted() }
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
            case .haltFleet(let id, let alarm):
                // Any other handle (a dry run's description) ends on its own: it is left to finish.
                (attempts[id]?.handle as? any HaltableAttempt)?.halt(RunWording.fleetHalted(alarm: alarm))
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
                guard !mustNotAct, let step = runbook.step(stepID) else { continue }
                var request = StepRequest(step: step, attempt: 1, runID: runID, dryRun: dryRun, values: values, scheduler: scheduler)
                request.runbookName = runbook.name
                let timeout = scheduler.schedule(after: machine.options.undoTimeout) { [self] in
                    apply(machine.undoTimedOut(index: index, now: scheduler.now))
                }
                let handle = executor.undo(change, action: step.undo, request: request) { [self] result in
                    queue.async { self.apply(self.machine.undoFinished(index: index, result: result, now: self.scheduler.now)) }
                }
                undos[index] = (handle, timeout)
                killSwitch.add("undo:\(index)", handle)
            case .endUndo(let index):
                if let u = undos.removeValue(forKey: index) { u.timeout.cancel(); u.handle.cancel() }
            case .openGate(let request):
                if recordFailed { continue }
                openGate(request)
            case .closeGate(let id, let status):
                gates.removeValue(forKey: id)?.forEach { $0.cancel() }
                desk.close(runID: runID, gate: id, status: status)
            case .askChangeReasons:
                let reasons = facts.reasonsBeforeChanges(now: scheduler.now)
                answers.append { $0.changeReasonsAnswered(reasons, now: $1) }
            case .reserveBreakerPlace(let id):
                let refusal = facts.reserveChange(now: scheduler.now)
                answers.append { $0.breakerAnswered(step: id, refusal: refusal, now: $1) }
            case .releaseBreakerPlace:
                facts.releaseChange()
            case .scheduleAlarm(let id):
                scheduleAlarm(id)
            case .stopAlarms:
                stopAlarms()
            case .finished(let outcome):
                cancelAllWork()
                completion?(outcome)
                completion = nil
            }
        }
        recordEmitted()
        for answer in answers { apply(answer(&machine, scheduler.now)) }
    }

    /// Records the gate, arms its timeout at its deadline, watches for answers and tells the
    /// approvals channel, if the runbook has one.
    func openGate(_ request: GateRequest) {
        do { try desk.open(runID: runID, gate: request) } catch {
            health?.report("cannot record approval gate \(request.id): \(error)")
            return
        }
        let id = request.id
        let watch = desk.watch(runID: runID, gate: id) { [self] answers in
            queue.async { self.feed(answers, gate: id) }
        }
        gates[id] = [armDeadline(id, request.deadline), watch]
        if let channel = runbook.approvalsChannel { notifyApprovers(channel, request) }
    }

    /// At the gate's deadline the desk decides (in the store, in one transaction with the answers):
    /// the run learns every answer taken, then the timeout only when the deadline decided. A desk
    /// whose clock says the deadline is still ahead is asked again shortly.
    func armDeadline(_ id: String, _ deadline: Date) -> any Cancellable {
        scheduler.schedule(after: max(0, deadline.timeIntervalSince(scheduler.now))) { [self] in
            guard gates[id] != nil else { return }
            let state: GateState?
            do { state = try desk.deadlinePassed(runID: runID, gate: id, now: scheduler.now) } catch {
                health?.report("cannot decide approval gate \(id) at its deadline: \(error)")
                apply([])
                return
            }
            guard let state else {
                gates[id]?[0] = armDeadline(id, scheduler.now.addingTimeInterval(0.05))
                return
            }
            feed(state.answers, gate: id)
            if state.timedOut { apply(machine.gateAnswered(id: id, answer: .timedOut, now: scheduler.now)) }
        }
    }

    /// Answers taken at a gate, oldest first (the machine ignores those it has seen).
    func feed(_ answers: [ApprovalRecord], gate id: String) {
        for a in answers {
            apply(machine.gateAnswered(id: id, answer: a.approve ? .approved(by: a.name) : .denied(by: a.name), now: scheduler.now))
        }
    }

    /// Posts the pause to `approvals_channel`: the run, its planned changes and how to answer.
    func notifyApprovers(_ channel: Template, _ request: GateRequest) {
        let text = RunWording.approvalsChannel(runbook: runbook.name, runID: runID, request)
        let action = Action(.notify(NotifySpec(url: channel, text: Template(literal: text))))
        let step = Step(id: "approvals-channel", phase: .mitigate, description: "", needs: [], when: nil, timeout: 10, retry: RetryPolicy(),
                        confirm: false, continueOnFailure: true, action: action, undo: nil,
                        location: SourceLocation(file: runbook.file, line: 1, column: 1))
        var request = StepRequest(step: step, attempt: 1, runID: runID, dryRun: dryRun, values: machine.values, scheduler: scheduler)
        request.runbookName = runbook.name
        _ = executor.execute(request) { [self] result in
            queue.async {
                guard !self.detached else { return }
                var e = TimelineEvent(time: self.scheduler.now, run: self.runID, event: "approval.notified")
                e.status = result.status.isFailure ? "failed" : "passed"
                e.message = result.message
                self.sink.record(e)
            }
        }
    }

    /// Cancels every attempt, retry, undo, gate and alarm in flight (the run ended, or is no longer ours).
    func cancelAllWork() {
        for (_, a) in attempts { a.handle.cancel(); a.timeout.cancel() }
        attempts.removeAll()
        for (_, r) in retries { r.cancel() }
        retries.removeAll()
        for (_, u) in undos { u.timeout.cancel(); u.handle.cancel() }
        undos.removeAll()
        for (_, g) in gates { g.forEach { $0.cancel() } }
        gates.removeAll()
        stopAlarms()
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
        if step.across != nil {
            request.report = { [self] progress in
                queue.async { self.apply(self.machine.fleetProgress(step: id, attempt: attempt, progress, now: self.scheduler.now)) }
            }
        }
        let limit = step.attemptLimit(hosts: step.across.map { values.targets[$0.targets]?.count ?? 1 } ?? 1)
        let timeout = scheduler.schedule(after: limit) { [self] in
            guard let a = attempts[id], a.attempt == attempt else { return }
            attempts[id] = nil
            a.handle.cancel()
            let result = StepResult(.timedOut, "timed out after \(Quantity.formatDuration(limit))")
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
        killSwitch.add("step:\(id)", handle)
    }
}

/// Where a run's durable sinks report that a record could not be written (full disk, read-only
/// folder). The driver checks it after each event and stops the run when it is set.
public final class RecordHealth: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var first: String?
    private var fencedBecause: String?
    private var unreachable = false

    public init() {}

    /// The first failure reported, e.g. `cannot write /var/lib/runbook/runs/X.jsonl: No space left on device (errno 28)`.
    public var failure: String? { lock.withLock { first } }

    /// Reports a failed write; the first report wins.
    public func report(_ why: String) { lock.withLock { if first == nil { first = why } } }

    /// Set once a write was refused because another owner holds the run (a fenced lease): the run
    /// stops at once, undoes nothing and writes nothing more.
    public var fenced: String? { lock.withLock { fencedBecause } }

    /// Reports a write that failed because the database could not be reached (or did not answer in
    /// time): a failure whose effect on the record is unknown.
    public func reportUnreachable(_ why: String) {
        lock.withLock {
            if first == nil { first = why }
            unreachable = true
        }
    }

    /// Whether a write failed because the database could not be reached.
    public var storeUnreachable: Bool { lock.withLock { unreachable } }

    /// Reports a write refused by the run's fence; the first report wins.
    public func reportFenced(_ why: String) { lock.withLock { if fencedBecause == nil { fencedBecause = why } } }
}
