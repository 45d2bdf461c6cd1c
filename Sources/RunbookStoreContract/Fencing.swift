import Foundation
import RunbookCore

/// A run's ownership as its owner holds it: the run and the epoch its writes are conditional on.
/// The epoch is 1 when the run is admitted and goes up by one on every takeover, so a write made
/// under an older epoch (an owner cut off from the database, still running) is refused.
public struct RunFence: Sendable, Hashable, CustomStringConvertible {
    public var runID: String
    public var epoch: Int64

    public init(runID: String, epoch: Int64) {
        self.runID = runID
        self.epoch = epoch
    }

    public var description: String { "\(runID)@\(epoch)" }
}

/// A write refused because the run belongs to another owner now (its epoch moved on), or because
/// this owner gave its lease up before it could expire. The writer must stop at once: start
/// nothing, apply no change, write nothing more.
public struct FencedError: Error, CustomStringConvertible, Sendable {
    /// The fence the refused write carried.
    public var fence: RunFence
    /// The run's epoch now, when known (nil: the run is gone, or this owner let its lease go).
    public var current: Int64?
    /// What was refused (`append to the timeline`, `finish`, `renew the lease`).
    public var operation: String

    public init(fence: RunFence, current: Int64?, operation: String) {
        self.fence = fence
        self.current = current
        self.operation = operation
    }

    public var description: String {
        let now = current.map { "it is at epoch \($0) now" } ?? "this owner gave its lease up"
        return "cannot \(operation) for run \(fence.runID): fenced (written under epoch \(fence.epoch); \(now)): another owner holds the run"
    }
}

extension RunHold {
    /// The fence this hold's run writes under; nil for holds that fence nothing (a lock key).
    public var fence: RunFence? { (self as? any FencedRunHold)?.currentFence }
}

/// A lease that carries the epoch of its run's ownership.
public protocol FencedRunHold: RunHold {
    /// The run and the epoch this owner writes under.
    var currentFence: RunFence { get }
}

/// Where a durable sink tells its run that a write was refused by the fence (`RecordHealth.reportFenced`),
/// and where any other failure goes (`report`).
extension RecordHealth {
    /// Reports `error`: a fenced write stops the run without a word, anything else fails it closed.
    public func report(_ error: any Error, location: String) {
        if let f = error as? FencedError { reportFenced(f.description) }
        else if let u = error as? StoreUnreachableError { reportUnreachable(u.description) }
        else { report("\(StoreError(path: location, error))") }
    }
}

/// How long a replicated run's lease lasts, how often its owner renews it, and how early an owner
/// that cannot renew gives it up. Giving up at `giveUpAfter` without a confirmed renewal leaves
/// `leaseSeconds - giveUpAfter` (4 s) before anyone may take the run: time for the owner's
/// running commands to get TERM and, 2 s later, KILL (`ChildWatcher.killGrace`).
public enum LeaseTiming {
    /// Seconds a lease lasts without renewal, on the database's clock.
    public static let leaseSeconds = 8.0
    /// Seconds between renewals.
    public static let renewEvery = 2.0
    /// Seconds after the last confirmed renewal was sent at which an owner gives its lease up.
    public static let giveUpAfter = 4.0
    /// Seconds between a server's looks for runs whose lease expired (a claim of none is one
    /// indexed query): a dead replica's runs go on at most this long after their leases expire.
    public static let takeoverScanEvery = 0.5
}
