import Foundation

/// What a run's changes depend on outside the run, asked by the driver when the state machine
/// says so (`askChangeReasons`, `reserveBreakerPlace`, `releaseBreakerPlace`) and fed back to it as
/// events: the machine itself never queries the world.
///
/// The driver calls these on the run's serial Dispatch queue, never from a task: a server's
/// answers come from its store, whose blocking bridge must not park a thread of Swift's pool.
public protocol ChangeFacts: Sendable {
    /// Why the run's changes must wait for approval at `now` (`guards.auto: ask`, a freeze
    /// window); empty: they need not.
    func reasonsBeforeChanges(now: Date) -> [String]

    /// Reserves one place in the change breaker's window (atomically, so that no two runs take the
    /// last place). Returns nil when reserved, else why the change would pass the cap.
    func reserveChange(now: Date) -> String?

    /// Gives back one place `reserveChange` reserved, for a change that was not applied.
    func releaseChange()
}

/// No reason to wait and no breaker: every change may go on.
public struct NoChangeFacts: ChangeFacts {
    public init() {}
    public func reasonsBeforeChanges(now: Date) -> [String] { [] }
    public func reserveChange(now: Date) -> String? { nil }
    public func releaseChange() {}
}
