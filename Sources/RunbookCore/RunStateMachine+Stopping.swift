import Foundation

/// Stopping and ending: interrupts, drains, record failures, alarms, undo one change at a time, and
/// the one `run.finished`.
extension RunStateMachine {
    /// An alarm's evaluation came back. Passed: the alarm fires, the run stops and undoes (`aborted`).
    /// Errored or timed out three times running: it aborts too (fail closed). Failed: all is well, the
    /// alarm is evaluated again after its `every`.
    public mutating func alarmResult(id: String, result: StepResult, now: Date) -> [Effect] {
        guard alarms.running, case .running = lifecycle, let alarm = runbook.abortIf.first(where: { $0.id == id }) else { return [] }
        var why: AlarmCause?
        switch result.status {
        case .passed:
            why = .fired(result.message)
        case .errored, .timedOut:
            alarms.errors[id, default: 0] += 1
            if alarms.errors[id]! >= AlarmState.failClosedAfter { why = .unevaluable(times: AlarmState.failClosedAfter, result.message) }
        default:
            alarms.errors[id] = 0
        }
        guard let why else { return [.scheduleAlarm(id: id)] }
        var e = TimelineEvent(time: now, run: options.runID, event: "alarm.fired")
        e.step = alarm.id
        e.status = result.status.rawValue
        e.output = result.output.isEmpty ? nil : result.output
        lifecycle = .stopping(.aborted(alarm.id, why))
        return [.emitNote(e, .alarmFired(id: alarm.id, why))] + stopForAlarm(alarm.id, now: now) + advance(now: now)
    }

    /// An undo finished.
    /// Late answers (after a timeout, or for an undo already given up) are ignored.
    public mutating func undoFinished(index: Int, result: StepResult, now: Date) -> [Effect] {
        undoEnded(index: index, result: result, failure: result.status.isFailure ? .failed(result.message) : nil, now: now)
    }

    /// An undo ended: undone, or left in place (`failure`).
    mutating func undoEnded(index: Int, result: StepResult, failure: UndoFailure?, now: Date) -> [Effect] {
        guard var undo = undoProgress, index == undo.index, index < undo.plan.count else { return [] }
        let planned = undo.plan[index]
        let failed = failure != nil
        var e = event(failed ? "undo.failed" : "undo.finished", now, step: runbook.step(planned.step))
        e.status = result.status.rawValue
        let summary = planned.change.summary
        let note: RunNote = failure.map { .undoFailed(summary, $0) } ?? .undone(summary, message: result.message)
        e.what = planned.change.what
        e.target = planned.change.target
        if let c = result.change { e.what = c.what; e.from = c.from; e.to = c.to }
        if failed {
            undoRecord.failures += 1
        } else if let i = changes.indices.last(where: { !undoRecord.undone.contains($0) && changes[$0].step == planned.step && changes[$0].change == planned.change }) {
            undoRecord.undone.insert(i)
        }
        undo.index += 1
        lifecycle = .undoing(undo)
        return [.endUndo(index: index), .emitNote(e, note)] + continueUndo(now: now)
    }

    /// An undo ran past `Options.undoTimeout`: it is given up as failed and the next one starts.
    public mutating func undoTimedOut(index: Int, now: Date) -> [Effect] {
        undoEnded(index: index, result: StepResult(.timedOut), failure: .timedOut(after: options.undoTimeout), now: now)
    }

    /// Ctrl-C or shutdown: running steps are stopped and marked, then completed changes undone unless `noUndo`.
    /// During undo an interrupt changes nothing: the undo goes on (a second Ctrl-C abandons it, see `abandon`).
    /// - Parameters:
    ///   - keepChanges: leave completed changes in place (a cancel without undo); once asked, kept.
    public mutating func interrupt(now: Date, keepChanges: Bool = false) -> [Effect] {
        switch lifecycle {
        case .finished, .undoing: return []
        case .running, .stopping: break
        }
        var effects: [Effect] = []
        if case .interrupted(let kept) = stop {
            if keepChanges, !kept { lifecycle = .stopping(.interrupted(keepChanges: true)) }
        } else {
            lifecycle = .stopping(.interrupted(keepChanges: keepChanges))
            effects = stopRunningSteps(.interrupt, now: now)
        }
        return effects + advance(now: now)
    }

    /// Graceful stop (server shutdown): steps already running finish or time out, nothing new starts,
    /// the rest is skipped and the run ends `interrupted`. Completed changes stay in place.
    public mutating func drain(now: Date) -> [Effect] {
        guard case .running = lifecycle else { return [] }
        lifecycle = .stopping(.interrupted(keepChanges: true))
        var effects: [Effect] = []
        for s in runbook.steps where states[s.id] == .awaitingConfirmation {
            effects += skip(s, because: .shuttingDown, now: now)
        }
        effects += closeAllGates(because: .shuttingDown, now: now)
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
        return stopRunningSteps(.recordFailed, now: now) + advance(now: now)
    }

    /// A second Ctrl-C: the run ends now, `interrupted`, whatever is still running or being undone.
    /// The final event lists every change left in place.
    public mutating func abandon(now: Date, reason: AbandonReason = .interruptedTwice) -> [Effect] {
        guard finishedOutcome == nil else { return [] }
        var effects: [Effect] = []
        let undo = undoProgress
        if let undo { effects.append(.endUndo(index: undo.index)) }
        for s in runbook.steps {
            if case .running = states[s.id] { effects.append(.cancelAttempt(step: s.id)) }
            if case .retryWait = states[s.id] { effects.append(.cancelRetry(step: s.id)) }
        }
        effects += closeAllGates(because: .abandoned(reason), now: now)
        lifecycle = .stopping(.interrupted(keepChanges: false))
        return effects + end(now: now, abandoned: reason)
    }

    /// Ends every running attempt and open confirmation as `failed` (stopped because `why`), cancelling the work.
    mutating func stopRunningSteps(_ why: StepStop, now: Date, except kept: Set<String> = []) -> [Effect] {
        var effects: [Effect] = closeAllGates(because: .stopped(why), now: now)
        for s in runbook.steps where !kept.contains(s.id) {
            switch states[s.id] {
            case .running, .awaitingConfirmation:
                effects += markDone(s.id, .failed)
                effects.append(.cancelAttempt(step: s.id))
                var e = event("step.finished", now, step: s)
                e.status = StepStatus.failed.rawValue
                if let t = firstStarted[s.id] { e.durationMs = Self.ms(now.timeIntervalSince(t)) }
                effects.append(.emitNote(e, .stepStopped(why)))
            default: break
            }
        }
        return effects
    }

    /// Changes made and not among `undone`.
    func changesLeftInPlace(undone: Set<Int>) -> [ChangeNote] {
        changes.enumerated().filter { !undone.contains($0.offset) }.map { changeNote($0.element) }
    }

    func changeNote(_ c: (step: String, change: AppliedChange)) -> ChangeNote {
        ChangeNote(summary: c.change.summary, undoable: isUndoable(c))
    }

    func isUndoable(_ c: (step: String, change: AppliedChange)) -> Bool {
        c.change.automaticUndo != nil || runbook.step(c.step)?.undo != nil
    }

    mutating func continueUndo(now: Date) -> [Effect] {
        guard let undo = undoProgress else { return [] }
        let index = undo.index
        guard index < undo.plan.count else { return end(now: now) }
        let planned = undo.plan[index]
        var e = event("undo.started", now, step: runbook.step(planned.step))
        e.what = planned.change.what
        e.from = planned.change.to
        e.to = planned.change.from
        e.target = planned.change.target
        return [.emitNote(e, .undoStarted(planned.change.summary)), .startUndo(index: index, change: planned.change, step: planned.step, values: values)]
    }

    /// Ends the run: `run.finished` with its outcome and what was undone and left in place.
    mutating func end(now: Date, outcome explicit: RunOutcome? = nil, abandoned: AbandonReason? = nil) -> [Effect] {
        guard finishedOutcome == nil else { return [] }
        let undoFailures = undoRecord.failures, undone = undoRecord.undone
        let outcome: RunOutcome
        if let explicit {
            outcome = explicit
        } else {
            switch stop {
            case .failed, .recordFailed: outcome = .failed
            case .declined, .notApproved: outcome = .refused
            case .interrupted, .cutOff: outcome = .interrupted
            case .aborted: outcome = .aborted
            case nil: outcome = changes.isEmpty ? .completed : options.dryRun ? .wouldMitigate : .mitigated
            }
        }
        let ending = RunEnding(stop: explicit == nil ? stop : nil, abandoned: abandoned, undoIncomplete: undoFailures > 0, undone: undone.count,
                               leftInPlace: stop != nil || undoFailures > 0 ? changesLeftInPlace(undone: undone) : [])
        let final: RunOutcome = undoFailures > 0 && outcome != .interrupted && outcome != .aborted ? .failed : outcome
        lifecycle = .finished(final)
        var effects: [Effect] = []
        if alarms.running {
            alarms.running = false
            effects.append(.stopAlarms)
        }
        var e = event("run.finished", now)
        e.outcome = final.rawValue
        e.durationMs = Self.ms(now.timeIntervalSince(startedAt ?? now))
        effects.append(.emitNote(e, .runFinished(ending)))
        // Places still held (an abandoned run's change steps in flight) are given back.
        effects += breaker.held.sorted().map { .releaseBreakerPlace(step: $0) }
        breaker.held.removeAll()
        return effects + [.finished(final)]
    }
}
