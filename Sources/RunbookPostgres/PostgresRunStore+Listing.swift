import Foundation
import PostgresNIO
import RunbookStoreContract

/// The run list's pages: `runs_started`, `runs_by_runbook_started` and `runs_by_outcome_started`
/// serve the order and the filters; the cursor keeps every page a short index walk. Only the filters
/// given are in the statement, so each shape gets its own plan. Text, which no index serves, is
/// looked for in the newest `textScanLimit` runs the other filters and the cursor leave: a page
/// costs a bounded scan however long the history.
extension PostgresRunStore: RunListing {
    /// Runs a text search looks through per page.
    public static let textScanLimit = 10_000

    public func listRuns(_ q: RunListQuery) throws -> [RunRecord] {
        var sql = "SELECT \(Self.runColumns) FROM runs WHERE true"
        var binds = PostgresBindings()
        func bind(_ v: some PostgresDynamicTypeEncodable) -> String {
            binds.append(v)
            return "$\(binds.count)"
        }
        if let r = q.runbook { sql += " AND runbook = \(bind(r))" }
        if let o = q.outcome { sql += " AND outcome = \(bind(o))" }
        switch q.status {
        case .finished: sql += " AND outcome IS NOT NULL"
        case .running: sql += " AND outcome IS NULL AND id NOT IN (SELECT run FROM gates WHERE status = 'open')"
        case .awaitingApproval: sql += " AND outcome IS NULL AND id IN (SELECT run FROM gates WHERE status = 'open')"
        case nil: break
        }
        if let b = q.before {
            let n = bind(b)
            sql += " AND (started, id) < ((SELECT started FROM runs WHERE id = \(n)), \(n))"
        }
        if let p = q.likePattern {
            let n = bind(p)
            sql = "SELECT * FROM (\(sql) ORDER BY started DESC, id DESC LIMIT \(Self.textScanLimit)) AS newest"
                + " WHERE (id ILIKE \(n) OR runbook ILIKE \(n) OR trigger ILIKE \(n) OR fingerprint ILIKE \(n))"
        }
        sql += " ORDER BY started DESC, id DESC LIMIT \(max(1, min(q.limit, 500)))"
        let query = PostgresQuery(unsafeSQL: sql, binds: binds)
        return try sync { try await Self.records(try await $0.query(query)) }
    }
}
