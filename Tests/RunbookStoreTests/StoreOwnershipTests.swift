import Foundation
import RunbookCore
import RunbookStoreContract
import Testing

/// Owners, paused runs, approvals and history, the same on both stores.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct StoreOwnershipTests {
    /// scripts/test.sh starts a cluster: there the suite must run against PostgreSQL too, not skip it.
    @Test(.enabled(if: ProcessInfo.processInfo.environment["RUNBOOK_TEST_PG_DIR"] != nil))
    func scriptsTestShRunsTheSuiteAgainstPostgreSQLToo() {
        #expect(StoreKind.available == [.sqlite, .postgres])
    }

    /// Far enough ahead that every released lease is stale on either store.
    static func later() -> Date { Date().addingTimeInterval(120) }

    @Test(arguments: StoreKind.available)
    func aDeadOwnersOwnRunFinishedIsAdoptedNeverDoubled(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let store = try await db.open()
        let rb = try Cases.runbook("dead", guards: "{}")
        let d = try await Cases.admit(store, [Cases.request(rb), Cases.request(rb)])
        let ids = try await off { try store.runs(limit: 5) }.map(\.id)
        #expect(d.map(\.kind) == ["admitted", "admitted"] && ids.count == 2)
        let (ended, cut) = (ids[0], ids[1])
        try await Cases.write(store, ended, ["run.started", "step.started", "step.finished", "run.finished"], outcome: .mitigated)
        try await Cases.write(store, cut, ["run.started"])
        // Both owners die: the one wrote its end but not its row.
        try await Cases.die(d)
        let next = try await db.open()
        let finalized = try await off { try next.finalizeDeadRuns(now: Self.later()) }
        #expect(Set(finalized) == Set(ids))
        let endedRow = try await off { try next.run(ended) }
        #expect(endedRow?.outcome == "mitigated" && endedRow?.durationMs == 1234)
        let endedEvents = try await off { next.timeline(ended) }
        #expect(endedEvents.filter { $0.event == "run.finished" }.count == 1, "\(endedEvents.map(\.event))")
        let cutEvents = try await off { next.timeline(cut) }
        #expect(cutEvents.filter { $0.event == "run.finished" }.map(\.outcome) == ["interrupted"])
        #expect(try await off { try next.run(cut) }?.outcome == "interrupted")
        // Finalising again, or ending it by hand, writes no second end.
        #expect(try await off { try next.finalizeDeadRuns(now: Self.later()) }.isEmpty)
        try await off { try next.finalize(runID: ended, started: Date(), message: "again", now: Self.later()) }
        #expect(try await off { next.timeline(ended) }.filter { $0.event == "run.finished" }.count == 1)
    }

    @Test(arguments: StoreKind.available)
    func aLiveOwnersRunIsLeftAloneAndItsLeaseFreedMakesItDead(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let store = try await db.open()
        let rb = try Cases.runbook("leased", guards: #"{ lock: "k" }"#)
        let d = try await Cases.admit(store, [Cases.request(rb, lockKey: "k")])
        let other = try await db.open()
        #expect(try await off { try other.finalizeDeadRuns(now: Date()) }.isEmpty, "a live owner's run was finalised")
        #expect(try await Cases.admit(other, [Cases.request(rb, lockKey: "k")]).map(\.kind) == ["refused:lock"])
        try await Cases.die([d[0]])
        #expect(try await off { try other.finalizeDeadRuns(now: Self.later()) }.count == 1)
        #expect(try await Cases.admit(other, [Cases.request(rb, lockKey: "k")]).map(\.kind) == ["admitted"], "a dead owner keeps no lock")
    }

    /// A server admits a run with lock key `k`, which pauses at a resumable gate due at `deadline`;
    /// then the server stops (its lease given up). Returns the run's id.
    static func leavePaused(_ db: StoreFixture, _ rb: Runbook, deadline: Date) async throws -> String {
        let server = try await db.open()
        let d = try await Cases.admit(server, [Cases.request(rb, lockKey: "k")])
        let id = try #require(try await off { try server.runs(limit: 1) }.first?.id)
        try await Cases.write(server, id, ["run.started", "approval.requested"])
        let gate = Cases.gate("changes", approvals: 1, deadline: deadline)
        try await off { try server.openGate(runID: id, gate: gate, startedBy: nil, resumable: true, now: Date()) }
        try await Cases.die(d)
        return id
    }

    @Test(arguments: StoreKind.available)
    func aPausedRunKeepsItsLockAndIsResumedByTheNextServer(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let rb = try Cases.runbook("paused", guards: #"{ lock: "k" }"#)
        let id = try await Self.leavePaused(db, rb, deadline: Date().addingTimeInterval(3600))
        let next = try await db.open()
        #expect(try await off { try next.finalizeDeadRuns(now: Date()) }.isEmpty, "a paused run was finalised")
        #expect(try await Cases.admit(next, [Cases.request(rb, lockKey: "k")]).map(\.kind) == ["refused:lock"], "a paused run lost its lock")
        let taken = try await off { try next.takePausedRuns(now: Date()) }
        #expect(taken.map(\.runID) == [id])
        #expect(try await off { try next.takePausedRuns(now: Date()) }.isEmpty, "a paused run was taken twice")
        #expect(try await Cases.admit(next, [Cases.request(rb, lockKey: "k")]).map(\.kind) == ["refused:lock"])
        #expect(try await off { try next.openGates(runID: id) } == ["changes"])
        withExtendedLifetime(taken) {}
    }

    @Test(arguments: StoreKind.available)
    func aPausedRunPastItsDeadlineIsEndedNotResumed(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let rb = try Cases.runbook("stale", guards: #"{ lock: "k" }"#)
        let id = try await Self.leavePaused(db, rb, deadline: Date().addingTimeInterval(-5))
        let next = try await db.open()
        #expect(try await off { try next.takePausedRuns(now: Date()) }.isEmpty, "a stale paused run was resumed")
        #expect(try await off { try next.finalizeDeadRuns(now: Self.later()) } == [id])
        let end = try await off { next.timeline(id) }.filter { $0.event == "run.finished" }
        #expect(end.count == 1 && end[0].outcome == "interrupted")
        #expect(end.first?.message?.contains("deadline") == true, "\(end.first?.message ?? "")")
        #expect(try await off { try next.openGates(runID: id) }.isEmpty)
        #expect(try await Cases.admit(next, [Cases.request(rb, lockKey: "k")]).map(\.kind) == ["admitted"])
    }

    @Test(arguments: StoreKind.available)
    func onePersonCountsOnceWhateverTheCaseAndNeverOnTheirOwnRun(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let store = try await db.open()
        let rb = try Cases.runbook("gated", guards: "{}")
        _ = try await Cases.admit(store, [Cases.request(rb)])
        let id = try #require(try await off { try store.runs(limit: 1) }.first?.id)
        try await off { try store.openGate(runID: id, gate: Cases.gate("restart", approvals: 2, deadline: Date().addingTimeInterval(600)), startedBy: "Alice", resumable: true, now: Date()) }
        #expect(try await off { try store.runsAwaitingApproval() } == [id])
        await #expect(throws: ApprovalError.self) { try await off { try store.answer(runID: id, approve: true, by: " alice ", via: "test", now: Date()) } }
        let bob = try await off { try store.answer(runID: id, approve: true, by: "bob", via: "test", now: Date()) }
        #expect(bob.gates.map(\.approvals) == [1] && bob.gates.map(\.needed) == [2])
        let again = await #expect(throws: ApprovalError.self) { try await off { try store.answer(runID: id, approve: true, by: "BOB ", via: "test", now: Date()) } }
        #expect(again?.description.contains("one person counts once") == true)
        let carol = try await off { try store.answer(runID: id, approve: true, by: "carol", via: "test", now: Date()) }
        #expect(carol.gates.map(\.approvals) == [2])
        #expect(try await off { try store.answers(runID: id, gate: "restart") }.map(\.name) == ["bob", "carol"])
        try await off { try store.closeGate(runID: id, gate: "restart", status: "approved") }
        let late = await #expect(throws: ApprovalError.self) { try await off { try store.answer(runID: id, approve: false, by: "dave", via: "test", now: Date()) } }
        #expect(late?.description.contains("not waiting") == true)
    }

    @Test(arguments: StoreKind.available)
    func historyPagesNewestFirstAndResolvesIDs(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let store = try await db.open()
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        let ids = (0..<5).map { "run-2027-0\($0)-abc\($0)" }
        try await off {
            for (i, id) in ids.enumerated() {
                var r = RunRecord(id: id, runbook: "hist", trigger: "cli", started: t0.addingTimeInterval(Double(i)), dryRun: false, drill: false)
                r.outcome = "completed"
                try store.insert(r)
            }
        }
        #expect(try await off { try store.runs(limit: 3) }.map(\.id) == ids.reversed().prefix(3).map { $0 })
        #expect(try await off { try store.runs(limit: 10) }.count == 5)
        #expect(try await off { try store.resolveRunID("last") } == ids[4])
        #expect(try await off { try store.resolveRunID("abc2") } == ids[2])
        await #expect(throws: RunIDError.self) { try await off { try store.resolveRunID("run-2027") } }
        let row = try await off { try store.run(ids[1]) }
        #expect(row?.started == t0.addingTimeInterval(1) && row?.outcome == "completed")
    }

    @Test(arguments: StoreKind.available)
    func aReplicaClaimsAnExpiredLeaseOnce(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        guard let first = try await db.open() as? any ReplicatedRunDatabase,
              let second = try await db.open() as? any ReplicatedRunDatabase,
              let third = try await db.open() as? any ReplicatedRunDatabase else {
            // One machine: the kernel's file lease is the owner; nothing is claimed from another process.
            #expect(kind == .sqlite)
            return
        }
        let rb = try Cases.runbook("claimed", guards: "{}")
        let d = try await Cases.admit(first, [Cases.request(rb)])
        #expect(try await off { try second.claimExpiredRuns(limit: 10) }.isEmpty, "a live lease was claimed")
        try await Cases.die([d[0]])
        let claimed = try await off { try second.claimExpiredRuns(limit: 10) }
        #expect(claimed.count == 1)
        #expect(try await off { try third.claimExpiredRuns(limit: 10) }.isEmpty, "claimed twice")
    }
}
