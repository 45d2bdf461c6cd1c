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
    /// (`runbook_admission_snapshot_arrays`, migration 8): one query per guard kind, each after the
    /// lock, each kind's rows as one row of arrays.
    static func lockAndSnapshot(_ conn: PostgresConnection, lock lockKey: Int64, _ query: AdmissionQuery, _ log: Logger) async throws -> AdmissionSnapshot {
        var s = AdmissionSnapshot()
        let (fps, keys, active, starts) = (query.fingerprints, query.lockKeys, query.activeRunbooks, query.startsRunbooks)
        let (changesSince, startsSince) = (query.changesSince, query.startsSince)
        let rows = try await conn.rows(PreparedStatements.AdmissionSnapshot(
            lockKey: lockKey, fingerprints: fps, lockKeys: keys, changesSince: changesSince,
            activeRunbooks: active, startsSince: startsSince, startsRunbooks: starts), logger: log)
        for (kind, runbooks, a, b, c, d, at, n) in rows {
            let (runbooks, a, b, c, d) = (runbooks?.elements ?? [], a?.elements ?? [], b?.elements ?? [], c?.elements ?? [], d?.elements ?? [])
            let (at, n) = (at?.elements ?? [], n?.elements ?? [])
            // One element per row in each array a kind uses: anything else is not read as fewer rows
            // (a guard that saw fewer would let through what it must refuse).
            let used: [Int] = switch kind {
            case 1: [runbooks.count, a.count, b.count, c.count, d.count]
            case 2: [runbooks.count, a.count, b.count]
            case 3: [at.count]
            case 4: [runbooks.count, n.count]
            case 5: [runbooks.count, a.count, at.count]
            default: []
            }
            guard Set(used).count <= 1 else {
                throw PostgresStoreError("runbook_admission_snapshot_arrays gave guard kind \(kind) arrays of different lengths \(used), so nothing was admitted: "
                    + "the function in the database is not the one this runbook version wrote (migration 8); run every replica on one version and restart one to migrate")
            }
            switch kind {
            case 1:
                for i in runbooks.indices {
                    guard let runbook = runbooks[i], let fingerprint = a[i], let id = b[i] else { continue }
                    s.addAlertRow(runbook: runbook, fingerprint: fingerprint, id: id, refusedBy: d[i], outcome: c[i])
                }
            case 2:
                for i in runbooks.indices {
                    guard let runbook = runbooks[i], let key = a[i], let id = b[i] else { continue }
                    s.addLockHolder(runbook: runbook, key: key, id: id)
                }
            case 3:
                s.recentChanges += at.compactMap { $0 }
            case 4:
                for i in runbooks.indices {
                    if let runbook = runbooks[i], let count = n[i] { s.active[runbook] = Int(count) }
                }
            case 5:
                for i in runbooks.indices {
                    if let runbook = runbooks[i], let started = at[i] { s.addStart(runbook: runbook, key: a[i], started: started) }
                }
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
