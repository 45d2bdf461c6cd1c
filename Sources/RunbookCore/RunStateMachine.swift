import Foundation

/// The run's rules as a pure state machine: events in, effects out, no I/O and no clock of its own.
///
/// It owns ready steps, results, phase progress, the change stack and undo. The driver feeds it
/// what happened (with the time) and carries out the effects it returns. Facts from outside the run
/// (why changes wait, the change breaker) come in as answers to effects that ask for them, never
/// from a query of its own. It composes no sentence: what its events say is a typed `RunNote`, worded
/// by `RunWording` (a message it records as is comes from outside: a step's or an alarm's result).
///
/// This file holds the state, the step events (attempts, retries, confirmations) and how a step
/// starts and finishes. `RunStateMachine+Scheduling.swift` decides what starts when (phases, needs,
/// `when`, the caps, the detect gate); `RunStateMachine+Stopping.swift` stops and ends a run
/// (interrupt, drain, record failure, alarms, undo, `run.finished`).
public struct RunStateMachine: Sendable {
    /// What the driver must do next.
    public enum Effect: Sendable {
        /// Record `event` as it is (a message it carries is a step's own).
        case emit(TimelineEvent)
        /// Record `event`, its message worded from `note` by `RunWording`.
        case emitNote(TimelineEvent, RunNote)
        case startAttempt(step: String, attempt: Int, values: TemplateValues)
        case scheduleRetry(step: String, attempt: Int, after: Double)
        case cancelAttempt(step: String)
        /// An `across:` step starts no new host; its hosts in flight finish (alarm `alarm` fired).
        case haltFleet(step: String, alarm: String)
        case cancelRetry(step: String)
        case askConfirmation(step: String)
        /// Open an approval gate: record it, start its timeout, watch for answers, tell the approvals channel.
        case openGate(GateRequest)
        /// The gate is closed (`approved`, `declined`, or `closed` when the run stopped): stop its timer and watch.
        case closeGate(id: String, status: String)
        case startUndo(index: Int, change: AppliedChange, step: String, values: TemplateValues)
        /// The undo started at `index` has ended (or timed out): stop its timer and any work left.
        case endUndo(index: Int)
        /// Ask the world why the run's changes must wait for approval (`guards.auto: ask`, a freeze
        /// window), once, before its first mitigate step: answer with `changeReasonsAnswered`.
        /// Mitigate steps wait until then.
        case askChangeReasons
        /// Reserve a place in the change breaker's window for change step `step` (in the store,
        /// atomically): answer with `breakerAnswered`. The step does not start until then.
        case reserveBreakerPlace(step: String)
        /// Give back the place reserved for `step`, a change step that ended without applying its
        /// change (failed, declined, skipped, the run stopped or ended).
        case releaseBreakerPlace(step: String)
        /// Evaluate alarm `id` after its `every`.
        case scheduleAlarm(id: String)
        /// No more alarm evaluations: cancel their timers and any check in flight.
        case stopAlarms
        case finished(RunOutcome)
    }

    /// Settings for one run.
    public struct Options: Sendable {
        public var runID: String
        public var params: [String: Value]
        /// Most steps running a process at once (commands, command checks, restarts): 4 x cores by
        /// default. Waits and network checks are not counted against it.
        public var maxParallel: Int = 4 * ProcessInfo.processInfo.activeProcessorCount
        /// Most network checks (HTTP, TCP, Prometheus, trends, HTTP flags, notify) at once.
        public var maxNetwork: Int = 1000
        /// `--yes` or a server run with `guards.auto`: confirm steps proceed.
        public var autoConfirm: Bool = false
        public var noUndo: Bool = false
        /// Longest one undo may take before it is given up as failed.
        public var undoTimeout: Double = 30
        /// `runbook run --dry-run` (SPEC §6.2): confirm steps neither ask nor need `--yes`, verify steps
        /// are skipped ("would verify after the changes"), and a run that described changes ends
        /// `would-mitigate`. (Drills are rehearsed as live runs and do not set this.)
        public var dryRun = false
        /// Whether the run asks why its changes must wait for approval (`Effect.askChangeReasons`,
        /// once, when its first mitigate step is about to start: `guards.auto: ask`, a freeze window).
        /// False: they need not wait.
        public var asksBeforeChanges = false
        /// The gate the run's changes wait at when the answer gives reasons.
        public var changesGate = ApprovalGate()
        /// `serve --max-changes`: each change step reserves its place in the breaker's window
        /// (`Effect.reserveBreakerPlace`) before it starts, and gives back a place it did not use.
        public var reservesBreakerPlaces = false
        /// Whether a run over the breaker's cap waits for approval (true) or stops, refused (false).
        public var breakerMayAsk = false
        /// Each target set's hosts, resolved before the run (`TargetResolver`).
        public var targets: [String: [String]] = [:]
        /// Random number in 0..<1 for jitter.
        public var random: @Sendable () -> Double = { Double.random(in: 0..<1) }

        public init(runID: String, params: [String: Value]) {
            self.runID = runID
            self.params = params
        }
    }

    enum StepState: Sendable, Equatable {
        case pending
        case awaitingConfirmation
        /// Waiting at its `confirm` gate for approvals.
        case awaitingApproval
        case running(attempt: Int)
        case retryWait(nextAttempt: Int)
        case done(StepStatus)
    }

    /// Why a run stopped.
    public enum Stop: Sendable, Equatable {
        case failed(String)
        case declined(String)
        /// Ctrl-C, a cancel or a shutdown; `keepChanges`: completed changes stay in place (a drain,
        /// a cancel without undo).
        case interrupted(keepChanges: Bool)
        /// The run's record could not be written: a run that cannot be recorded must not go on changing things.
        case recordFailed(String)
        /// An alarm fired: its id and why.
        case aborted(String, AlarmCause)
        /// A gate was denied or timed out, or the breaker refused with no approval path (a step id or
        /// `changes`), and why.
        case notApproved(String, GateDecline)
        /// Taken over while this change step ran: whether it happened is unknown.
        case cutOff(String)
    }

    /// One change to reverse, in undo order.
    struct PlannedUndo: Sendable {
        var step: String
        var change: AppliedChange
    }

    /// Reversing a stopped run's completed changes, one at a time: what the `.undoing` phase knows.
    struct UndoProgress: Sendable {
        /// Why the run stopped.
        var stop: Stop
        /// The changes to reverse, in undo order; `plan[index]` is in flight.
        var plan: [PlannedUndo]
        var index = 0
    }

    /// What undo did, for the plan and for `run.finished`.
    struct UndoRecord: Sendable {
        /// Undos that failed, timed out or were abandoned (or ended unknown before a takeover).
        var failures = 0
        /// Indices into `changes` that were undone.
        var undone = Set<Int>()
        /// Changes whose undo ended before a takeover without undoing them (failed, or of unknown
        /// result): never undone again.
        var settled = Set<Int>()
    }

    /// Where the run is in its life. One value, so that no two phases of it can overlap: nothing
    /// starts once it is stopping, undo runs one change at a time, and a finished run takes no events.
    enum Lifecycle: Sendable {
        case running
        /// Stopping for a reason: running steps end (or are cancelled), nothing new starts.
        case stopping(Stop)
        /// Reversing completed changes.
        case undoing(UndoProgress)
        case finished(RunOutcome)
    }

    let runbook: Runbook
    let options: Options
    let phases: [Phase]
    var states: StepStates
    var firstStarted: [String: Date] = [:]
    var values: TemplateValues
    var changes: [(step: String, change: AppliedChange)] = []
    var lifecycle: Lifecycle = .running
    /// The run's gates: its gate before its changes, the gates open, approvals, earlier deadlines.
    /// They span phases (a stopping run closes its gates; a resumed run keeps approvals and deadlines).
    var gates = GateBook()
    /// The change breaker's places. They span phases: a place is reserved while running and given
    /// back when its step ends, or when the run ends.
    var breaker = BreakerPlaces()
    /// Events a resumed run emits first (changes verified after a takeover).
    var resumeEffects: [Effect] = []
    /// The run's alarms. They start at the first change (or when a resumed run starts) and stop at
    /// the first `advance` after the run stops, so they span the running and stopping phases.
    var alarms = AlarmState()
    /// What undo did. It spans phases: a resumed run restores it from its timeline (undos done or
    /// settled before a takeover) before it undoes the rest, and `run.finished` reports it.
    var undoRecord = UndoRecord()
    /// Why the run stopped, while it is stopping or undoing.
    var stop: Stop? {
        switch lifecycle {
        case .stopping(let s): s
        case .undoing(let u): u.stop
        case .running, .finished: nil
        }
    }
    var finishedOutcome: RunOutcome? {
        if case .finished(let o) = lifecycle { return o }
        return nil
    }
    var isUndoing: Bool { undoProgress != nil }
    /// The undo in progress, while undoing.
    var undoProgress: UndoProgress? {
        if case .undoing(let u) = lifecycle { return u }
        return nil
    }
    var startedAt: Date?
    /// Steps of each phase in `phases`, in file order.
    let phaseSteps: [[Step]]
    /// The runbook's step graph: file positions (a deterministic start order) and dependents.
    var graph: StepGraph { runbook.graph }
    /// What starts when: the phase in progress, needs not yet finished, ready steps, steps left.
    /// Kept in every phase (a stopping run's skipped steps still finish), read while running.
    var schedule: Schedule

    public init(runbook: Runbook, options: Options) {
        self.runbook = runbook
        self.options = options
        let phases = Phase.allCases.filter { p in runbook.steps.contains { $0.phase == p } }
        self.phases = phases
        self.values = TemplateValues(params: options.params, runID: options.runID)
        values.targets = options.targets
        self.phaseSteps = phases.map { p in runbook.steps.filter { $0.phase == p } }
        var candidates = [[String]](repeating: [], count: phases.count)
        states = StepStates(runbook.steps)
        for s in runbook.steps {
            if s.needs.isEmpty, let p = phases.firstIndex(of: s.phase) { candidates[p].append(s.id) }
        }
        schedule = Schedule(waitingOn: runbook.graph.needCount, candidates: candidates, unfinished: phaseSteps.map(\.count))
    }

    /// Records that a step finished (any status) and releases the steps that need it.
    /// - Returns: the breaker place to give back, if the step held one.
    mutating func markDone(_ id: String, _ status: StepStatus) -> [Effect] {
        states[id] = .done(status)
        values.statuses[id] = status
        if let s = runbook.step(id), let p = phases.firstIndex(of: s.phase) { schedule.unfinished[p] -= 1 }
        for d in graph.dependents[id] ?? [] {
            schedule.waitingOn[d, default: 0] -= 1
            if schedule.waitingOn[d] == 0, let s = runbook.step(d), let p = phases.firstIndex(of: s.phase) { schedule.candidates[p].append(d) }
        }
        // A step that applied its change keeps its place (its `change.applied` records it); `finish` takes it out first.
        return breaker.held.remove(id) != nil ? [.releaseBreakerPlace(step: id)] : []
    }

    /// The outcome once finished.
    public var outcome: RunOutcome? { finishedOutcome }

    func event(_ name: String, _ now: Date, step: Step? = nil) -> TimelineEvent {
        var e = TimelineEvent(time: now, run: options.runID, event: name)
        e.step = step?.id
        e.phase = step?.phase.rawValue
        return e
    }

    // MARK: Events in

    /// Starts the run.
    public mutating func start(now: Date) -> [Effect] {
        startedAt = startedAt ?? now
        var effects: [Effect] = resumeEffects
        resumeEffects = []
        // A resumed run that had changed things watches its alarms again.
        if !changes.isEmpty, !runbook.abortIf.isEmpty, !alarms.running {
            alarms.running = true
            effects += runbook.abortIf.map { .scheduleAlarm(id: $0.id) }
        }
        return effects + advance(now: now)
    }

    /// An attempt finished. Late answers from cancelled attempts are ignored.
    public mutating func attemptFinished(step id: String, attempt: Int, result: StepResult, now: Date) -> [Effect] {
        guard states[id] == .running(attempt: attempt), let step = runbook.step(id) else { return [] }
        var effects: [Effect] = []
        if result.status.isFailure, attempt < step.retry.attempts, stop == nil {
            var delay = step.retry.baseDelay(afterAttempt: attempt)
            if step.retry.jitter { delay *= 0.8 + 0.4 * options.random() }
            var e = event("step.retrying", now, step: step)
            e.status = result.status.rawValue
            e.attempt = attempt
            e.delayMs = Int((delay * 1000).rounded())
            e.message = result.message
            states[id] = .retryWait(nextAttempt: attempt + 1)
            effects.append(.emit(e))
            effects.append(.scheduleRetry(step: id, attempt: attempt + 1, after: delay))
            return effects + advance(now: now)
        }
        effects += finish(step, result: result, attempt: attempt, now: now)
        return effects + advance(now: now)
    }

    /// A retry delay ended.
    public mutating func retryDue(step id: String, attempt: Int, now: Date) -> [Effect] {
        guard states[id] == .retryWait(nextAttempt: attempt), let step = runbook.step(id) else { return [] }
        if stop != nil { return advance(now: now) }
        return startAttempt(step, attempt: attempt, now: now) + advance(now: now)
    }

    /// A human answered a `confirm` prompt.
    public mutating func confirmationAnswered(step id: String, approved: Bool, now: Date) -> [Effect] {
        guard states[id] == .awaitingConfirmation, let step = runbook.step(id) else { return [] }
        if approved, stop == nil {
            return startAttempt(step, attempt: 1, now: now) + advance(now: now)
        }
        var effects: [Effect] = []
        if approved {
            effects += skip(step, because: .runIsStopping, now: now)
        } else {
            effects += markDone(id, .declined)
            var e = event("step.finished", now, step: step)
            e.status = StepStatus.declined.rawValue
            effects.append(.emitNote(e, .confirmationDeclined))
            if case .running = lifecycle { lifecycle = .stopping(.declined(id)) }
        }
        return effects + advance(now: now)
    }

    // MARK: Internals

    static func ms(_ seconds: Double) -> Int { Int((max(0, seconds) * 1000).rounded()) }

    mutating func startAttempt(_ step: Step, attempt: Int, now: Date) -> [Effect] {
        states[step.id] = .running(attempt: attempt)
        var effects: [Effect] = []
        if attempt == 1 {
            firstStarted[step.id] = now
            effects.append(.emit(event("step.started", now, step: step)))
        }
        effects.append(.startAttempt(step: step.id, attempt: attempt, values: values))
        return effects
    }

    mutating func finish(_ step: Step, result: StepResult, attempt: Int, now: Date) -> [Effect] {
        if !result.output.isEmpty { values.outputs[step.id] = result.output }
        if result.change != nil, result.status == .passed { breaker.held.remove(step.id) }
        var effects = markDone(step.id, result.status)
        var e = event("step.finished", now, step: step)
        e.status = result.status.rawValue
        e.attempt = attempt
        e.durationMs = Self.ms(now.timeIntervalSince(firstStarted[step.id] ?? now))
        e.message = result.message
        e.output = result.output.isEmpty ? nil : result.output
        e.exitCode = result.exitCode
        e.stdout = result.stdout
        e.stderr = result.stderr
        if let c = result.change, result.status == .wouldChange {
            e.what = c.what; e.from = c.from; e.to = c.to
        }
        // The change goes on record before the step's end: an owner cut off between the two leaves
        // a recorded change (undone by its next owner), never an unrecorded one.
        if let c = result.change, result.status.succeeded {
            effects += applied(c, by: step, recorded: result.status == .passed, now: now)
        }
        effects.append(.emit(e))
        if result.status.isFailure, !step.continueOnFailure, step.phase == .mitigate || step.phase == .verify, case .running = lifecycle {
            lifecycle = .stopping(.failed(step.id))
        }
        return effects
    }

    mutating func skip(_ step: Step, because reason: SkipReason, now: Date) -> [Effect] {
        let release = markDone(step.id, .skipped)
        var e = event("step.finished", now, step: step)
        e.status = StepStatus.skipped.rawValue
        return release + [.emitNote(e, .stepSkipped(reason))]
    }
}
