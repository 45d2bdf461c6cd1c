import Foundation
import GRDB
import RunbookStoreContract

/// The run list's pages: `runs(started)`, `runs(runbook, started)` and `runs(outcome, started)` serve
/// the order and the filters; the cursor keeps every page a short index walk. Text, which no index
/// serves, is looked for in the newest `textScanLimit` runs the other filters and the cursor leave:
/// a page costs a bounded scan however long the history.
extension SQLiteRunStore: RunListing {
    /// Runs a text search looks through per page.
    public static let textScanLimit = 10_000

    public func listRuns(_ q: RunListQuery) throws -> [RunRecord] {
        var sql = "SELECT * FROM runs WHERE 1 = 1"
        var args: [any DatabaseValueConvertible] = []
        if let r = q.runbook { sql += " AND runbook = ?"; args.append(r) }
        if let o = q.outcome { sql += " AND outcome = ?"; args.append(o) }
        switch q.status {
        case .finished: sql += " AND outcome IS NOT NULL"
        case .running: sql += " AND outcome IS NULL AND id NOT IN (SELECT run FROM gates WHERE status = 'open')"
        case .awaitingApproval: sql += " AND outcome IS NULL AND id IN (SELECT run FROM gates WHERE status = 'open')"
        case nil: break
        }
        if let b = q.before {
            sql += " AND (started, id) < ((SELECT started FROM runs WHERE id = ?), ?)"
            args += [b, b]
        }
        if let p = q.likePattern {
            // SQLite's LIKE ignores ASCII case by itself.
            sql = "SELECT * FROM (\(sql) ORDER BY started DESC, id DESC LIMIT \(Self.textScanLimit))"
                + " WHERE (id LIKE ? ESCAPE '\\' OR runbook LIKE ? ESCAPE '\\' OR trigger LIKE ? ESCAPE '\\' OR fingerprint LIKE ? ESCAPE '\\')"
            args += [p, p, p, p]
        }
        sql += " ORDER BY started DESC, id DESC LIMIT ?"
        args.append(max(1, min(q.limit, 500)))
        let arguments = StatementArguments(args.map { $0.databaseValue })
        return try read { db in try RunRecord.fetchAll(db, sql: sql, arguments: arguments) }
    }
}
