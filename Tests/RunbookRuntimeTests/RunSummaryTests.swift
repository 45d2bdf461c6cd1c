import Foundation
import RunbookCore
import RunbookRuntime
import RunbookStore
import RunbookStoreContract
import Testing

/// One name per field in `/runs`, `/runs/ID` and `history --json` (SPEC §7.1).
struct RunSummaryTests {
    @Test func aRunIsShownWithTheSpecNamesAndNullsForWhatIsNotKnownYet() throws {
        let record = RunRecord(id: "r-1", runbook: "memory-leak", trigger: "manual", started: Date(timeIntervalSince1970: 0), dryRun: false, drill: false)
        let text = RunSummary(record, awaiting: true).jsonLine()
        let obj = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(Set(obj.keys) == ["id", "runbook", "trigger", "fingerprint", "outcome", "status", "started", "duration_ms", "dry_run", "drill"])
        #expect(obj["start"] == nil)
        #expect(obj["outcome"] is NSNull && obj["duration_ms"] is NSNull)
        #expect(obj["status"] as? String == "awaiting-approval")
        #expect(obj["started"] as? String == "1970-01-01T00:00:00.000Z")
    }

    @Test func aSummaryReadsBackAsItself() throws {
        var record = RunRecord(id: "r-2", runbook: "disk-full", trigger: "alert:DiskFull", fingerprint: "abc", started: Date(timeIntervalSince1970: 12.5), dryRun: true, drill: false)
        record.outcome = "completed"
        record.durationMs = 42
        let summary = RunSummary(record, awaiting: false)
        #expect(summary.status == .finished)
        #expect(try JSONDecoder().decode(RunSummary.self, from: Data(summary.jsonLine().utf8)) == summary)
    }
}
