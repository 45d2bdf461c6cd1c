import Dispatch
import Foundation
import RunbookCore
import RunbookStoreContract
import Testing

/// A payload admitted in chunks, one transaction each (`AdmissionChunks`): the guards hold across
/// chunks as within one, and other writers are answered while it is admitted.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct StoreChunkedAdmissionTests {
    @Test(arguments: StoreKind.available)
    func aPayloadLargerThanOneChunkStartsExactlyOneRunWithMaxRunsOne(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let store = try await db.open()
        let rb = try Cases.runbook("storm", guards: "{ max_runs: { count: 1, per: 1h } }")
        // 45 alerts in chunks of 10, the first alert sent again in the last chunk.
        let payload: @Sendable () -> [AdmissionRequest] = { (0..<45).map { Cases.request(rb, fingerprint: "fp-\($0 % 44)") } }
        let first = payload()
        let now = Date()
        let d = try await off { store.admitInChunks(first, now: now, size: 10) }
        #expect(d.failure == nil)
        let kinds = d.decided.map { Cases.outcome($0).kind }
        #expect(kinds.count == 45)
        #expect(kinds[0] == "admitted")
        #expect(kinds[1..<44].allSatisfy { $0 == "refused:max_runs" }, "\(kinds)")
        #expect(kinds[44] == "duplicate", "the first alert again, four chunks later")
        #expect(Cases.outcome(d.decided[44]).runID == first[0].record.id)
        // The same payload again: every alert a duplicate or a repeat refusal on its own row.
        let again = try await off { store.admitInChunks(payload(), now: now, size: 10) }
        let repeats = again.decided.map(Cases.outcome)
        #expect(repeats.map(\.kind) == ["duplicate"] + Array(repeating: "refused:max_runs", count: 43) + ["duplicate"])
        #expect(repeats[1..<44].map(\.runID) == d.decided[1..<44].map { Cases.outcome($0).runID })
        let rows = try await off { try store.runs(limit: 1000) }
        #expect(rows.count == 44, "one run and 43 refusal rows")
        #expect(rows.filter { $0.outcome == nil }.count == 1)
        #expect(rows.filter { $0.outcome == "refused" }.allSatisfy { $0.refusedCount == 2 })
    }

    @Test(arguments: StoreKind.available)
    func anApprovalIsAnsweredWhileALargePayloadIsAdmitted(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let store = try await db.open()
        try await StoreGateTests.open(store, "gated", deadline: Date().addingTimeInterval(3600), startedBy: "am")
        let rb = try Cases.runbook("storm", guards: "{ max_runs: { count: 1, per: 1h } }")
        let payload = (0..<1200).map { Cases.request(rb, fingerprint: "big-\($0)") }
        let results = try await off { () -> [String] in
            let box = Collected()
            DispatchQueue.concurrentPerform(iterations: 2) { k in
                if k == 0 {
                    let d = store.admitInChunks(payload, now: Date())
                    let kinds = d.decided.map { Cases.outcome($0).kind }
                    box.add("payload \(d.failure == nil ? "recorded" : "failed") \(kinds.filter { $0 == "admitted" }.count) admitted \(kinds.filter { $0 == "refused:max_runs" }.count) refused")
                } else {
                    box.add("approval " + StoreGateTests.answer(store, "gated", approve: true, by: "lead"))
                }
            }
            return box.all.sorted()
        }
        #expect(results == ["approval 200 1/1", "payload recorded 1 admitted 1199 refused"])
    }

    @Test func aFailedChunkStopsTheBatchAndTheChunksBeforeItStayDecided() {
        struct Down: Error {}
        var asked: [[Int]] = []
        let out = AdmissionChunks.decide(Array(0..<25), size: 10) { chunk -> [String] in
            asked.append(chunk)
            if chunk.contains(15) { throw Down() }
            return chunk.map { "d\($0)" }
        }
        #expect(asked == [Array(0..<10), Array(10..<20)], "the chunk after the failed one is not tried")
        #expect(out.decided == (0..<10).map { "d\($0)" })
        #expect(out.failure is Down)
    }
}
