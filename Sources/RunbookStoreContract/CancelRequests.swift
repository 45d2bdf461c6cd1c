import Foundation

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
