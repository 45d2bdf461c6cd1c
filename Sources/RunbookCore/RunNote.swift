import Foundation

/// What a timeline event of the state machine says, as typed values: the machine returns these
/// and `RunWording` words them, so the machine never builds a sentence or a CLI hint.
public enum RunNote: Sendable, Equatable {
    /// `approval.requested`: a gate opened (or opened again after a restart).
    case gateOpened(GateNotice)
    /// `run.finished`: why it ended, what was undone and what is left in place.
    case runFinished(RunEnding)
    /// `step.finished` (`skipped`): why the step did not run.
    case stepSkipped(SkipReason)
    /// `step.finished` (`failed`): the step was stopped while it ran or waited for its prompt.
    case stepStopped(StepStop)
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
    /// The run was abandoned, for this reason (the caller's words).
    case abandoned(String)
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
    public var abandoned: String?
    /// An undo failed, timed out or was abandoned.
    public var undoIncomplete: Bool
    /// Changes undone.
    public var undone: Int
    /// Changes left in place, as `summary (not undoable)` texts (listed once the run stopped).
    public var leftInPlace: [String]

    public init(stop: RunStateMachine.Stop?, abandoned: String?, undoIncomplete: Bool, undone: Int, leftInPlace: [String]) {
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
    public var reasons: [String]
    public var deadline: Date
    /// What happens at the deadline: proceed (`on_timeout: proceed`) or decline.
    public var proceedsOnTimeout: Bool
    /// The changes it would let through, templates rendered.
    public var changes: [String]
    /// Opened before a restart: the run still waits.
    public var resumed: Bool
    /// Who approved so far (before a restart).
    public var approvedSoFar: [String]

    public init(runID: String, approvals: Int, reasons: [String], deadline: Date, proceedsOnTimeout: Bool, changes: [String],
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
