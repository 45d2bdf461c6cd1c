import Foundation
import Logging
import PostgresNIO
import RunbookCore
import RunbookStoreContract

/// The change breaker's window, shared by every replica: each change reserves its place before it
/// is applied, in one transaction holding a transaction-level advisory lock, so no two runs on any
/// replica take the last place. A row with `state = 'reserved'` is a place held; one with no state
/// is a change applied.
extension PostgresRunStore {
    static let breakerLock: Int64 = 0x7275_6e62_6f6f_6b03

    public func reserveChange(runID: String, cap: Int, per: Double, now: Date) throws -> ChangeReservation {
        let log = logger, lockKey = Self.breakerLock, since = now.addingTimeInterval(-per)
        return try sync { client in
            try await client.withTransaction(logger: log) { conn in
                try await conn.query("SELECT pg_advisory_xact_lock(\(lockKey))", logger: log).drain()
                let used = try await conn.query("SELECT count(*) FROM changes WHERE at >= \(since)", logger: log).all(Int.self).first ?? 0
                let decision = ChangeReservation.decide(used: used, cap: cap)
                if decision == .reserved {
                    try await conn.query("INSERT INTO changes (run, at, state) VALUES (\(runID), \(now), 'reserved')", logger: log).drain()
                }
                return decision
            }
        }
    }

    public func releaseChange(runID: String) throws {
        try execute("""
            DELETE FROM changes WHERE ctid = (SELECT ctid FROM changes WHERE run = \(runID) AND state = 'reserved' LIMIT 1 FOR UPDATE SKIP LOCKED)
            """)
    }
}
