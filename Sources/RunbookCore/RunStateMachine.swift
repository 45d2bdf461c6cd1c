import Foundation

/// The run's rules as a pure state machine: events in, effects out, no I/O and no clock of its own.
///
/// It owns ready steps, results, phase progress, the change stack and undo. The driver feeds it
/// what happened (with the time) and carries out the effects it returns.
public struct RunStateMachine: Sendable {
    /// What the driver must do next.
    public enum Effect: Sendable {
        case emit(TimelineEvent)
        case startAttempt(step: String, attempt: Int, values: TemplateValues)
        case scheduleRetry(step: String, attempt: Int, after: Double)
        case cancelAttempt(step: String)
        case cancelRetry(step: String)
        case askConfirmation(step: String)
        case startUndo(index: Int, change: AppliedChange, step: String, values: TemplateValues)
        /// The undo started at `index` has ended (or timed out): stop its timer and any work left.
        case endUndo(index: Int)
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
        case running(attempt: Int)
        case retryWait(nextAttempt: Int)
        case done(StepStatus)
    }

    enum Stop: Sendable, Equatable {
        case failed(String)
        case declined(String)
        case interrupted
        /// The run's record could not be written: a run that cannot be recorded must not go on changing things.
        case recordFailed(String)
        /// An alarm fired: its id and why.
        case aborted(String, String)
    }

    /// One change to reverse, in undo order.
    struct PlannedUndo: Sendable {
        var step: String
        var change: AppliedChange
    }

    /// Where the run is in its life. One value, so that no two phases of it can overlap: nothing
    /// starts once it is stopping, undo runs one change at a time, and a finished run takes no events.
    enum Lifecycle: Sendable {
        case running
        /// Stopping for a reason: running steps end (or are cancelled), nothing new starts.
        case stopping(Stop)
        /// Reversing completed changes: `plan[index]` is in flight.
        case undoing(Stop, plan: [PlannedUndo], index: Int)
        case finished(RunOutcome)
    }

    let runbook: Runbook
    let options: Options
    let phases: [Phase]
    var states: [String: StepState] = [:]
    var firstStarted: [String: Date] = [:]
    var values: TemplateValues
    var phaseIndex = 0
    var changes: [(step: String, change: AppliedChange)] = []
    var lifecycle: Lifecycle = .running
    /// Alarms are evaluated from the first change until the run stops or ends.
    var alarmsRunning = false
    var alarmErrors: [String: Int] = [:]
    /// Changes whose undo failed or was abandoned, and changes with no undo, once a stopped run is done.
    var undoFailures = 0
    /// Indices into `changes` that were undone.
    var undone = Set<Int>()
    /// Why the run stopped, while it is stopping or undoing.
    var stop: Stop? {
        switch lifecycle {
        case .stopping(let s), .undoing(let s, _, _): s
        case .running, .finished: nil
        }
    }
    var finishedOutcome: RunOutcome? {
        if case .finished(let o) = lifecycle { return o }
        return nil
    }
    var isUndoing: Bool {
        if case .undoing = lifecycle { return true }
        return false
    }
    var running = 0
    /// What each running attempt holds, and how many hold each.
    var holding: [String: Resource] = [:]
    var held: [Resource: Int] = [:]
    var startedAt: Date?
    /// Set by `drain`: an interrupted run that leaves its completed changes in place.
    var keepChanges = false
    /// Steps of each phase in `phases`, in file order.
    let phaseSteps: [[Step]]
    /// File position of each step, for a deterministic start order.
    let order: [String: Int]
    /// Needs not yet finished, per step.
    var waitingOn: [String: Int] = [:]
    /// Steps that need each step.
    let dependents: [String: [String]]
    /// Per phase: steps whose needs are all finished and that have not started.
    var candidates: [[String]]
    /// Per phase: steps not yet finished.
    var unfinished: [Int]

    public init(runbook: Runbook, options: Options) {
        self.runbook = runbook
        self.options = options
        let phases = Phase.allCases.filter { p in runbook.steps.contains { $0.phase == p } }
        self.phases = phases
        self.values = TemplateValues(params: options.params, runID: options.runID)
        self.phaseSteps = phases.map { p in runbook.steps.filter { $0.phase == p } }
        self.order = Dictionary(runbook.steps.enumerated().map { ($1.id, $0) }, uniquingKeysWith: { a, _ in a })
        var dependents: [String: [String]] = [:]
        var candidates = [[String]](repeating: [], count: phases.count)
        for s in runbook.steps {
            states[s.id] = .pending
            let needs = Set(s.needs)
            waitingOn[s.id] = needs.count
            for n in needs { dependents[n, default: []].append(s.id) }
            if needs.isEmpty, let p = phases.firstIndex(of: s.phase) { candidates[p].append(s.id) }
        }
        self.dependents = dependents
        self.candidates = candidates
        self.unfinished = phaseSteps.map(\.count)
    }

    /// Records that a step finished (any status) and releases the steps that need it.
    mutating func markDone(_ id: String, _ status: StepStatus) {
        states[id] = .done(status)
        values.statuses[id] = status
        if let s = runbook.step(id), let p = phases.firstIndex(of: s.phase) { unfinished[p] -= 1 }
        for d in dependents[id] ?? [] {
            waitingOn[d, default: 0] -= 1
            if waitingOn[d] == 0, let s = runbook.step(d), let p = phases.firstIndex(of: s.phase) { candidates[p].append(d) }
        }
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
        startedAt = now
        return advance(now: now)
    }

    /// An alarm's evaluation came back. Passed: the alarm fires, the run stops and undoes (`aborted`).
    /// Errored or timed out three times running: it aborts too (fail closed). Failed: all is well, the
    /// alarm is evaluated again after its `every`.
    public mutating func alarmResult(id: String, result: StepResult, now: Date) -> [Effect] {
        guard alarmsRunning, case .running = lifecycle, let alarm = runbook.abortIf.first(where: { $0.id == id }) else { return [] }
        var why: String?
        switch result.status {
        case .passed:
            why = "fired: \(result.message)"
        case .errored, .timedOut:
            alarmErrors[id, default: 0] += 1
            if alarmErrors[id]! >= 3 { why = "could not be evaluated 3 times running (fail closed): \(result.message)" }
        default:
            alarmErrors[id] = 0
        }
        guard let why else { return [.scheduleAlarm(id: id)] }
        var e = TimelineEvent(time: now, run: options.runID, event: "alarm.fired")
        e.step = alarm.id
        e.status = result.status.rawValue
        e.message = "alarm \(alarm.id) \(why)"
        e.output = result.output.isEmpty ? nil : result.output
        lifecycle = .stopping(.aborted(alarm.id, why))
        var effects: [Effect] = [.emit(e)]
        for s in runbook.steps {
            switch states[s.id] {
            case .running, .awaitingConfirmation:
                running -= 1
                release(s.id)
                markDone(s.id, .failed)
                effects.append(.cancelAttempt(step: s.id))
                var f = event("step.finished", now, step: s)
                f.status = StepStatus.failed.rawValue
                f.message = "stopped: alarm \(alarm.id) fired"
                if let t = firstStarted[s.id] { f.durationMs = Self.ms(now.timeIntervalSince(t)) }
                effects.append(.emit(f))
            default: break
            }
        }
        return effects + advance(now: now)
    }

    /// An attempt finished. Late answers from cancelled attempts are ignored.
    public mutating func attemptFinished(step id: String, attempt: Int, result: StepResult, now: Date) -> [Effect] {
        guard states[id] == .running(attempt: attempt), let step = runbook.step(id) else { return [] }
        running -= 1
        release(id)
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
        running -= 1
        if approved, stop == nil {
            return startAttempt(step, attempt: 1, now: now) + advance(now: now)
        }
        var effects: [Effect] = []
        if approved {
            effects += skip(step, because: "run is stopping", now: now)
        } else {
            markDone(id, .declined)
            var e = event("step.finished", now, step: step)
            e.status = StepStatus.declined.rawValue
            e.message = "confirmation declined"
            effects.append(.emit(e))
            if case .running = lifecycle { lifecycle = .stopping(.declined(id)) }
        }
        return effects + advance(now: now)
    }

    /// An undo finished.
    /// Late answers (after a timeout, or for an undo already given up) are ignored.
    public mutating func undoFinished(index: Int, result: StepResult, now: Date) -> [Effect] {
        guard case .undoing(let why, let plan, let current) = lifecycle, index == current, index < plan.count else { return [] }
        let planned = plan[index]
        let failed = result.status.isFailure
        var e = event(failed ? "undo.failed" : "undo.finished", now, step: runbook.step(planned.step))
        e.status = result.status.rawValue
        e.message = result.message.isEmpty ? "undid \(planned.change.summary)" : result.message
        if failed { e.message = "undo of \(planned.change.summary) failed: \(result.message); it is left in place" }
        e.what = planned.change.what
        if let c = result.change { e.what = c.what; e.from = c.from; e.to = c.to }
        if failed {
            undoFailures += 1
        } else if let i = changes.indices.last(where: { !undone.contains($0) && changes[$0].step == planned.step && changes[$0].change == planned.change }) {
            undone.insert(i)
        }
        lifecycle = .undoing(why, plan: plan, index: index + 1)
        return [.endUndo(index: index), .emit(e)] + continueUndo(now: now)
    }

    /// An undo ran past `Options.undoTimeout`: it is given up as failed and the next one starts.
    public mutating func undoTimedOut(index: Int, now: Date) -> [Effect] {
        undoFinished(index: index, result: StepResult(.timedOut, "timed out after \(Quantity.formatDuration(options.undoTimeout))"), now: now)
    }

    /// Ctrl-C or shutdown: running steps are stopped and marked, then completed changes undone unless `noUndo`.
    /// During undo an interrupt changes nothing: the undo goes on (a second Ctrl-C abandons it, see `abandon`).
    public mutating func interrupt(now: Date) -> [Effect] {
        switch lifecycle {
        case .finished, .undoing: return []
        case .running, .stopping: break
        }
        var effects: [Effect] = []
        if stop != .interrupted {
            lifecycle = .stopping(.interrupted)
            for s in runbook.steps {
                switch states[s.id] {
                case .running, .awaitingConfirmation:
                    running -= 1
                    release(s.id)
                    markDone(s.id, .failed)
                    effects.append(.cancelAttempt(step: s.id))
                    var e = event("step.finished", now, step: s)
                    e.status = StepStatus.failed.rawValue
                    e.message = "stopped by interrupt"
                    if let t = firstStarted[s.id] { e.durationMs = Self.ms(now.timeIntervalSince(t)) }
                    effects.append(.emit(e))
                default: break
                }
            }
        }
        return effects + advance(now: now)
    }

    /// Graceful stop (server shutdown): steps already running finish or time out, nothing new starts,
    /// the rest is skipped and the run ends `interrupted`. Completed changes stay in place.
    public mutating func drain(now: Date) -> [Effect] {
        guard case .running = lifecycle else { return [] }
        lifecycle = .stopping(.interrupted)
        keepChanges = true
        var effects: [Effect] = []
        for s in runbook.steps where states[s.id] == .awaitingConfirmation {
            running -= 1
            effects += skip(s, because: "server shutting down", now: now)
        }
        return effects + advance(now: now)
    }

    /// The run's record could not be written (a full or read-only state folder): running steps are
    /// stopped and completed changes undone, as after a failed mitigation. Fail closed.
    public mutating func recordingFailed(_ why: String, now: Date) -> [Effect] {
        switch lifecycle {
        case .finished, .undoing: return []
        case .stopping(.recordFailed): return []
        case .running, .stopping: break
        }
        lifecycle = .stopping(.recordFailed(why))
        var effects: [Effect] = []
        for s in runbook.steps {
            switch states[s.id] {
            case .running, .awaitingConfirmation:
                running -= 1
                release(s.id)
                markDone(s.id, .failed)
                effects.append(.cancelAttempt(step: s.id))
                var e = event("step.finished", now, step: s)
                e.status = StepStatus.failed.rawValue
                e.message = "stopped: the run could not be recorded"
                effects.append(.emit(e))
            default: break
            }
        }
        return effects + advance(now: now)
    }

    /// A second Ctrl-C: the run ends now, `interrupted`, whatever is still running or being undone.
    /// The final event lists every change left in place.
    public mutating func abandon(now: Date, reason: String = "interrupted twice: exited without finishing") -> [Effect] {
        guard finishedOutcome == nil else { return [] }
        var effects: [Effect] = []
        if case .undoing(_, _, let index) = lifecycle { effects.append(.endUndo(index: index)) }
        for s in runbook.steps {
            if case .running = states[s.id] { effects.append(.cancelAttempt(step: s.id)) }
            if case .retryWait = states[s.id] { effects.append(.cancelRetry(step: s.id)) }
        }
        lifecycle = .stopping(.interrupted)
        return effects + end(now: now, abandoned: reason)
    }

    /// Changes made and not undone, as `summary (not undoable)` texts.
    var changesLeftInPlace: [String] {
        changes.enumerated().filter { !undone.contains($0.offset) }.map { i, c in
            c.change.summary + (isUndoable(c) ? "" : " (not undoable)")
        }
    }

    func isUndoable(_ c: (step: String, change: AppliedChange)) -> Bool {
        c.change.automaticUndo != nil || runbook.step(c.step)?.undo != nil
    }

    /// What a step's attempt occupies while it runs, for the caps.
    enum Resource: Sendable {
        case process, network, free
    }

    static func resource(of step: Step) -> Resource {
        switch step.action.kind {
        case .command, .restart: return .process
        case .check:
            switch step.action.checkKind {
            case "command": return .process
            case "http", "tcp", "prometheus", "metric_trend": return .network
            default: return .free
            }
        case .flag: return step.action.config["file"] != nil ? .free : .network
        case .notify: return .network
        case .wait: return .free
        }
    }

    func hasRoom(for step: Step) -> Bool {
        switch Self.resource(of: step) {
        case .process: return held[.process, default: 0] < options.maxParallel
        case .network: return held[.network, default: 0] < options.maxNetwork
        case .free: return true
        }
    }

    /// The attempt of `id` no longer runs: its resource is free again.
    mutating func release(_ id: String) {
        if let r = holding.removeValue(forKey: id) { held[r, default: 1] -= 1 }
    }

    // MARK: Internals

    static func ms(_ seconds: Double) -> Int { Int((max(0, seconds) * 1000).rounded()) }

    mutating func startAttempt(_ step: Step, attempt: Int, now: Date) -> [Effect] {
        states[step.id] = .running(attempt: attempt)
        running += 1
        let r = Self.resource(of: step)
        holding[step.id] = r
        held[r, default: 0] += 1
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
        markDone(step.id, result.status)
        var effects: [Effect] = []
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
        effects.append(.emit(e))
        if let c = result.change, result.status.succeeded {
            changes.append((step.id, c))
            if !alarmsRunning, !runbook.abortIf.isEmpty, case .running = lifecycle {
                alarmsRunning = true
                effects += runbook.abortIf.map { .scheduleAlarm(id: $0.id) }
            }
            if result.status == .passed {
                var ce = event("change.applied", now, step: step)
                ce.what = c.what; ce.from = c.from; ce.to = c.to
                ce.message = c.summary
                if !isUndoable((step.id, c)) {
                    ce.undoable = false
                    ce.message = c.summary + " (not undoable)"
                }
                effects.append(.emit(ce))
            }
        }
        if result.status.isFailure, !step.continueOnFailure, step.phase == .mitigate || step.phase == .verify, case .running = lifecycle {
            lifecycle = .stopping(.failed(step.id))
        }
        return effects
    }

    mutating func skip(_ step: Step, because reason: String, now: Date) -> [Effect] {
        markDone(step.id, .skipped)
        var e = event("step.finished", now, step: step)
        e.status = StepStatus.skipped.rawValue
        e.message = reason
        return [.emit(e)]
    }

    /// Starts what can start; moves phases on; ends the run.
    mutating func advance(now: Date) -> [Effect] {
        guard finishedOutcome == nil else { return [] }
        var effects: [Effect] = []
        if isUndoing { return effects }
        if stop != nil, alarmsRunning {
            alarmsRunning = false
            effects.append(.stopAlarms)
        }
        if let stop {
            guard running == 0 else { return effects }
            let reason: String
            switch stop {
            case .failed(let s): reason = "run stopped: \(s) failed"
            case .declined(let s): reason = "run stopped: \(s) was declined"
            case .interrupted: reason = "run interrupted"
            case .recordFailed: reason = "run stopped: it could not be recorded"
            case .aborted(let id, _): reason = "run aborted by alarm \(id)"
            }
            for s in runbook.steps {
                switch states[s.id] {
                case .pending: effects += skip(s, because: reason, now: now)
                case .retryWait:
                    effects.append(.cancelRetry(step: s.id))
                    effects += skip(s, because: reason, now: now)
                default: break
                }
            }
            let undoAllowed = !(stop == .interrupted && (options.noUndo || keepChanges))
            let plan = undoAllowed ? changes.reversed().filter(isUndoable).map { PlannedUndo(step: $0.step, change: $0.change) } : []
            if !plan.isEmpty {
                lifecycle = .undoing(stop, plan: plan, index: 0)
                return effects + continueUndo(now: now)
            }
            return effects + end(now: now)
        }
        var progressed = true
        while progressed, finishedOutcome == nil {
            progressed = false
            guard phaseIndex < phases.count else { return effects + end(now: now) }
            let phase = phases[phaseIndex]
            // Start (or skip) the ready steps of this phase in file order, up to the parallel limit.
            var ready = candidates[phaseIndex].sorted { order[$0]! < order[$1]! }
            candidates[phaseIndex] = []
            var deferred: [String] = []
            while !ready.isEmpty {
                let id = ready.removeFirst()
                guard states[id] == .pending, let s = runbook.step(id) else { continue }
                if let w = s.when {
                    if !w.evaluate(values.lookup).truthy {
                        effects += skip(s, because: "when \(w) is false", now: now)
                        progressed = true
                        continue
                    }
                } else if let bad = s.needs.first(where: { !(values.statuses[$0]?.succeeded ?? false) }) {
                    effects += skip(s, because: "needs \(bad), which \(values.statuses[bad]?.rawValue ?? "did not run")", now: now)
                    progressed = true
                    continue
                }
                // A step waits for room of its own kind only: waits never wait for processes.
                guard hasRoom(for: s) else {
                    deferred.append(id)
                    continue
                }
                progressed = true
                if options.dryRun, s.phase == .verify {
                    effects += skip(s, because: "would verify after the changes", now: now)
                    progressed = true
                    continue
                }
                if s.confirm, !options.autoConfirm, !options.dryRun {
                    states[s.id] = .awaitingConfirmation
                    running += 1
                    effects.append(.askConfirmation(step: s.id))
                } else {
                    effects += startAttempt(s, attempt: 1, now: now)
                }
            }
            candidates[phaseIndex] = deferred + candidates[phaseIndex]
            if stop != nil { return effects + advance(now: now) }
            if unfinished[phaseIndex] == 0 {
                let steps = phaseSteps[phaseIndex]
                if phase == .detect {
                    let statuses = steps.map { values.statuses[$0.id] }
                    let confirmed = runbook.detect == .all ? statuses.allSatisfy { $0 == .passed } : statuses.contains(.passed)
                    if !confirmed {
                        // Could not measure is not the same as healthy: nobody knows.
                        let unknown = statuses.contains { $0 == .errored || $0 == .timedOut }
                        for s in runbook.steps where states[s.id] == .pending {
                            effects += skip(s, because: unknown ? "detect inconclusive: a check could not measure" : "symptom not confirmed", now: now)
                        }
                        return effects + end(now: now, outcome: unknown ? .inconclusive : .notConfirmed)
                    }
                }
                phaseIndex += 1
                progressed = true
            } else if candidates[phaseIndex].contains(where: { id in runbook.step(id).map(hasRoom) ?? false }) {
                progressed = true
            }
        }
        return effects
    }

    mutating func continueUndo(now: Date) -> [Effect] {
        guard case .undoing(_, let plan, let index) = lifecycle else { return [] }
        guard index < plan.count else { return end(now: now) }
        let planned = plan[index]
        var e = event("undo.started", now, step: runbook.step(planned.step))
        e.what = planned.change.what
        e.from = planned.change.to
        e.to = planned.change.from
        e.message = "undo \(planned.change.summary)"
        return [.emit(e), .startUndo(index: index, change: planned.change, step: planned.step, values: values)]
    }

    mutating func end(now: Date, outcome explicit: RunOutcome? = nil, abandoned: String? = nil) -> [Effect] {
        guard finishedOutcome == nil else { return [] }
        let outcome: RunOutcome
        var message: String?
        if let explicit {
            outcome = explicit
        } else {
            switch stop {
            case .failed(let s): outcome = .failed; message = "\(s) failed"
            case .declined(let s): outcome = .refused; message = "\(s) was declined"
            case .interrupted: outcome = .interrupted; message = abandoned ?? "interrupted"
            case .recordFailed(let why): outcome = .failed; message = "the run could not be recorded: \(why)"
            case .aborted(let id, let why): outcome = .aborted; message = "aborted: alarm \(id) \(why)"
            case nil: outcome = changes.isEmpty ? .completed : options.dryRun ? .wouldMitigate : .mitigated
            }
        }
        func add(_ text: String) { message = (message.map { $0 + "; " } ?? "") + text }
        if undoFailures > 0 { add("undo incomplete") }
        else if !undone.isEmpty { add("\(undone.count) change\(undone.count == 1 ? "" : "s") undone") }
        if stop != nil || undoFailures > 0 {
            let left = changesLeftInPlace
            if !left.isEmpty { add("left in place: " + left.joined(separator: "; ")) }
        }
        let final: RunOutcome = undoFailures > 0 && outcome != .interrupted && outcome != .aborted ? .failed : outcome
        lifecycle = .finished(final)
        if alarmsRunning {
            alarmsRunning = false
            return [.stopAlarms] + endEffects(final, message, now)
        }
        return endEffects(final, message, now)
    }

    func endEffects(_ final: RunOutcome, _ message: String?, _ now: Date) -> [Effect] {
        var e = event("run.finished", now)
        e.outcome = final.rawValue
        e.message = message
        e.durationMs = Self.ms(now.timeIntervalSince(startedAt ?? now))
        return [.emit(e), .finished(final)]
    }
}
