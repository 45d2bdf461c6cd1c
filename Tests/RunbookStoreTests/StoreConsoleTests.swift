import Foundation
@testable import RunbookCore
import RunbookStoreContract
import Testing

/// What the console asks of both stores: run-list pages by filters and a cursor, and cancel
/// requests one process leaves for another.
@Suite struct StoreConsoleTests {
    /// Inserts finished and open runs of two runbooks, one second apart; returns their ids, oldest first.
    func seed(_ store: any RunDatabase) async throws -> [String] {
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        return try await off {
            var ids: [String] = []
            for i in 0..<7 {
                var r = RunRecord(id: "2027-01-15-\(String(format: "%02d", i))-\(i % 2 == 0 ? "aaaa" : "bbbb")", runbook: i % 2 == 0 ? "disk" : "web",
                                  trigger: i == 3 ? "alert:HostDown" : "api", fingerprint: nil, started: t0.addingTimeInterval(Double(i)), dryRun: false, drill: false)
                if i < 5 { r.outcome = i == 1 ? "failed" : "mitigated"; r.durationMs = 10 }
                try store.insert(r)
                ids.append(r.id)
            }
            return ids
        }
    }

    @Test(arguments: StoreKind.available)
    func theRunListFiltersAndPagesNewestFirst(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let store = try await db.open()
        let ids = try await seed(store)
        let listing = store
        func page(_ q: RunListQuery) async throws -> [String] { try await off { try listing.listRuns(q).map(\.id) } }
        #expect(try await page(RunListQuery(limit: 3)) == [ids[6], ids[5], ids[4]])
        #expect(try await page(RunListQuery(before: ids[4], limit: 3)) == [ids[3], ids[2], ids[1]])
        #expect(try await page(RunListQuery(before: ids[1], limit: 3)) == [ids[0]])
        #expect(try await page(RunListQuery(runbook: "web")) == [ids[5], ids[3], ids[1]])
        #expect(try await page(RunListQuery(outcome: "failed")) == [ids[1]])
        #expect(try await page(RunListQuery(status: .running)) == [ids[6], ids[5]])
        #expect(try await page(RunListQuery(status: .finished, limit: 2)) == [ids[4], ids[3]])
        #expect(try await page(RunListQuery(text: "hostdown")) == [ids[3]])
        #expect(try await page(RunListQuery(text: "%")) == [])
        #expect(try await page(RunListQuery(runbook: "disk", before: ids[4])) == [ids[2], ids[0]])
    }

    @Test(arguments: StoreKind.available)
    func aCancelRequestWaitsForItsRunsOwnerUntilCleared(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let asker = try await db.open()
        let owner = try await db.open()
        let pending = try await off { () -> ([String: CancelRequest], [String: CancelRequest]) in
            let before = try owner.pendingCancels(among: ["r1", "r2"])
            try asker.requestCancel(runID: "r1", CancelRequest(by: "nina", undo: false))
            return (before, try owner.pendingCancels(among: ["r1", "r2"]))
        }
        #expect(pending.0.isEmpty)
        #expect(pending.1 == ["r1": CancelRequest(by: "nina", undo: false)])
        let after = try await off { () -> [String: CancelRequest] in
            try owner.clearCancelRequest(runID: "r1")
            try owner.clearCancelRequest(runID: "r1")
            return try owner.pendingCancels(among: ["r1"])
        }
        #expect(after.isEmpty)
    }
}
