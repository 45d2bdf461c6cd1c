import Foundation
import GRDB
import RunbookCore
import RunbookStoreContract

/// The change breaker's window: each change reserves its place before it is applied, in one
/// `BEGIN IMMEDIATE` transaction with the count, so no two runs (in any process on the state
/// folder) take the last place. A row with `state = 'reserved'` is a place held; one with no state
/// is a change applied.
extension SQLiteRunStore {
    public func reserveChange(runID: String, cap: Int, per: Double, now: Date) throws -> ChangeReservation {
        try immediate { db in
            let used = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM changes WHERE at >= ?", arguments: [now.addingTimeInterval(-per)]) ?? 0
            let decision = ChangeReservation.decide(used: used, cap: cap)
            if decision == .reserved {
                try db.execute(sql: "INSERT INTO changes (run, at, state) VALUES (?, ?, 'reserved')", arguments: [runID, now])
            }
            return decision
        }
    }

    public func releaseChange(runID: String) throws {
        try immediate { db in
            try db.execute(sql: """
                DELETE FROM changes WHERE rowid = (SELECT rowid FROM changes WHERE run = ? AND state = 'reserved' ORDER BY rowid LIMIT 1)
                """, arguments: [runID])
        }
    }
}
