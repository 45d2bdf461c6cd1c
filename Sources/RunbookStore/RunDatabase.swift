import Foundation
import RunbookCore

/// Something a run holds while it lives: its ownership lease, its lock key. Released when the run
/// ends; the SQLite store's are file locks the kernel drops when the process dies, PostgreSQL's are
/// lease rows that expire when the owner stops renewing them.
public protocol RunHold: Sendable {
    /// Gives it up (the run is over).
    func release()
}

/// Where a run's timeline is appended: a JSON Lines file (SQLite store) or the events table (PostgreSQL).
public protocol DurableTimeline: TimelineSink {
    /// Appends one event, or throws where and why it could not.
    func write(_ event: TimelineEvent) throws
}

/// Run history, timelines, guards, gates and ownership: SQLite in the state folder (one machine),
/// or PostgreSQL (replicas, SPEC §6.8). The server and the CLI use only this.
public protocol RunDatabase: AnyObject, Sendable {
    /// Where it is, for messages: a folder, or a PostgreSQL URL without its password.
    var location: String { get }
    /// Writes a row as it is (drills record themselves this way).
    func insert(_ record: RunRecord) throws

    /// Decides and records runs in one transaction: dedupe, guards, each admitted run's row and hold.
    func admitAll(_ requests: [RunStore.AdmissionRequest], now: Date) throws -> [RunStore.AdmissionDecision]
    /// The timeline a run appends to; write failures go to `health`.
    func timelineSink(runID: String, health: RecordHealth?) throws -> any DurableTimeline
    /// A run's events, and the line numbers of damaged ones (files only).
    func timelineReport(_ runID: String) -> (events: [TimelineEvent], damagedLines: [Int])
    func finish(runID: String, outcome: RunOutcome, durationMs: Int) throws
    func recordChange(runID: String, at: Date) throws
    func changesApplied(since: Date) throws -> Int
    func runs(limit: Int) throws -> [RunRecord]
    func run(_ id: String) throws -> RunRecord?
    /// `last`, a whole id, or a unique prefix (SPEC §6.6).
    func resolveRunID(_ text: String) throws -> String
    /// Marks the runs of an alert resolved; returns their ids.
    func resolve(fingerprint: String, at: Date) throws -> [String]
    /// Ends runs whose owner is gone and that nobody will resume; returns their ids.
    func finalizeDeadRuns(now: Date) throws -> [String]
    /// Ends an open run `interrupted` with `message`.
    func finalize(runID: String, started: Date, message: String, now: Date) throws

    func openGate(runID: String, gate: GateRequest, startedBy: String?, resumable: Bool, now: Date) throws
    func closeGate(runID: String, gate: String, status: String) throws
    func answers(runID: String, gate: String) throws -> [ApprovalRecord]
    func openGates(runID: String) throws -> [String]
    func runsAwaitingApproval() throws -> Set<String>
    func answer(runID: String, approve: Bool, by name: String, via: String, now: Date) throws -> ApprovalReceipt
}

/// A database several processes share, where each open run has an owner renewing a lease: another
/// process takes over a run whose owner stopped renewing (SPEC §6.8).
public protocol ReplicatedRunDatabase: RunDatabase {
    /// This process, as recorded as a run's owner.
    var owner: String { get }
    /// Claims open runs whose lease expired, each with its previous owner and the new lease.
    func claimExpiredRuns(limit: Int) throws -> [(runID: String, previousOwner: String?, lease: any RunHold)]
    /// Called with runs this process held whose lease another process took meanwhile.
    var onLost: (@Sendable ([String]) -> Void)? { get set }
    /// Median and worst recent query latency, in seconds.
    var latency: (p50: Double, max: Double)? { get }
}

extension RunDatabase {
    public func timeline(_ runID: String) -> [TimelineEvent] { timelineReport(runID).events }
}

extension RunLease: RunHold {
    public func release() { release(removing: true) }
}

extension RunLock: RunHold {}

extension TimelineFileSink: DurableTimeline {}

extension RunStore: RunDatabase {
    public var location: String { directory }

    public func timelineSink(runID: String, health: RecordHealth?) throws -> any DurableTimeline {
        try TimelineFileSink(path: timelinePath(runID), health: health)
    }
}
