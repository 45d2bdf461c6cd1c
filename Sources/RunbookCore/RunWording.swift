import Foundation

/// The run's wording: the sentences and CLI hints of the timeline events the state machine
/// describes as `RunNote`s, and of the approvals channel's message. The driver (and anything
/// that reads effects) words them here; the machine never does.
public enum RunWording {
    /// The message of an event the machine described as `note` (nil: the event has none).
    public static func message(_ note: RunNote) -> String? {
        switch note {
        case .runFinished(let ending):
            return finished(ending)
        case .stepSkipped(let reason):
            return skipped(reason)
        case .stepStopped(let why):
            return stopped(why)
        case .gateOpened(let g):
            let n = g.approvals
            var text = "\(g.resumed ? "still " : "")waiting for \(n) approval\(n == 1 ? "" : "s") (\(reasons(g.reasons))) until "
                + "\(TimelineEvent.timestamp(g.deadline)), then \(g.proceedsOnTimeout ? "proceeds" : "declines"): "
                + planned(g.changes)
                + "; answer with: runbook approve \(g.runID) [--deny] (as yourself), or POST /runs/\(g.runID)/approve"
            if !g.approvedSoFar.isEmpty { text += " (approved so far by \(g.approvedSoFar.joined(separator: ", ")))" }
            return text
        case .gateApproved(let by, let count, let needed):
            return "approved by \(by) (\(count) of \(needed))"
        case .gateDenied(let by):
            return "denied by \(by)"
        case .gateTimedOut(let after, let count, let needed, let proceeds):
            return "no \(needed == 1 ? "approval" : "\(needed) approvals") within \(Quantity.formatDuration(after)) (\(count) of \(needed)): "
                + (proceeds ? "proceeding (on_timeout: proceed)" : "declined")
        case .breakerRefused(let refusal, let step):
            return refusal + "; the runbook has no approval path, so the run stops before \(step)"
        case .alarmFired(let id, let why):
            return "alarm \(id) \(alarm(why))"
        case .cancelled(let by, let undo):
            return "cancelled by \(by)" + (undo ? "" : " (completed changes left in place)")
        case .changeApplied(let change):
            return self.change(change)
        case .undoStarted(let change):
            return "undo \(change)"
        case .undone(let change, let said):
            return said.isEmpty ? "undid \(change)" : said
        case .undoFailed(let change, let why):
            return undoFailed(change, why)
        case .confirmationDeclined:
            return "confirmation declined"
        case .stepNotApproved(let why):
            return "not approved: \(declined(why))"
        case .changeRecordedBeforeTakeover:
            return "its change was recorded before its owner stopped"
        case .changeFoundAfterTakeover(let change):
            return "checked after a takeover: \(change) is in place"
        case .cutOffMidChange(let why):
            return "its process died mid-change and \(why ?? "it cannot be read back"): whether it ran is unknown, so the run stops here"
        }
    }

    /// Why a gate declined.
    static func declined(_ why: GateDecline) -> String {
        switch why {
        case .denied(let by): "denied by \(by)"
        case .timedOut(let after): "no approval within \(Quantity.formatDuration(after))"
        case .refused(let refusal): refusal
        }
    }

    /// Why a run's changes (or a step) wait at a gate, `; `-separated.
    static func reasons(_ reasons: [GateReason]) -> String {
        reasons.map { r in
            switch r {
            case .confirm: "confirm"
            case .openedBeforeRestart: "opened before the restart"
            case .given(let text): text
            }
        }.joined(separator: "; ")
    }

    /// Why an alarm fired, after its id.
    static func alarm(_ why: AlarmCause) -> String {
        switch why {
        case .fired(let said): "fired: \(said)"
        case .unevaluable(let times, let said): "could not be evaluated \(times) times running (fail closed): \(said)"
        }
    }

    /// Why an abandoned run ended.
    static func abandoned(_ why: AbandonReason) -> String {
        switch why {
        case .interruptedTwice: "interrupted twice: exited without finishing"
        case .gracePeriodEnded(let grace): "server shut down: the \(Quantity.formatDuration(grace)) grace period ended"
        }
    }

    /// A change on the stack: its summary, marked when it cannot be undone.
    static func change(_ c: ChangeNote) -> String {
        c.summary + (c.undoable ? "" : " (not undoable)")
    }

    /// Why an undo left `change` in place.
    static func undoFailed(_ change: String, _ why: UndoFailure) -> String {
        switch why {
        case .failed(let said): "undo of \(change) failed: \(said); it is left in place"
        case .timedOut(let after): "undo of \(change) failed: timed out after \(Quantity.formatDuration(after)); it is left in place"
        case .ownerStopped: "its owner stopped during this undo: whether \(change) was undone is unknown, so it is not undone again; check it"
        }
    }

    /// A gate's name: `changes` for the run's own gates, else `step ID`.
    static func gate(_ id: String) -> String { RunStateMachine.isRunGate(id) ? "changes" : "step \(id)" }

    /// What an `across:` step's planner is told when alarm `alarm` fired: it starts no new host.
    public static func fleetHalted(alarm: String) -> String {
        "alarm \(alarm) fired: no new host started"
    }

    /// `run.finished`'s message: why, then what was undone and what is left in place.
    static func finished(_ ending: RunEnding) -> String? {
        var parts: [String] = []
        switch ending.stop {
        case .failed(let s): parts.append("\(s) failed")
        case .declined(let s): parts.append("\(s) was declined")
        case .interrupted: parts.append(ending.abandoned.map(abandoned) ?? "interrupted")
        case .recordFailed(let why): parts.append("the run could not be recorded: \(why)")
        case .aborted(let id, let why): parts.append("aborted: alarm \(id) \(alarm(why))")
        case .notApproved(let gate, let why): parts.append("\(self.gate(gate)) not approved: \(declined(why))")
        case .cutOff(let s): parts.append("taken over after its owner died while \(s) was changing things; stopped at \(s)")
        case nil: break
        }
        if ending.undoIncomplete { parts.append("undo incomplete") }
        else if ending.undone > 0 { parts.append("\(ending.undone) change\(ending.undone == 1 ? "" : "s") undone") }
        if !ending.leftInPlace.isEmpty { parts.append("left in place: " + ending.leftInPlace.map(change).joined(separator: "; ")) }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }

    /// Why a step was skipped.
    static func skipped(_ reason: SkipReason) -> String {
        switch reason {
        case .runStopped(let stop):
            switch stop {
            case .failed(let s): "run stopped: \(s) failed"
            case .declined(let s): "run stopped: \(s) was declined"
            case .interrupted: "run interrupted"
            case .recordFailed: "run stopped: it could not be recorded"
            case .aborted(let id, _): "run aborted by alarm \(id)"
            case .notApproved(let gate, let why): "run stopped: \(self.gate(gate)) not approved (\(declined(why)))"
            case .cutOff(let s): "run stopped: \(s) was cut off mid-change"
            }
        case .whenFalse(let condition): "when \(condition) is false"
        case .needs(let step, let status): "needs \(step), which \(status?.rawValue ?? "did not run")"
        case .wouldVerify: "would verify after the changes"
        case .detectEnded(let inconclusive): inconclusive ? "detect inconclusive: a check could not measure" : "symptom not confirmed"
        case .runIsStopping: "run is stopping"
        case .shuttingDown: "server shutting down"
        case .stopped(let why): stopped(why)
        case .abandoned(let reason): abandoned(reason)
        }
    }

    /// Why a running step was stopped.
    static func stopped(_ why: StepStop) -> String {
        switch why {
        case .interrupt: "stopped by interrupt"
        case .recordFailed: "stopped: the run could not be recorded"
        case .alarm(let id): "stopped: alarm \(id) fired"
        }
    }

    /// `event` with its message worded from `note`.
    public static func worded(_ event: TimelineEvent, _ note: RunNote) -> TimelineEvent {
        var e = event
        e.message = message(note)
        return e
    }

    /// What `approvals_channel` is told when run `runID` of `runbook` pauses at `request`: the
    /// planned changes and how to answer.
    public static func approvalsChannel(runbook: String, runID: String, _ request: GateRequest) -> String {
        let n = request.gate.approvals
        return "runbook \(runbook) run \(runID) waits for \(n) approval\(n == 1 ? "" : "s") (\(reasons(request.reasons))): "
            + planned(request.changes)
            + ". Approve: POST /runs/\(runID)/approve, deny: POST /runs/\(runID)/deny, or runbook approve \(runID) [--deny] (as yourself)."
            + " Times out at \(TimelineEvent.timestamp(request.deadline)) (then \(request.gate.onTimeout == .proceed ? "proceeds" : "declines"))."
    }

    static func planned(_ changes: [String]) -> String {
        changes.isEmpty ? "no change planned" : changes.joined(separator: "; ")
    }
}

extension RunStateMachine.Effect {
    /// The timeline event this effect records, worded; nil when it records none.
    public var recordedEvent: TimelineEvent? {
        switch self {
        case .emit(let e): e
        case .emitNote(let e, let note): RunWording.worded(e, note)
        default: nil
        }
    }
}
