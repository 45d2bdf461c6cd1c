import Dispatch
import Foundation
import RunbookCore
import RunbookStoreContract
import Testing

/// Admission, the same on both stores: races, lock, cooldown, max_runs, max_active, the breaker,
/// dedupe and counted refusals, for one request and for a payload at once.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct StoreAdmissionTests {
    @Test(arguments: StoreKind.available)
    func twentyConcurrentCallersOnOneLockKeyAdmitExactlyOne(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        var stores: [any RunDatabase] = []
        for _ in 0..<4 { stores.append(try await db.open()) }
        let rb = try Cases.runbook("race", guards: #"{ lock: "shop" }"#)
        let all = stores
        let outcomes = try await off { () -> [String] in
            let box = Collected()
            DispatchQueue.concurrentPerform(iterations: 20) { i in
                let d = (try? all[i % all.count].admitAll([Cases.request(rb, lockKey: "shop")], now: Date()))?.first
                switch d {
                case .admitted(let lease, _)?:
                    HeldLeases.shared.keep(lease)
                    box.add("admitted")
                case .refused(let r, _)?: box.add("refused:\(r.guardName)")
                case .duplicate?: box.add("duplicate")
                case nil: box.add("error")
                }
            }
            return box.all
        }
        #expect(outcomes.filter { $0 == "admitted" }.count == 1, "\(outcomes)")
        #expect(outcomes.filter { $0 == "refused:lock" }.count == 19, "\(outcomes)")
    }

    @Test(arguments: StoreKind.available)
    func aLockIsHeldByTheOpenRunAndFreedWhenItFinishes(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let store = try await db.open()
        let rb = try Cases.runbook("locked", guards: #"{ lock: "k" }"#)
        let first = try await Cases.admit(store, [Cases.request(rb, lockKey: "k"), Cases.request(rb, lockKey: "other")])
        #expect(first.map(\.kind) == ["admitted", "admitted"])
        let second = try await Cases.admit(store, [Cases.request(rb, lockKey: "k")])
        #expect(second.map(\.kind) == ["refused:lock"])
        // Another runbook's run with the same key is not held back.
        let other = try Cases.runbook("elsewhere", guards: #"{ lock: "k" }"#)
        #expect(try await Cases.admit(store, [Cases.request(other, lockKey: "k")]).map(\.kind) == ["admitted"])
        let open = try await off { try store.runs(limit: 10) }.filter { $0.runbook == "locked" && $0.lockKey == "k" && $0.outcome == nil }
        #expect(open.count == 1)
        try await off { try store.finish(runID: open[0].id, outcome: .mitigated, durationMs: 5) }
        #expect(try await Cases.admit(store, [Cases.request(rb, lockKey: "k")]).map(\.kind) == ["admitted"])
    }

    @Test(arguments: StoreKind.available)
    func cooldownRefusesUntilItEndsAndForceSetsItAside(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let store = try await db.open()
        let rb = try Cases.runbook("cool", guards: "{ cooldown: 10m }")
        let t0 = Date()
        let a = try await Cases.admit(store, [Cases.request(rb, now: t0)], now: t0)
        #expect(a.map(\.kind) == ["admitted"])
        let later = t0.addingTimeInterval(60)
        #expect(try await Cases.admit(store, [Cases.request(rb, now: later)], now: later).map(\.kind) == ["refused:cooldown"])
        var forced = Cases.request(rb, now: later)
        forced.force = true
        let request = forced
        let f = try await off { try store.admitAll([request], now: later) }
        guard case .admitted(_, let overridden)? = f.first else { Issue.record("not admitted: \(f)"); return }
        #expect(overridden?.guardName == "cooldown")
        let after = t0.addingTimeInterval(60 * 21)
        #expect(try await Cases.admit(store, [Cases.request(rb, now: after)], now: after).map(\.kind) == ["admitted"])
    }

    @Test(arguments: StoreKind.available)
    func maxRunsAdmitsTheCountThenRefusesAndRepeatsAreCountedOnOneRow(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let store = try await db.open()
        let rb = try Cases.runbook("storm", guards: "{ max_runs: { count: 2, per: 1h } }")
        let payload = { (0..<5).map { Cases.request(rb, fingerprint: "fp-\($0)") } }
        let first = try await Cases.admit(store, payload())
        #expect(first.map(\.kind) == ["admitted", "admitted", "refused:max_runs", "refused:max_runs", "refused:max_runs"])
        let again = try await Cases.admit(store, payload())
        #expect(again.map(\.kind) == ["duplicate", "duplicate", "refused:max_runs", "refused:max_runs", "refused:max_runs"])
        #expect(again[2...].map(\.runID) == first[2...].map(\.runID), "a repeat refusal adds a row")
        let third = try await Cases.admit(store, payload())
        for id in third[2...].compactMap(\.runID) {
            let row = try await off { try store.run(id) }
            #expect(row?.refusedCount == 3)
            #expect(row?.outcome == "refused")
        }
        // One payload repeating an alert counts it twice on one row.
        let twice = try await Cases.admit(store, [Cases.request(rb, fingerprint: "fp-9"), Cases.request(rb, fingerprint: "fp-9")])
        #expect(twice.map(\.kind) == ["refused:max_runs", "refused:max_runs"])
        #expect(twice[0].runID == twice[1].runID)
        let row = try await off { try store.run(twice[0].runID!) }
        #expect(row?.refusedCount == 2)
        let rows = try await off { try store.runs(limit: 100) }
        #expect(rows.count == 6, "two runs and four refusal rows: \(rows.map(\.id))")
    }

    @Test(arguments: StoreKind.available)
    func maxActiveCountsOpenRunsAcrossLockKeys(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let store = try await db.open()
        let rb = try Cases.runbook("busy", guards: #"{ lock: "x", max_active: 2 }"#)
        let d = try await Cases.admit(store, ["a", "b", "c"].map { Cases.request(rb, lockKey: $0) })
        #expect(d.map(\.kind) == ["admitted", "admitted", "refused:max_active"])
        var dry = Cases.request(rb, lockKey: "d")
        dry.record.dryRun = true
        dry.checkGuards = false
        #expect(try await Cases.admit(store, [dry]).map(\.kind) == ["admitted"], "a dry run is not held back")
        #expect(try await Cases.admit(store, [Cases.request(rb, lockKey: "e")]).map(\.kind) == ["refused:max_active"], "a dry run holds no place")
    }

    @Test(arguments: StoreKind.available)
    func theBreakerCountsChangesOfEveryRunInItsWindow(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let store = try await db.open()
        let rb = try Cases.runbook("brk", guards: "{}")
        let now = Date()
        try await off {
            try store.recordChange(runID: "old", at: now.addingTimeInterval(-7200))
            try store.recordChange(runID: "r1", at: now.addingTimeInterval(-60))
            try store.recordChange(runID: "r2", at: now.addingTimeInterval(-30))
        }
        #expect(try await off { try store.changesApplied(since: now.addingTimeInterval(-3600)) } == 2)
        var capped = Cases.request(rb, now: now)
        capped.maxChanges = (2, 3600)
        #expect(try await Cases.admit(store, [capped], now: now).map(\.kind) == ["refused:breaker"])
        var roomy = Cases.request(rb, now: now)
        roomy.maxChanges = (3, 3600)
        #expect(try await Cases.admit(store, [roomy], now: now).map(\.kind) == ["admitted"])
        var forced = Cases.request(rb, now: now)
        forced.maxChanges = (1, 3600)
        forced.force = true
        #expect(try await Cases.admit(store, [forced], now: now).map(\.kind) == ["refused:breaker"], "--force never overrides the breaker")
    }

    @Test(arguments: StoreKind.available)
    func anAlertStartsOneRunUntilItIsResolved(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let store = try await db.open()
        let rb = try Cases.runbook("dedupe", guards: "{}")
        let d = try await Cases.admit(store, [Cases.request(rb, fingerprint: "fp"), Cases.request(rb, fingerprint: "fp")])
        #expect(d.map(\.kind) == ["admitted", "duplicate"])
        let open = try await off { try store.runs(limit: 5) }
        #expect(open.count == 1 && d[1].runID == open[0].id)
        let other = try Cases.runbook("dedupe-too", guards: "{}")
        #expect(try await Cases.admit(store, [Cases.request(other, fingerprint: "fp")]).map(\.kind) == ["admitted"], "one alert may start each runbook once")
        let resolved = try await off { try store.resolve(fingerprint: "fp", at: Date()) }
        #expect(resolved.count == 2)
        #expect(try await Cases.admit(store, [Cases.request(rb, fingerprint: "fp")]).map(\.kind) == ["admitted"])
    }

    @Test(arguments: StoreKind.available)
    func aParamRefusalIsRecordedAndCounted(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let store = try await db.open()
        let rb = try Cases.runbook("params", guards: "{}")
        var r = Cases.request(rb, fingerprint: "bad")
        r.refusal = GuardCheck.Refusal(guardName: "params", until: nil, message: "svc does not match")
        let first = try await Cases.admit(store, [r])
        var again = Cases.request(rb, fingerprint: "bad")
        again.refusal = r.refusal
        let second = try await Cases.admit(store, [again])
        #expect(first.map(\.kind) == ["refused:params"] && second.map(\.kind) == ["refused:params"])
        #expect(first[0].runID == second[0].runID)
        let events = try await off { store.timeline(first[0].runID!) }
        #expect(events.map(\.event) == ["run.started", "guard.refused", "run.finished"])
        #expect(events.last?.message?.contains("(2 times)") == true, "\(events.map { $0.message ?? "" })")
    }

    /// PostgreSQL writes an admitted run's `run.started` with its row (one statement fewer per run
    /// on every replica) and says so on the hold; SQLite leaves it to the run. A refused request's
    /// line is never written.
    @Test(arguments: StoreKind.available)
    func anAdmittedRunsStartIsWrittenWithItsRowOnceWhereTheStoreCan(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let store = try await db.open()
        let rb = try Cases.runbook("starts", guards: #"{ lock: "k" }"#)
        func withLine(_ r: AdmissionRequest) -> AdmissionRequest {
            var r = r
            var e = TimelineEvent(time: r.record.started, run: r.record.id, event: "run.started")
            e.message = "line of \(r.record.id)"
            let line = e.jsonLine()
            r.startLine = { line }
            return r
        }
        let (a, b) = (withLine(Cases.request(rb, lockKey: "k")), withLine(Cases.request(rb, lockKey: "k")))
        let decisions = try await off { try store.admitAll([a, b], now: Date()) }
        guard case .admitted(let lease, _) = decisions[0], case .refused(let r, _) = decisions[1] else {
            Issue.record("expected admitted then refused: \(decisions)")
            return
        }
        HeldLeases.shared.keep(lease)
        #expect(r.guardName == "lock")
        #expect(lease.startRecorded == (kind == .postgres))
        let started = try await off { store.timeline(a.record.id) }.filter { $0.message == "line of \(a.record.id)" }
        #expect(started.map(\.event) == (kind == .postgres ? ["run.started"] : []))
        #expect(try await off { store.timeline(b.record.id) }.allSatisfy { $0.message != "line of \(b.record.id)" })
    }
}

/// Strings gathered from many threads.
final class Collected: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ s: String) { lock.withLock { items.append(s) } }
    var all: [String] { lock.withLock { items } }
}
