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
            var text = "\(g.resumed ? "still " : "")waiting for \(n) approval\(n == 1 ? "" : "s") (\(g.reasons.joined(separator: "; "))) until "
                + "\(TimelineEvent.timestamp(g.deadline)), then \(g.proceedsOnTimeout ? "proceeds" : "declines"): "
                + planned(g.changes)
                + "; answer with: runbook approve \(g.runID) [--deny] (as yourself), or POST /runs/\(g.runID)/approve"
            if !g.approvedSoFar.isEmpty { text += " (approved so far by \(g.approvedSoFar.joined(separator: ", ")))" }
            return text
        }
    }

    /// `run.finished`'s message: why, then what was undone and what is left in place.
    static func finished(_ ending: RunEnding) -> String? {
        var parts: [String] = []
        switch ending.stop {
        case .failed(let s): parts.append("\(s) failed")
        case .declined(let s): parts.append("\(s) was declined")
        case .interrupted: parts.append(ending.abandoned ?? "interrupted")
        case .recordFailed(let why): parts.append("the run could not be recorded: \(why)")
        case .aborted(let id, let why): parts.append("aborted: alarm \(id) \(why)")
        case .notApproved(let gate, let why): parts.append("\(RunStateMachine.gateName(gate)) not approved: \(why)")
        case .cutOff(let s): parts.append("taken over after its owner died while \(s) was changing things; stopped at \(s)")
        case nil: break
        }
        if ending.undoIncomplete { parts.append("undo incomplete") }
        else if ending.undone > 0 { parts.append("\(ending.undone) change\(ending.undone == 1 ? "" : "s") undone") }
        if !ending.leftInPlace.isEmpty { parts.append("left in place: " + ending.leftInPlace.joined(separator: "; ")) }
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
            case .notApproved(let gate, let why): "run stopped: \(RunStateMachine.gateName(gate)) not approved (\(why))"
            case .cutOff(let s): "run stopped: \(s) was cut off mid-change"
            }
        case .whenFalse(let condition): "when \(condition) is false"
        case .needs(let step, let status): "needs \(step), which \(status?.rawValue ?? "did not run")"
        case .wouldVerify: "would verify after the changes"
        case .detectEnded(let inconclusive): inconclusive ? "detect inconclusive: a check could not measure" : "symptom not confirmed"
        case .runIsStopping: "run is stopping"
        case .shuttingDown: "server shutting down"
        case .stopped(let why): stopped(why)
        case .abandoned(let reason): reason
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
        return "runbook \(runbook) run \(runID) waits for \(n) approval\(n == 1 ? "" : "s") (\(request.reasons.joined(separator: "; "))): "
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
