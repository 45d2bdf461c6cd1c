import Foundation
import PostgresNIO
import RunbookStoreContract

/// Cancel requests as rows of `cancel_requests`, read by each run's owner (any replica).
extension PostgresRunStore: CancelRequests {
    public func requestCancel(runID: String, _ request: CancelRequest) throws {
        let by = request.by, undo = request.undo
        try execute("""
            INSERT INTO cancel_requests (run, by_name, undo) VALUES (\(runID), \(by), \(undo))
            ON CONFLICT (run) DO UPDATE SET by_name = EXCLUDED.by_name, undo = EXCLUDED.undo, at = now()
            """)
    }

    public func pendingCancels(among runIDs: [String]) throws -> [String: CancelRequest] {
        guard !runIDs.isEmpty else { return [:] }
        let rows = try sync { try await $0.query("SELECT run, by_name, undo FROM cancel_requests WHERE run = ANY(\(runIDs))").all((String, String, Bool).self) }
        var found: [String: CancelRequest] = [:]
        for (run, by, undo) in rows { found[run] = CancelRequest(by: by, undo: undo) }
        return found
    }

    public func clearCancelRequest(runID: String) throws {
        try execute("DELETE FROM cancel_requests WHERE run = \(runID)")
    }
}
