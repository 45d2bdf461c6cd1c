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
        let (plan, starts): (AdmissionPlan, Set<String>) = try sync(admission: true) { client in
            try await client.withTransaction(logger: log) { conn in
                // One admission at a time across every replica and the CLI: each sees the ones before it.
                let snapshot = try await Self.lockAndSnapshot(conn, lock: lockKey, query, log)
                let plan = AdmissionPlan(requests, snapshot: snapshot, now: now)
                // Each admitted run's `run.started` goes in with its row: one statement, not one more per run.
                var starts: [(runID: String, line: String)] = []
                for (request, decision) in zip(requests, plan.decisions) {
                    if case .admitted(let id, _) = decision, let line = request.startLine { starts.append((id, line())) }
                }
                try await Self.insert(conn, plan.inserts, owner: owner, leaseSeconds: secs, starts: starts, log)
                if !plan.repeats.isEmpty {
                    _ = try await conn.rows(PreparedStatements.CountRepeatRefusals(repeats: plan.repeats), logger: log)
                }
                return (plan, Set(starts.map(\.runID)))
            }
        }
        return plan.decisions.map { d in
            switch d {
            case .duplicate(let id): return .duplicate(runID: id)
            case .refused(let r, let id): return .refused(r, runID: id)
            case .admitted(let id, let overridden):
                return .admitted(lease: Lease(store: self, runID: id, startRecorded: starts.contains(id)), overridden: overridden)
            }
        }
    }

    /// Takes admission's lock and reads what `query` asks, in one round trip
    /// (`runbook_admission_snapshot`, migration 6): one query per guard kind, each after the lock.
    static func lockAndSnapshot(_ conn: PostgresConnection, lock lockKey: Int64, _ query: AdmissionQuery, _ log: Logger) async throws -> AdmissionSnapshot {
        var s = AdmissionSnapshot()
        let (fps, keys, active, starts) = (query.fingerprints, query.lockKeys, query.activeRunbooks, query.startsRunbooks)
        let (changesSince, startsSince) = (query.changesSince, query.startsSince)
        let rows = try await conn.rows(PreparedStatements.AdmissionSnapshot(
            lockKey: lockKey, fingerprints: fps, lockKeys: keys, changesSince: changesSince,
            activeRunbooks: active, startsSince: startsSince, startsRunbooks: starts), logger: log)
        for (kind, runbook, a, b, c, d, at, n) in rows {
            switch kind {
            case 1:
                guard let runbook, let a, let b else { continue }
                s.addAlertRow(runbook: runbook, fingerprint: a, id: b, refusedBy: d, outcome: c)
            case 2:
                guard let runbook, let a, let b else { continue }
                s.addLockHolder(runbook: runbook, key: a, id: b)
            case 3:
                if let at { s.recentChanges.append(at) }
            case 4:
                if let runbook, let n { s.active[runbook] = n }
            case 5:
                if let runbook, let at { s.addStart(runbook: runbook, key: a, started: at) }
            default:
                continue
            }
        }
        return s
    }

    /// Inserts rows with one statement; an open row (no outcome) gets `owner` and a lease when
    /// `owner` is given (admitted runs), none otherwise (drills recording themselves). `starts` are
    /// the first events of admitted runs, appended to their timelines in the same statement.
    static func insert(_ conn: PostgresConnection, _ records: [RunRecord], owner: String?, leaseSeconds: Double,
                       starts: [(runID: String, line: String)] = [], _ log: Logger) async throws {
        guard !records.isEmpty else { return }
        let (startIDs, startLines) = (starts.map(\.runID), starts.map(\.line))
        _ = try await conn.rows(PreparedStatements.InsertRuns(
            startIDs: startIDs, startLines: startLines, owner: owner, leaseSeconds: leaseSeconds, records: records), logger: log)
    }
}
