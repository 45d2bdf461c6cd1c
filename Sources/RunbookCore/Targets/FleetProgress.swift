import Foundation

/// One host of an `across:` step: the name ssh is given and the user, if the target set names one.
public struct FleetTarget: Sendable, Hashable {
    public var host: String
    public var user: String?

    public init(host: String, user: String? = nil) {
        self.host = host
        self.user = user
    }
}

/// A running `across:` step's handle: besides cancelling (hosts in flight are stopped), it can be
/// halted: no new host starts, the hosts in flight finish and report, then the step ends failed.
public protocol HaltableAttempt: Cancellable {
    /// Stops starting hosts; `why` is the step's message.
    func halt(_ why: String)
}

/// What an `across:` step reports while it runs: a per-host event for the timeline (`host.started`,
/// `host.finished`, `fleet.resolved`...), and, when a host's change is done, the change, so that
/// it is undone host by host even when the step is stopped halfway.
public struct FleetProgress: Sendable {
    /// The event's name and fields; the driver fills in the time, the run, the step and its phase.
    public var event: TimelineEvent
    /// A change made on `event.target`.
    public var change: AppliedChange?

    public init(event: TimelineEvent, change: AppliedChange? = nil) {
        self.event = event
        self.change = change
    }
}
