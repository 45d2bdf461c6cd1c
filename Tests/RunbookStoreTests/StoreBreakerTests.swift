import Dispatch
import Foundation
import RunbookCore
import RunbookStoreContract
import Testing

/// The change breaker's window, the same on both stores: a change reserves its place before it is
/// applied, in one transaction with the count, so concurrent runs on any process never pass the cap.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct StoreBreakerTests {
    @Test(arguments: StoreKind.available)
    func twentyConcurrentReservationsUnderACapOfTwoTakeExactlyTwoTenTimesOver(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        var stores: [any RunDatabase] = []
        // Three "replicas" and the CLI.
        for _ in 0..<4 { stores.append(try await db.open()) }
        let all = stores
        let t0 = Date()
        for round in 0..<10 {
            // Each round in a window of its own, two hours after the last.
            let now = t0.addingTimeInterval(Double(round) * 7200)
            let outcomes = try await off { () -> [String] in
                let box = Collected()
                DispatchQueue.concurrentPerform(iterations: 20) { i in
                    switch try? all[i % all.count].reserveChange(runID: "run-\(round)-\(i)", cap: 2, per: 3600, now: now) {
                    case .reserved?: box.add("reserved")
                    case .full(let used)?: box.add("full:\(used)")
                    case nil: box.add("error")
                    }
                }
                return box.all
            }
            #expect(outcomes.filter { $0 == "reserved" }.count == 2, "round \(round): \(outcomes)")
            #expect(outcomes.filter { $0 == "full:2" }.count == 18, "round \(round): \(outcomes)")
        }
    }

    @Test(arguments: StoreKind.available)
    func aPlaceNotUsedIsGivenBackAndAPlaceUsedBecomesTheChange(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let store = try await db.open()
        let now = Date()
        let since = now.addingTimeInterval(-3600)
        let steps = try await off { () -> [String] in
            var out: [String] = []
            func reserve(_ run: String) throws { out.append("\(run):\(try store.reserveChange(runID: run, cap: 2, per: 3600, now: now))") }
            try reserve("a")
            try reserve("b")
            try reserve("c")
            // a's change was not applied (its step failed): its place is free for c.
            try store.releaseChange(runID: "a")
            out.append("count:\(try store.changesApplied(since: since))")
            try reserve("c")
            // b and c apply theirs: the places become the changes, nothing is added.
            try store.recordChange(runID: "b", at: now)
            try store.recordChange(runID: "c", at: now)
            out.append("count:\(try store.changesApplied(since: since))")
            // A change made with no place reserved (approved over the cap, or a CLI run) is added.
            try store.recordChange(runID: "d", at: now)
            out.append("count:\(try store.changesApplied(since: since))")
            // Releasing a place already used gives nothing back.
            try store.releaseChange(runID: "b")
            out.append("count:\(try store.changesApplied(since: since))")
            return out
        }
        #expect(steps == ["a:reserved", "b:reserved", "c:full(used: 2)", "count:1", "c:reserved", "count:2", "count:3", "count:3"])
    }

    @Test(arguments: StoreKind.available)
    func aReservedPlaceCountsForAdmissionAsAChange(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let store = try await db.open()
        let now = Date()
        _ = try await off { try store.reserveChange(runID: "x", cap: 1, per: 3600, now: now) }
        let rb = try Cases.runbook("capped", guards: "{}")
        var request = Cases.request(rb, now: now)
        request.maxChanges = (count: 1, per: 3600)
        #expect(try await Cases.admit(store, [request], now: now).map(\.kind) == ["refused:breaker"])
    }
}
