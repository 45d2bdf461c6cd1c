import Foundation
import GRDB
import RunbookCore
import RunbookStoreContract

/// Admission in one `BEGIN IMMEDIATE` transaction: one query per guard kind for the whole batch,
/// the decisions made in memory (`AdmissionPlan`), then the rows written.
extension SQLiteRunStore {
    /// Decides whether a run may start and records it.
    /// - Throws: `StoreError` when the state cannot be written; the run must then not start.
    public func admit(_ request: AdmissionRequest, now: Date) throws -> AdmissionDecision {
        try admitAll([request], now: now)[0]
    }

    /// Decides and records many runs (one alert payload) in one `BEGIN IMMEDIATE` transaction, so two
    /// processes (or two server requests) can never both pass the same guard: dedupe by fingerprint,
    /// the lock (an open run with the key), cooldown and max_runs are read and each run's row written
    /// while the database's write lock is held, and each request sees the ones before it. An
    /// admitted run's lease is taken before its row exists, so nobody ever sees an open run without a
    /// live owner. Refusals are rows, never files; a repeat refusal of one alert by one guard adds to
    /// a count. The batch costs one query per guard kind, whatever its size.
    /// - Throws: `StoreError` when the state cannot be written; then nothing is admitted.
    public func admitAll(_ requests: [AdmissionRequest], now: Date) throws -> [AdmissionDecision] {
        let query = AdmissionQuery(requests, now: now)
        var taken: [RunLease] = []
        do {
            try finalizeDeadHolders(keys: query.lockKeys, now: now)
            StoreThreads.assertNotInTask("SQLite admission in \(directory)")
            return try pool.writeWithoutTransaction { db -> [AdmissionDecision] in
                var decisions: [AdmissionDecision] = []
                try db.inTransaction(.immediate) {
                    for lease in taken { lease.release(removing: true) }
                    taken = []
                    let plan = AdmissionPlan(requests, snapshot: try Self.snapshot(db, query), now: now)
                    for record in plan.inserts where record.outcome == nil {
                        taken.append(try RunLease.take(path: leasePath(record.id)))
                    }
                    try Self.write(db, plan)
                    var leases = taken.makeIterator()
                    decisions = plan.decisions.map { d in
                        switch d {
                        case .duplicate(let id): return .duplicate(runID: id)
                        case .refused(let r, let id): return .refused(r, runID: id)
                        case .admitted(_, let overridden): return .admitted(lease: leases.next()!, overridden: overridden)
                        }
                    }
                    return .commit
                }
                return decisions
            }
        } catch {
            for lease in taken { lease.release(removing: true) }
            throw StoreError(path: directory + "/runbook.sqlite", error)
        }
    }

    /// Writes what `plan` decided: its new rows and its repeat refusals, each kind with one prepared
    /// statement reused for every row (a batch shares a few dates: each is formatted once).
    static func write(_ db: Database, _ plan: AdmissionPlan) throws {
        var dates: [Date: DatabaseValue] = [:]
        func value(_ date: Date?) -> DatabaseValue {
            guard let date else { return .null }
            if let v = dates[date] { return v }
            let v = date.databaseValue
            dates[date] = v
            return v
        }
        // The columns RunRecord encodes (`RunRecord.CodingKeys`), as `record.insert(db)` writes them;
        // `insertRows` rows a statement, the rest one at a time.
        var rows = plan.inserts[...]
        while !rows.isEmpty {
            let n = rows.count >= insertRows ? insertRows : 1
            let insert = try db.cachedStatement(sql: n == 1 ? insertOne : insertMany)
            var arguments: [(any DatabaseValueConvertible)?] = []
            arguments.reserveCapacity(n * 14)
            for r in rows.prefix(n) {
                arguments += [r.id, r.runbook, r.trigger, r.fingerprint, r.outcome, value(r.started), r.durationMs, r.dryRun, r.drill,
                              r.lockKey, r.refusalGuard, r.refusalMessage, value(r.refusalUntil), r.refusedCount] as [(any DatabaseValueConvertible)?]
            }
            insert.setUncheckedArguments(StatementArguments(arguments))
            try insert.execute()
            rows = rows.dropFirst(n)
        }
        if !plan.repeats.isEmpty {
            let update = try db.cachedStatement(sql: """
                UPDATE runs SET refused_count = COALESCE(refused_count, 1) + ?, refusal_message = ?, refusal_until = ? WHERE id = ?
                """)
            for r in plan.repeats {
                update.setUncheckedArguments([r.added, r.message, value(r.until), r.runID])
                try update.execute()
            }
        }
    }

    /// Rows one INSERT writes when a batch has that many left.
    static let insertRows = 50
    static let insertOne = insertSQL(rows: 1)
    static let insertMany = insertSQL(rows: insertRows)
    static func insertSQL(rows: Int) -> String {
        "INSERT INTO runs (id, runbook, trigger, fingerprint, outcome, started, duration_ms, dry_run, drill, lock_key, "
            + "refusal_guard, refusal_message, refusal_until, refused_count) VALUES "
            + repeatElement("(" + repeatElement("?", count: 14).joined(separator: ", ") + ")", count: rows).joined(separator: ", ")
    }

    /// Reads what `query` asks, one statement per guard kind.
    static func snapshot(_ db: Database, _ query: AdmissionQuery) throws -> AdmissionSnapshot {
        var s = AdmissionSnapshot()
        if !query.fingerprints.isEmpty {
            let rows = try Row.fetchCursor(db, sql: """
                SELECT runbook, fingerprint, id, outcome, refusal_guard FROM runs
                WHERE fingerprint IN (SELECT value FROM json_each(?)) AND resolved_at IS NULL ORDER BY started DESC, rowid DESC
                """, arguments: [jsonArray(query.fingerprints)])
            while let row = try rows.next() {
                s.addAlertRow(runbook: row["runbook"], fingerprint: row["fingerprint"], id: row["id"], refusedBy: row["refusal_guard"], outcome: row["outcome"])
            }
        }
        if !query.lockKeys.isEmpty {
            let rows = try Row.fetchCursor(db, sql: """
                SELECT runbook, lock_key, id FROM runs WHERE outcome IS NULL AND dry_run = 0 AND drill = 0
                AND lock_key IN (SELECT value FROM json_each(?)) ORDER BY started DESC, rowid DESC
                """, arguments: [jsonArray(query.lockKeys)])
            while let row = try rows.next() { s.addLockHolder(runbook: row["runbook"], key: row["lock_key"], id: row["id"]) }
        }
        if let since = query.changesSince {
            s.recentChanges = try Date.fetchAll(db, sql: "SELECT at FROM changes WHERE at >= ? ORDER BY at", arguments: [since])
        }
        if !query.activeRunbooks.isEmpty {
            let rows = try Row.fetchCursor(db, sql: """
                SELECT runbook, COUNT(*) AS n FROM runs WHERE outcome IS NULL AND dry_run = 0 AND drill = 0
                AND runbook IN (SELECT value FROM json_each(?)) GROUP BY runbook
                """, arguments: [jsonArray(query.activeRunbooks)])
            while let row = try rows.next() {
                let (name, n): (String, Int) = (row["runbook"], row["n"])
                s.active[name] = n
            }
        }
        if let since = query.startsSince, !query.startsRunbooks.isEmpty {
            let rows = try Row.fetchCursor(db, sql: """
                SELECT runbook, lock_key, started FROM runs WHERE started >= ? AND runbook IN (SELECT value FROM json_each(?))
                AND dry_run = 0 AND drill = 0 AND (outcome IS NULL OR outcome != 'refused') ORDER BY started
                """, arguments: [since, jsonArray(query.startsRunbooks)])
            while let row = try rows.next() { s.addStart(runbook: row["runbook"], key: row["lock_key"], started: row["started"]) }
        }
        return s
    }
}
