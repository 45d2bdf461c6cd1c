import Foundation
import RunbookCore

/// Something a run holds while it lives: its ownership lease. Released when the run ends; the SQLite
/// store's is a file lock the kernel drops when the process dies, PostgreSQL's a lease row that
/// expires when the owner stops renewing it.
public protocol RunHold: Sendable {
    /// Gives it up (the run is over, or left paused for the next server).
    func release()
    /// Whether admission already wrote the run's `run.started` (`AdmissionRequest.startLine`).
    var startRecorded: Bool { get }
}

extension RunHold {
    public var startRecorded: Bool { false }
}

/// Where a run's timeline is appended: a JSON Lines file (SQLite store) or the events table (PostgreSQL).
public protocol DurableTimeline: TimelineSink {
    /// Appends one event, or throws where and why it could not.
    func write(_ event: TimelineEvent) throws
    /// Appends events in order, all or none where the store can (one transaction or statement).
    func write(_ events: [TimelineEvent]) throws
    /// Whether appending `run.finished` also closes the run's row with its outcome, in the same
    /// statement (PostgreSQL), so that nobody closes it again (`HistorySink`).
    var closesRowAtRunFinished: Bool { get }
}

extension DurableTimeline {
    public var closesRowAtRunFinished: Bool { false }
}

extension DurableTimeline {
    public func write(_ events: [TimelineEvent]) throws {
        for e in events { try write(e) }
    }
}

/// Run history, timelines, guards, gates and ownership: SQLite in the state folder (one machine),
/// or PostgreSQL (replicas, SPEC §6.8). The server and the CLI use only this.
///
/// Both stores give each question one meaning (the conformance suite in Tests/RunbookStoreTests
/// proves it on both):
/// - a `lock` is held by an open run with that key (live, paused or with a dead owner not yet
///   finalised), never by a file or a process;
/// - a dead owner's own `run.finished` is adopted when its run is finalised or taken over, never
///   doubled;
/// - a paused run is resumed while its gate's deadline is ahead; one whose deadline passed while no
///   server held it is ended `interrupted`, whatever its `on_timeout`.
///
/// Every method blocks its caller: call it from a Dispatch queue or a thread, or from async code
/// through `StoreThreads.run` (debug builds check this).
public protocol RunDatabase: AnyObject, Sendable, CancelRequests, RunListing {
    /// Where it is, for messages: a folder, or a PostgreSQL URL without its password.
    var location: String { get }
    /// Writes a row as it is (drills record themselves this way).
    func insert(_ record: RunRecord) throws

    /// Decides and records runs in one transaction: dedupe, guards, each admitted run's row and hold.
    /// A payload of N requests costs a constant number of queries per guard kind.
    func admitAll(_ requests: [AdmissionRequest], now: Date) throws -> [AdmissionDecision]
    /// The timeline a run appends to; write failures go to `health`.
    func timelineSink(runID: String, health: RecordHealth?) throws -> any DurableTimeline
    /// A run's events, and the line numbers of damaged ones (files only).
    func timelineReport(_ runID: String) -> (events: [TimelineEvent], damagedLines: [Int])
    /// Closes a run's row with its outcome.
    func finish(runID: String, outcome: RunOutcome, durationMs: Int) throws
    /// Records that a run applied a change (for the change breaker): one of the run's reserved
    /// places becomes the change, or, with none reserved, a change is added.
    func recordChange(runID: String, at: Date) throws
    /// Changes applied and places reserved by any run since `since`.
    func changesApplied(since: Date) throws -> Int
    /// Reserves a place for one change of `runID` in the breaker's window (`cap` changes per `per`
    /// seconds), in one transaction with the count and serialised across every process on the
    /// store (SQLite `BEGIN IMMEDIATE`, PostgreSQL an advisory lock): a reserved place counts as
    /// a change until `recordChange` makes it one or `releaseChange` gives it back.
    func reserveChange(runID: String, cap: Int, per: Double, now: Date) throws -> ChangeReservation
    /// Gives back one place `runID` reserved and did not use (its change was not applied).
    func releaseChange(runID: String) throws
    /// Runs, newest first.
    func runs(limit: Int) throws -> [RunRecord]
    /// Runs of the given kinds, newest first (`runbook history --kind`).
    func runs(limit: Int, kinds: Set<RunKind>) throws -> [RunRecord]
    /// One run's row, or nil.
    func run(_ id: String) throws -> RunRecord?
    /// `last`, a whole id, or a unique prefix (SPEC §6.6).
    func resolveRunID(_ text: String) throws -> String
    /// Marks the runs of an alert resolved; returns their ids.
    func resolve(fingerprint: String, at: Date) throws -> [String]
    /// Ends runs whose owner is gone and that nobody will resume; returns their ids. A run whose own
    /// `run.finished` is written gets that outcome (adopted); the others one `run.finished interrupted`.
    func finalizeDeadRuns(now: Date) throws -> [String]
    /// Writes how a run whose owner is gone ends (`RunEndings.closing`), once: its row while it is
    /// open, the interrupted event when there is one, its gates closed.
    func close(_ runID: String, _ closing: RunEndings.Closing) throws
    /// Takes the paused runs a server should resume: open, waiting at a resumable gate whose deadline
    /// is ahead, their owner gone. Each comes with its lease; its lock key stays held by its open row.
    func takePausedRuns(now: Date) throws -> [(runID: String, lease: any RunHold)]

    /// Records that a gate is open (or finds it open from before a restart, keeping its deadline).
    func openGate(runID: String, gate: GateRequest, startedBy: String?, resumable: Bool, now: Date) throws
    /// Closes a gate: `approved`, `declined` or `closed`.
    func closeGate(runID: String, gate: String, status: String) throws
    /// The answers recorded at a gate, oldest first.
    func answers(runID: String, gate: String) throws -> [ApprovalRecord]
    /// Gate ids open for a run.
    func openGates(runID: String) throws -> [String]
    /// Runs waiting for approval now, for `/runs`.
    func runsAwaitingApproval() throws -> Set<String>
    /// Answers every undecided gate of `runID` as `name`, in one transaction (`ApprovalRules`): the
    /// answer that reaches the count, a denial, or `now` at or past the stored deadline decides a
    /// gate, once.
    /// - Throws: `ApprovalError` when the answer is not taken, `StoreError` when the store fails.
    func answer(runID: String, approve: Bool, by name: String, via: String, now: Date) throws -> ApprovalReceipt
    /// The gate's deadline came on its run's clock: in one transaction, decides it timed out unless
    /// it was decided before (or its stored deadline is after `now`: nil). Returns the answers
    /// taken, in order, and whether the deadline decided.
    func decideDeadline(runID: String, gate: String, now: Date) throws -> GateState?

    /// The timeline a run's owner appends to: each write is conditional on the owner's epoch and
    /// throws `FencedError` once another owner holds the run (`Fencing.swift`).
    func timelineSink(fence: RunFence, health: RecordHealth?) throws -> any DurableTimeline
    /// Closes a run's row with its outcome, if `fence` still owns it.
    /// - Throws: `FencedError` when another owner holds the run (nothing is written).
    func finish(_ fence: RunFence, outcome: RunOutcome, durationMs: Int) throws
    /// A run's ownership epoch now (1 when admitted, one more on each takeover); nil for no such run.
    func epoch(of runID: String) throws -> Int64?
}

/// A database several processes share, where each open run has an owner renewing a lease: another
/// process takes over a run whose owner stopped renewing (SPEC §6.8).
public protocol ReplicatedRunDatabase: RunDatabase {
    /// This process, as recorded as a run's owner.
    var owner: String { get }
    /// Claims open runs whose lease expired, each with its previous owner and the new lease.
    func claimExpiredRuns(limit: Int) throws -> [(runID: String, previousOwner: String?, lease: any RunHold)]
    /// The rows and timelines of runs just claimed, read together: a takeover of a dead replica's
    /// hundreds of runs reads them in two statements, not two per run. Runs with no row are left out.
    func takeoverReads(_ runIDs: [String]) throws -> [String: (record: RunRecord, events: [TimelineEvent])]
    /// Appends one event to each of many runs' timelines (a takeover's notes) together, each only
    /// while its fence still owns its run. Returns the runs whose event was written.
    func appendNotes(_ notes: [(fence: RunFence, event: TimelineEvent)]) throws -> Set<String>
    /// Called with runs this process held whose lease another process took meanwhile.
    var onLost: (@Sendable ([String]) -> Void)? { get set }
    /// Median and worst recent query latency, in seconds.
    var latency: (p50: Double, max: Double)? { get }
    /// Renews the lease of every run this process holds, conditional on each run's epoch; runs
    /// another process took are reported to `onLost`. Blocks until the database answers.
    func renewLeases()
    /// Gives up every lease not confirmed within the margin (`LeaseTiming`) before it could expire:
    /// the run is reported to `onLost` and its writes are fenced from then on, so a takeover never
    /// overlaps a live owner. Never waits for the database.
    func giveUpLapsedLeases()
    /// True while the store renews its leases on timers of its own (the CLI); a host that runs
    /// `renewLeases` and `giveUpLapsedLeases` itself (the server's `LeaseService`) sets it false.
    var renewsOnItsOwn: Bool { get set }
}

extension RunDatabase {
    /// Stores with no owners to fence (test doubles): the plain timeline.
    public func timelineSink(fence: RunFence, health: RecordHealth?) throws -> any DurableTimeline {
        try timelineSink(runID: fence.runID, health: health)
    }

    /// Stores with no owners to fence (test doubles): the plain finish.
    public func finish(_ fence: RunFence, outcome: RunOutcome, durationMs: Int) throws {
        try finish(runID: fence.runID, outcome: outcome, durationMs: durationMs)
    }

    /// Stores with no owners to fence (test doubles): every run is at its first epoch.
    public func epoch(of runID: String) throws -> Int64? { try run(runID) == nil ? nil : 1 }

    /// A run's events (damaged lines skipped).
    public func timeline(_ runID: String) -> [TimelineEvent] { timelineReport(runID).events }

    /// Ends an open run `interrupted` with `message`, unless its own `run.finished` is already
    /// written (then that outcome is adopted).
    public func finalize(runID: String, started: Date, message: String, now: Date) throws {
        try close(runID, RunEndings.closing(runID: runID, started: started, message: message, events: timeline(runID), now: now))
    }

    /// Ends a run whose owner is gone and that nobody resumes: its own end adopted when written;
    /// else interrupted, saying that its gate's deadline passed (`staleDeadline`) or where it was cut
    /// off (and `note`).
    public func closeAbandoned(_ r: RunRecord, staleDeadline: Date?, note: String = "", now: Date) throws {
        let events = timeline(r.id)
        // What is left of the dead owner's running commands dies before the record says what it left.
        RunLeftovers.kill(runID: r.id, events: events)
        let message = staleDeadline.map(RunEndings.staleGateMessage) ?? RunEndings.cutOffMessage(events) + note
        try close(r.id, RunEndings.closing(runID: r.id, started: r.started, message: message, events: events, now: now))
    }
}
