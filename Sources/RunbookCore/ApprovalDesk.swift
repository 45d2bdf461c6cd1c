import Dispatch
import Foundation

/// One answer recorded at a gate.
public struct ApprovalRecord: Sendable, Equatable {
    public var name: String
    public var approve: Bool
    public var at: Date

    public init(name: String, approve: Bool, at: Date) {
        self.name = name
        self.approve = approve
        self.at = at
    }
}

/// Where a run's gates are recorded and answered: the store (the server and `runbook run`), or a
/// drill's scripted approvers.
public protocol ApprovalDesk: Sendable {
    /// Records that gate `gate.id` of `runID` is open, so that `runbook approve` and the server can answer it.
    /// - Throws: when it cannot be recorded; the run then stops (fail closed).
    func open(runID: String, gate: GateRequest) throws
    /// Calls `answers` (from any thread) with every answer recorded at the gate, first at once and
    /// then whenever there are new ones, until the handle is cancelled.
    func watch(runID: String, gate: String, answers: @escaping @Sendable ([ApprovalRecord]) -> Void) -> any Cancellable
    /// The gate is closed (`approved`, `declined`, or `closed` because the run stopped): answers are refused from now on.
    func close(runID: String, gate: String, status: String)
    /// The gate's deadline came on the run's clock. Where the desk decides gates (the store), it
    /// decides this one timed out unless an answer decided it first, and says which: the answers
    /// taken, in order, and whether the deadline decided. Nil: by the desk's comparison the deadline
    /// is still ahead (ask again later).
    /// - Throws: when the decision cannot be read or written (the run then stops, fail closed).
    func deadlinePassed(runID: String, gate: String, now: Date) throws -> GateState?
}

extension ApprovalDesk {
    /// A desk that does not decide gates: the deadline decides on the run's clock.
    public func deadlinePassed(runID: String, gate: String, now: Date) throws -> GateState? {
        GateState(answers: [], timedOut: true)
    }
}

/// A gate as the desk decided it: every answer it took (in the order taken), and whether its
/// deadline decided it. Answers reaching the count or a denial decide it otherwise; fed in order
/// to the run, they reach the same decision the desk recorded.
public struct GateState: Sendable, Equatable {
    public var answers: [ApprovalRecord]
    public var timedOut: Bool

    public init(answers: [ApprovalRecord], timedOut: Bool) {
        self.answers = answers
        self.timedOut = timedOut
    }
}

/// A desk that only keeps time: gates time out (runs with no store, tests).
public struct NoApprovals: ApprovalDesk {
    public init() {}
    public func open(runID: String, gate: GateRequest) throws {}
    public func watch(runID: String, gate: String, answers: @escaping @Sendable ([ApprovalRecord]) -> Void) -> any Cancellable { NothingToCancel() }
    public func close(runID: String, gate: String, status: String) {}
}

/// Polls for answers on a Dispatch timer (no thread is held between polls) and reports when they change.
public final class ApprovalPoller: Cancellable, @unchecked Sendable {
    // `seen` is touched only on `queue`; `timer` is set once in init.
    private let queue = DispatchQueue(label: "runbook.approvals.poll")
    private var timer: (any DispatchSourceTimer)?
    private var seen: [ApprovalRecord]?

    /// Calls `read` every `interval` seconds and `answers` when what it reads changes.
    public init(interval: Double = 0.25, read: @escaping @Sendable () -> [ApprovalRecord]?, answers: @escaping @Sendable ([ApprovalRecord]) -> Void) {
        let t = DispatchSource.makeTimerSource(queue: queue)
        t.schedule(deadline: .now(), repeating: interval, leeway: .milliseconds(20))
        timer = t
        // The handler holds the poller until `cancel` clears it.
        t.setEventHandler { [self] in
            guard let now = read(), now != seen else { return }
            seen = now
            answers(now)
        }
        t.resume()
    }

    public func cancel() {
        queue.async {
            self.timer?.setEventHandler(handler: nil)
            self.timer?.cancel()
            self.timer = nil
        }
    }
}
