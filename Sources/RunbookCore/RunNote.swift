import Foundation

/// What a timeline event of the state machine says, as typed values: the machine returns these
/// and `RunWording` words them, so the machine never builds a sentence or a CLI hint.
public enum RunNote: Sendable, Equatable {
    /// `approval.requested`: a gate opened (or opened again after a restart).
    case gateOpened(GateNotice)
    /// `approval.granted`: `by` approved, `count` of the `needed` approvals so far.
    case gateApproved(by: String, count: Int, needed: Int)
    /// `approval.denied`: `by` denied.
    case gateDenied(by: String)
    /// `approval.timed_out`: `count` of the `needed` approvals came within `after` seconds; the run
    /// proceeds (`on_timeout: proceed`) or the gate declines.
    case gateTimedOut(after: Double, count: Int, needed: Int, proceeds: Bool)
    /// `guard.refused` (the change breaker): its refusal (the breaker's words), and the change step the
    /// run stops before, as the runbook has no approval path.
    case breakerRefused(String, before: String)
    /// `alarm.fired`: alarm `id` and why.
    case alarmFired(id: String, AlarmCause)
    /// `run.cancelled`: who asked, and whether completed changes are undone.
    case cancelled(by: String, undo: Bool)
    /// `change.applied`: the change made.
    case changeApplied(ChangeNote)
    /// `undo.started`: the change (its summary) being undone.
    case undoStarted(String)
    /// `undo.finished`: the change (its summary) undone, and what the undo said (empty: nothing).
    case undone(String, message: String)
    /// `undo.failed`: the change (its summary) left in place, and why.
    case undoFailed(String, UndoFailure)
    /// `run.finished`: why it ended, what was undone and what is left in place.
    case runFinished(RunEnding)
    /// `step.finished` (`skipped`): why the step did not run.
    case stepSkipped(SkipReason)
    /// `step.finished` (`failed`): the step was stopped while it ran or waited for its prompt.
    case stepStopped(StepStop)
    /// `step.finished` (`declined`): a human declined the step's `confirm` prompt.
    case confirmationDeclined
    /// `step.finished` (`declined`): the step's approval gate declined.
    case stepNotApproved(GateDecline)
    /// `step.finished` (`passed`), on takeover: the step's change was on record before its owner stopped.
    case changeRecordedBeforeTakeover
    /// `step.finished` (`passed`), on takeover: the change (its summary) was read back, in place.
    case changeFoundAfterTakeover(String)
    /// `step.finished` (`failed`), on takeover: the change step's process died mid-change and whether
    /// it ran cannot be told, for this reason (the caller's words; nil: it cannot be read back).
    case cutOffMidChange(String?)
}

/// Why a gate declined (a run stopped `notApproved`).
public enum GateDecline: Sendable, Equatable {
    /// Someone denied it.
    case denied(by: String)
    /// No approval within its timeout (seconds), with `on_timeout: decline`.
    case timedOut(after: Double)
    /// The change breaker refused a change and the runbook has no approval path: its words.
    case refused(String)
}

/// Why a run's changes (or a step) wait at a gate.
public enum GateReason: Sendable, Equatable {
    /// The step's `confirm` map.
    case confirm
    /// The run's gate was open before a restart: it stays a gate, whatever holds now.
    case openedBeforeRestart
    /// Why the world says they wait (`guards.auto: ask`, a freeze window, the change breaker), in its words.
    case given(String)
}

/// Why an alarm fired.
public enum AlarmCause: Sendable, Equatable {
    /// Its condition held: the check's message.
    case fired(String)
    /// It could not be evaluated `times` times running (fail closed): the last check's message.
    case unevaluable(times: Int, String)
}

/// Why an undo left its change in place.
public enum UndoFailure: Sendable, Equatable {
    /// It failed: the undo's message.
    case failed(String)
    /// It ran past the undo timeout (seconds).
    case timedOut(after: Double)
    /// Its owner stopped while it ran (found on takeover): whether it happened is unknown, so it is
    /// not run again.
    case ownerStopped
}

/// Why a run was abandoned: it ends now, `interrupted`, whatever is still running or being undone.
public enum AbandonReason: Sendable, Equatable {
    /// A second interrupt.
    case interruptedTwice
    /// The server shut down and its grace period (seconds) ended.
    case gracePeriodEnded(Double)
}

/// A change on the run's change stack, as events tell it.
public struct ChangeNote: Sendable, Equatable {
    /// `ChangeText`'s summary of the change.
    public var summary: String
    /// Whether it can be undone (an automatic undo, or the step's `undo`).
    public var undoable: Bool

    public init(summary: String, undoable: Bool) {
        self.summary = summary
        self.undoable = undoable
    }
}

/// Why a step did not run.
public enum SkipReason: Sendable, Equatable {
    /// The run stopped before the step started.
    case runStopped(RunStateMachine.Stop)
    /// Its `when` (this expression) is false.
    case whenFalse(String)
    /// It needs `step`, which ended with `status` (nil: did not run).
    case needs(step: String, status: StepStatus?)
    /// A dry run does not verify.
    case wouldVerify
    /// Detect ended the run: a check could not measure (true) or the symptom was not confirmed.
    case detectEnded(inconclusive: Bool)
    /// Its confirmation came after the run began to stop.
    case runIsStopping
    /// The server is shutting down (`drain`).
    case shuttingDown
    /// A running step was stopped, and this step waited at its gate.
    case stopped(StepStop)
    /// The run was abandoned, for this reason.
    case abandoned(AbandonReason)
}

/// Why running steps were stopped.
public enum StepStop: Sendable, Equatable {
    case interrupt
    case recordFailed
    /// Alarm `id` fired.
    case alarm(String)
}

/// How a run ended, as `run.finished` tells it.
public struct RunEnding: Sendable, Equatable {
    /// Why it stopped; nil when it ran to its end (or detect ended it).
    public var stop: RunStateMachine.Stop?
    /// Why it was abandoned (a second interrupt, the end of a shutdown's grace period).
    public var abandoned: AbandonReason?
    /// An undo failed, timed out or was abandoned.
    public var undoIncomplete: Bool
    /// Changes undone.
    public var undone: Int
    /// Changes left in place (listed once the run stopped).
    public var leftInPlace: [ChangeNote]

    public init(stop: RunStateMachine.Stop?, abandoned: AbandonReason?, undoIncomplete: Bool, undone: Int, leftInPlace: [ChangeNote]) {
        self.stop = stop
        self.abandoned = abandoned
        self.undoIncomplete = undoIncomplete
        self.undone = undone
        self.leftInPlace = leftInPlace
    }
}

/// A gate the run waits at, as `approval.requested` tells it.
public struct GateNotice: Sendable, Equatable {
    public var runID: String
    /// Approvals needed.
    public var approvals: Int
    /// Why the run waits: `confirm`, `guards.auto: ask`, a freeze window, the change breaker.
    public var reasons: [GateReason]
    public var deadline: Date
    /// What happens at the deadline: proceed (`on_timeout: proceed`) or decline.
    public var proceedsOnTimeout: Bool
    /// The changes it would let through, templates rendered.
    public var changes: [String]
    /// Opened before a restart: the run still waits.
    public var resumed: Bool
    /// Who approved so far (before a restart).
    public var approvedSoFar: [String]

    public init(runID: String, approvals: Int, reasons: [GateReason], deadline: Date, proceedsOnTimeout: Bool, changes: [String],
                resumed: Bool, approvedSoFar: [String]) {
        self.runID = runID
        self.approvals = approvals
        self.reasons = reasons
        self.deadline = deadline
        self.proceedsOnTimeout = proceedsOnTimeout
        self.changes = changes
        self.resumed = resumed
        self.approvedSoFar = approvedSoFar
    }
}
