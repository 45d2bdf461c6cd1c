import Foundation
import RunbookCore

/// Someone asked for a run to be cancelled (`runbook cancel`, `POST /runs/ID/cancel` on a replica that
/// does not own the run): the owner polls for these and stops the run as Ctrl-C does.
public struct CancelRequest: Sendable, Equatable {
    /// Who asked (a token's or a user's name), recorded as `by` on `run.cancelled`.
    public var by: String
    /// Whether completed changes are undone (the default) or left in place.
    public var undo: Bool

    public init(by: String, undo: Bool) {
        self.by = by
        self.undo = undo
    }
}

/// Where cancel requests wait for a run's owner: a flag file beside the run's timeline (SQLite
/// store), a row of `cancel_requests` (PostgreSQL). The owner looks for its runs' requests about
/// twice a second, so a run in another process stops within a second.
public protocol CancelRequests: Sendable {
    /// Leaves a request for the run's owner (a later request replaces an earlier one).
    func requestCancel(runID: String, _ request: CancelRequest) throws
    /// The requests waiting for any of `runIDs` (one query, whatever their number).
    func pendingCancels(among runIDs: [String]) throws -> [String: CancelRequest]
    /// Removes a run's request once it is acted on.
    func clearCancelRequest(runID: String) throws
}

/// How a cancel request a caller left for a run's owner stands, from what the store shows.
public enum CancelProgress: Equatable, Sendable {
    /// The owner recorded `run.cancelled` with the caller's name.
    case taken
    /// The run ended without taking it.
    case finishedFirst
    /// Neither yet.
    case waiting

    /// Decides from the run's timeline and whether its row has an outcome. The row is read after
    /// the timeline, and a run writes `run.cancelled` before its end: when the row says the run
    /// ended, `reread` gives the timeline again, so a cancel taken between the two reads is seen.
    public static func of(_ events: [TimelineEvent], by: String, outcomeRecorded: () throws -> Bool,
                          reread: () -> [TimelineEvent]) rethrows -> CancelProgress {
        func taken(_ events: [TimelineEvent]) -> Bool { events.last(where: { $0.event == "run.cancelled" })?.by == by }
        if taken(events) { return .taken }
        guard try events.contains(where: { $0.event == "run.finished" }) || outcomeRecorded() else { return .waiting }
        return taken(reread()) ? .taken : .finishedFirst
    }
}
