import Foundation
import Logging
import PostgresNIO
import RunbookCore
import RunbookStoreContract

/// Admission: one transaction, serialised across every replica and the CLI by an advisory lock; one
/// query per guard kind for the whole batch, the decisions made in memory (`AdmissionPlan`), then the
/// rows written with one statement each for inserts and repeat refusals.
extension PostgresRunStore {
    public func admitAll(_ requests: [AdmissionRequest], now: Date) throws -> [AdmissionDecision] {
        let owner = self.owner, secs = Self.leaseSeconds, lockKey = Self.admissionLock, log = logger
        let query = AdmissionQuery(requests, now: now)
        let plan: AdmissionPlan = try sync(admission: true) { client in
            try await client.withTransaction(logger: log) { conn in
                // One admission at a time across every replica and the CLI: each sees the ones before it.
                try await conn.query("SELECT pg_advisory_xact_lock(\(lockKey))", logger: log).drain()
                let plan = AdmissionPlan(requests, snapshot: try await Self.snapshot(conn, query, log), now: now)
                try await Self.insert(conn, plan.inserts, owner: owner, leaseSeconds: secs, log)
                if !plan.repeats.isEmpty {
                    let rows = try Self.json(plan.repeats.map { RepeatRow(id: $0.runID, n: $0.added, m: $0.message, u: $0.until?.timeIntervalSince1970) })
                    try await conn.query("""
                        UPDATE runs SET refused_count = COALESCE(runs.refused_count, 1) + x.n, refusal_message = x.m, refusal_until = to_timestamp(x.u)
                        FROM json_to_recordset(\(rows)::json) AS x(id text, n bigint, m text, u float8) WHERE runs.id = x.id
                        """, logger: log).drain()
                }
                return plan
            }
        }
        return plan.decisions.map { d in
            switch d {
            case .duplicate(let id): return .duplicate(runID: id)
            case .refused(let r, let id): return .refused(r, runID: id)
            case .admitted(let id, let overridden): return .admitted(lease: Lease(store: self, runID: id), overridden: overridden)
            }
        }
    }

    /// Reads what `query` asks, one statement per guard kind.
    static func snapshot(_ conn: PostgresConnection, _ query: AdmissionQuery, _ log: Logger) async throws -> AdmissionSnapshot {
        var s = AdmissionSnapshot()
        if !query.fingerprints.isEmpty {
            let fps = query.fingerprints
            for (runbook, fp, id, outcome, g) in try await conn.query("""
                SELECT runbook, fingerprint, id, outcome, refusal_guard FROM runs
                WHERE fingerprint = ANY(\(fps)) AND resolved_at IS NULL ORDER BY started DESC, id DESC
                """, logger: log).all((String, String, String, String?, String?).self) {
                s.addAlertRow(runbook: runbook, fingerprint: fp, id: id, refusedBy: g, outcome: outcome)
            }
        }
        if !query.lockKeys.isEmpty {
            let keys = query.lockKeys
            for (runbook, key, id) in try await conn.query("""
                SELECT runbook, lock_key, id FROM runs WHERE outcome IS NULL AND NOT dry_run AND NOT drill
                AND lock_key = ANY(\(keys)) ORDER BY started DESC, id DESC
                """, logger: log).all((String, String, String).self) {
                s.addLockHolder(runbook: runbook, key: key, id: id)
            }
        }
        if let since = query.changesSince {
            s.recentChanges = try await conn.query("SELECT at FROM changes WHERE at >= \(since) ORDER BY at", logger: log).all(Date.self)
        }
        if !query.activeRunbooks.isEmpty {
            let names = query.activeRunbooks
            for (runbook, n) in try await conn.query("""
                SELECT runbook, count(*) FROM runs WHERE outcome IS NULL AND NOT dry_run AND NOT drill AND runbook = ANY(\(names)) GROUP BY runbook
                """, logger: log).all((String, Int).self) {
                s.active[runbook] = n
            }
        }
        if let since = query.startsSince, !query.startsRunbooks.isEmpty {
            let names = query.startsRunbooks
            for (runbook, key, started) in try await conn.query("""
                SELECT runbook, lock_key, started FROM runs WHERE started >= \(since) AND runbook = ANY(\(names))
                AND NOT dry_run AND NOT drill AND (outcome IS NULL OR outcome <> 'refused') ORDER BY started
                """, logger: log).all((String, String?, Date).self) {
                s.addStart(runbook: runbook, key: key, started: started)
            }
        }
        return s
    }

    /// Inserts rows with one statement; an open row (no outcome) gets `owner` and a lease when
    /// `owner` is given (admitted runs), none otherwise (drills recording themselves).
    static func insert(_ conn: PostgresConnection, _ records: [RunRecord], owner: String?, leaseSeconds: Double, _ log: Logger) async throws {
        guard !records.isEmpty else { return }
        // RunRecord encodes with the table's column names; dates as seconds (`to_timestamp` keeps microseconds).
        let rows = try json(records)
        try await conn.query("""
            INSERT INTO runs (id, runbook, trigger, fingerprint, outcome, started, duration_ms, dry_run, drill, lock_key,
                refusal_guard, refusal_message, refusal_until, refused_count, owner, lease_until)
            SELECT x.id, x.runbook, x.trigger, x.fingerprint, x.outcome, to_timestamp(x.started), x.duration_ms, x.dry_run, x.drill,
                x.lock_key, x.refusal_guard, x.refusal_message, to_timestamp(x.refusal_until), x.refused_count,
                CASE WHEN x.outcome IS NULL THEN \(owner) END,
                CASE WHEN x.outcome IS NULL AND \(owner)::text IS NOT NULL THEN now() + make_interval(secs => \(leaseSeconds)) END
            FROM json_to_recordset(\(rows)::json) AS x(id text, runbook text, trigger text, fingerprint text, outcome text,
                started float8, duration_ms bigint, dry_run boolean, drill boolean, lock_key text, refusal_guard text,
                refusal_message text, refusal_until float8, refused_count bigint)
            """, logger: log).drain()
    }

    /// `rows` as a JSON array for `json_to_recordset`, dates as seconds since 1970.
    static func json<T: Encodable>(_ rows: [T]) throws -> String {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .secondsSince1970
        return String(decoding: try encoder.encode(rows), as: UTF8.self)
    }

    /// A row of `json_to_recordset` for repeat refusals.
    struct RepeatRow: Encodable {
        var id: String
        var n: Int
        var m: String
        var u: Double?
    }
}
