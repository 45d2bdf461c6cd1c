import Foundation
import RunbookCore
import RunbookStoreContract
import RunbookTestSupport
import Testing

/// Fenced leases, the same on both stores: a takeover moves the run's epoch on, and every write
/// the old owner makes under its epoch (events, its finish, a renewal) is refused and writes nothing.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct StoreFencingTests {
    /// The old owner, cut off while it still believes it owns the run, and the new owner's lease.
    struct TakenOver {
        var runID: String
        var old: any RunDatabase
        var oldFence: RunFence
        var new: any RunDatabase
        var newLease: any RunHold
    }

    /// Owner A admits a run that waits at a resumable gate; A is cut off without knowing it (SQLite:
    /// its file lease is gone; PostgreSQL: it stops renewing and its lease expires); owner B takes
    /// the run over.
    static func takeOver(_ db: StoreFixture) async throws -> TakenOver {
        let a = try await db.open()
        (a as? any ReplicatedRunDatabase)?.renewsOnItsOwn = false
        let rb = try Cases.runbook("fenced", guards: "{}")
        let admitted = try await Cases.admit(a, [Cases.request(rb)])
        let lease = try #require(admitted.first?.lease)
        let fence = try #require(lease.fence, "an admitted run's lease carries its fence")
        #expect(fence.epoch == 1)
        try await Cases.write(a, fence.runID, ["run.started", "approval.requested"])
        let gate = Cases.gate("changes", approvals: 1, deadline: Date().addingTimeInterval(3600))
        try await off { try a.openGate(runID: fence.runID, gate: gate, startedBy: nil, resumable: true, now: Date()) }
        try await db.cutOff(lease)
        let b = try await db.open()
        let taken = try await off { try b.takePausedRuns(now: Date()) }
        let mine = try #require(taken.first { $0.runID == fence.runID }, "the run was not taken over")
        return TakenOver(runID: fence.runID, old: a, oldFence: fence, new: b, newLease: mine.lease)
    }

    /// A takeover reads every claimed run's row and timeline together: the same rows and events, in
    /// order, as reading each run on its own; a run with no row is left out.
    @Test(arguments: StoreKind.available.filter { $0 == .postgres })
    func takeoverReadsAreEachRunsRowAndTimeline(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let store = try #require(try await db.open() as? any ReplicatedRunDatabase)
        let rb = try Cases.runbook("reads", guards: "{}")
        let admitted = try await Cases.admit(store, (0..<3).map { i in Cases.request(rb, fingerprint: "fp\(i)") })
        let ids = try admitted.map { try #require($0.lease?.fence?.runID) }
        for (i, id) in ids.enumerated() {
            try await Cases.write(store, id, ["run.started"] + Array(repeating: "step.started", count: i) + ["approval.requested"])
        }
        let read = try await off { try store.takeoverReads(ids.reversed() + ["no-such-run"]) }
        #expect(Set(read.keys) == Set(ids))
        for id in ids {
            let (one, events) = try await off { (try store.run(id), store.timeline(id)) }
            #expect(read[id]?.record.id == one?.id && read[id]?.record.fingerprint == one?.fingerprint)
            #expect(read[id]?.events.map(\.event) == events.map(\.event))
            #expect(read[id]?.events.map(\.time) == events.map(\.time))
        }
        #expect(read[ids[2]]?.events.map(\.event) == ["run.started", "step.started", "step.started", "approval.requested"])
    }

    /// A takeover's notes go in together, each only where its fence still owns the run: the cut-off
    /// owner's note is refused, the new owner's notes land on their own runs' timelines.
    @Test(arguments: StoreKind.available.filter { $0 == .postgres })
    func notesWrittenTogetherLandOnlyWhereTheirFenceOwnsTheRun(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let t = try await Self.takeOver(db)
        let old = try #require(t.old as? any ReplicatedRunDatabase)
        let new = try #require(t.new as? any ReplicatedRunDatabase)
        let other = try #require(try await Cases.admit(new, [Cases.request(try Cases.runbook("other", guards: "{}"))]).first?.lease?.fence)
        let newFence = try #require(t.newLease.fence)
        @Sendable func note(_ run: String, _ by: String) -> TimelineEvent {
            var e = TimelineEvent(time: Date(), run: run, event: "run.taken_over")
            e.to = by
            return e
        }
        let (oldFence, runID) = (t.oldFence, t.runID)
        let before = try await off { new.timeline(runID) }.count
        #expect(try await off { try old.appendNotes([(fence: oldFence, event: note(runID, "old"))]) }.isEmpty)
        let written = try await off { try new.appendNotes([(fence: newFence, event: note(runID, "new")), (fence: other, event: note(other.runID, "new"))]) }
        #expect(written == [runID, other.runID])
        let timeline = try await off { new.timeline(runID) }
        #expect(timeline.count == before + 1)
        #expect(timeline.last?.event == "run.taken_over" && timeline.last?.to == "new")
        #expect(try await off { new.timeline(other.runID) }.map(\.to) == ["new"])
    }

    @Test(arguments: StoreKind.available)
    func aTakeoverMovesTheEpochOn(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let t = try await Self.takeOver(db)
        #expect(t.newLease.fence == RunFence(runID: t.runID, epoch: 2))
        #expect(try await off { try t.old.epoch(of: t.runID) } == 2)
        #expect(try await off { try t.new.epoch(of: t.runID) } == 2)
    }

    @Test(arguments: StoreKind.available)
    func aWriteUnderAStaleEpochIsRefusedAndWritesNothing(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let t = try await Self.takeOver(db)
        let before = try await off { t.new.timeline(t.runID) }.count
        let (old, fence) = (t.old, t.oldFence)
        let refused = await #expect(throws: FencedError.self) {
            try await off {
                let sink = try old.timelineSink(fence: fence, health: nil)
                try sink.write(TimelineEvent(time: Date(), run: fence.runID, event: "step.started"))
            }
        }
        #expect(refused?.fence == fence)
        #expect(try await off { t.new.timeline(t.runID) }.count == before, "a fenced write reached the timeline")
        // Through `record` (the way a run writes), the refusal reaches the run's health as fenced, not as a failure.
        let health = RecordHealth()
        try await off { try old.timelineSink(fence: fence, health: health).record(TimelineEvent(time: Date(), run: fence.runID, event: "step.started")) }
        #expect(health.fenced != nil && health.failure == nil)
        // The new owner writes under its own epoch.
        let newFence = try #require(t.newLease.fence)
        try await off { try t.new.timelineSink(fence: newFence, health: nil).write(TimelineEvent(time: Date(), run: t.runID, event: "run.taken_over")) }
        #expect(try await off { t.new.timeline(t.runID) }.count == before + 1)
    }

    /// A run records the events of one turn together (one write): they land in order, and a fenced
    /// owner's batch writes none of them.
    @Test(arguments: StoreKind.available)
    func eventsWrittenTogetherKeepTheirOrderAndAFencedBatchWritesNone(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let t = try await Self.takeOver(db)
        let before = try await off { t.new.timeline(t.runID) }
        let (old, fence) = (t.old, t.oldFence)
        let batch = ["step.finished", "step.started", "run.finished"].enumerated().map { i, name in
            var e = TimelineEvent(time: Date(), run: fence.runID, event: name)
            e.step = "s\(i)"
            return e
        }
        await #expect(throws: FencedError.self) { try await off { try old.timelineSink(fence: fence, health: nil).write(batch) } }
        #expect(try await off { t.new.timeline(t.runID) }.count == before.count, "part of a fenced batch reached the timeline")
        let newFence = try #require(t.newLease.fence)
        let health = RecordHealth()
        try await off { try t.new.timelineSink(fence: newFence, health: health).record(batch) }
        #expect(health.failure == nil && health.fenced == nil)
        let after = try await off { t.new.timeline(t.runID) }
        #expect(after.count == before.count + 3)
        #expect(after.suffix(3).map(\.event) == ["step.finished", "step.started", "run.finished"])
        #expect(after.suffix(3).map(\.step) == ["s0", "s1", "s2"])
    }

    /// A run's last events and its row's end: on PostgreSQL one statement (the timeline closes the
    /// row), on SQLite the history sink closes it; either way the row says how the run ended, once,
    /// and a fenced owner's `run.finished` closes nothing.
    @Test(arguments: StoreKind.available)
    func theLastEventsCloseTheRowOnceAndAFencedOwnersEndClosesNothing(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let t = try await Self.takeOver(db)
        let runID = t.runID
        @Sendable func ending(_ outcome: RunOutcome, _ ms: Int) -> [TimelineEvent] {
            var end = TimelineEvent(time: Date(), run: runID, event: "run.finished")
            end.outcome = outcome.rawValue
            end.durationMs = ms
            return [TimelineEvent(time: Date(), run: runID, event: "step.finished"), end]
        }
        @Sendable func sinks(_ store: any RunDatabase, _ fence: RunFence, _ health: RecordHealth) throws -> [any TimelineSink] {
            let file = try store.timelineSink(fence: fence, health: health)
            #expect(file.closesRowAtRunFinished == (kind == .postgres))
            return [file, HistorySink(store: store, health: health, fence: fence, rowClosedByTimeline: file.closesRowAtRunFinished)]
        }
        let (old, oldFence) = (t.old, t.oldFence)
        let oldHealth = RecordHealth()
        try await off { for s in try sinks(old, oldFence, oldHealth) { s.record(ending(.failed, 1)) } }
        #expect(oldHealth.fenced != nil)
        #expect(try await off { try t.new.run(t.runID) }?.outcome == nil, "a fenced owner's end closed the row")
        let newFence = try #require(t.newLease.fence)
        let health = RecordHealth()
        try await off { for s in try sinks(t.new, newFence, health) { s.record(ending(.mitigated, 4321)) } }
        #expect(health.failure == nil && health.fenced == nil)
        let row = try await off { try t.new.run(t.runID) }
        #expect(row?.outcome == RunOutcome.mitigated.rawValue)
        #expect(row?.durationMs == 4321)
        #expect(try await off { t.new.timeline(t.runID) }.filter { $0.event == "run.finished" }.count == 1)
    }

    @Test(arguments: StoreKind.available)
    func aFencedFinishWritesNothingAndTheLastOwnersFinishHolds(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let t = try await Self.takeOver(db)
        let (old, fence) = (t.old, t.oldFence)
        await #expect(throws: FencedError.self) { try await off { try old.finish(fence, outcome: .mitigated, durationMs: 5) } }
        let row = try await off { try t.new.run(t.runID) }
        #expect(row?.outcome == nil, "a fenced owner closed the run")
        let newFence = try #require(t.newLease.fence)
        try await off { try t.new.finish(newFence, outcome: .interrupted, durationMs: 7) }
        #expect(try await off { try t.new.run(t.runID) }?.outcome == "interrupted")
        // Finishing again under its own epoch changes nothing; the old owner is still refused.
        try await off { try t.new.finish(newFence, outcome: .interrupted, durationMs: 7) }
        await #expect(throws: FencedError.self) { try await off { try old.finish(fence, outcome: .failed, durationMs: 9) } }
        #expect(try await off { try t.new.run(t.runID) }?.outcome == "interrupted")
    }

    @Test(arguments: StoreKind.available)
    func aFencedRenewalReportsTheRunLost(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let t = try await Self.takeOver(db)
        guard let old = t.old as? any ReplicatedRunDatabase else {
            // One machine: a lease is a file lock the kernel holds; there is nothing to renew.
            #expect(kind == .sqlite)
            return
        }
        let lost = LostRuns()
        old.onLost = { ids in lost.add(ids) }
        try await off { old.renewLeases() }
        #expect(lost.ids == [t.runID])
        // Lost is fenced locally too: the next write is refused without asking the database.
        let fence = t.oldFence
        await #expect(throws: FencedError.self) {
            try await off { try old.timelineSink(fence: fence, health: nil).write(TimelineEvent(time: Date(), run: fence.runID, event: "step.started")) }
        }
    }
}

/// Run ids reported lost, collected across threads.
final class LostRuns: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var all: [String] = []
    func add(_ ids: [String]) { lock.withLock { all += ids } }
    var ids: [String] { lock.withLock { all } }
}

extension StoreFixture {
    /// Cuts the owner holding `lease` off without telling it: on SQLite its file lease is dropped
    /// (as when its process dies); on PostgreSQL its lease expires in the database (the owner stopped
    /// renewing, `renewsOnItsOwn = false`, and still believes it owns the run).
    func cutOff(_ lease: any RunHold) async throws {
        let fence = try #require(lease.fence)
        switch kind {
        case .sqlite:
            try await off { lease.release() }
        case .postgres:
            let c = try #require(URLComponents(string: location))
            let argv = ["psql", "-q", "-h", c.host ?? "127.0.0.1", "-p", "\(c.port ?? 5432)", "-U", c.user ?? "runbook", "-d", String(c.path.dropFirst()),
                        "-c", "UPDATE runs SET lease_until = now() - interval '1 minute' WHERE id = '\(fence.runID)'"]
            let r = try await off { try Spawn.run(argv) }
            #expect(r.status == 0, "\(r.stderr)")
        }
    }
}
