import Foundation
import RunbookCore
import RunbookStoreContract
import Testing

/// `runbook history` shows live runs unless asked for drills or dry runs: the same on both stores.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct StoreHistoryKindTests {
    @Test(arguments: StoreKind.available)
    func historyPicksRunsByKindNewestFirst(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let store = try await db.open()
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        // live, drill, dry run, live, drill: newest last.
        let rows: [(String, Bool, Bool)] = [("live-1", false, false), ("drill-1", true, true), ("dry-1", true, false), ("live-2", false, false), ("drill-2", true, true)]
        try await off {
            for (i, row) in rows.enumerated() {
                try store.insert(RunRecord(id: row.0, runbook: "kinds", trigger: "cli", started: t0.addingTimeInterval(Double(i)), dryRun: row.1, drill: row.2))
            }
        }
        #expect(try await off { try store.runs(limit: 10, kinds: [.live]) }.map(\.id) == ["live-2", "live-1"])
        #expect(try await off { try store.runs(limit: 1, kinds: [.live]) }.map(\.id) == ["live-2"], "the limit counts only rows of the kind")
        #expect(try await off { try store.runs(limit: 10, kinds: [.drill]) }.map(\.id) == ["drill-2", "drill-1"])
        #expect(try await off { try store.runs(limit: 10, kinds: [.dryRun]) }.map(\.id) == ["dry-1"])
        #expect(try await off { try store.runs(limit: 10, kinds: [.dryRun, .live]) }.map(\.id) == ["live-2", "dry-1", "live-1"])
        #expect(try await off { try store.runs(limit: 10, kinds: Set(RunKind.allCases)) }.count == 5)
        #expect(try await off { try store.runs(limit: 10, kinds: [.drill]) }.allSatisfy { RunKind($0) == .drill })
    }
}
