import Foundation
import Logging
import PostgresNIO
import RunbookCore
import RunbookStore

/// Admission: one transaction, serialised across every replica and the CLI by an advisory lock.
extension PostgresStore {
    public func admitAll(_ requests: [RunStore.AdmissionRequest], now: Date) throws -> [RunStore.AdmissionDecision] {
        let owner = self.owner, secs = Self.leaseSeconds, lockKey = Self.admissionLock, log = logger
        let decided: [Admitted] = try sync { client in
            try await client.withTransaction(logger: log) { conn in
                // One admission at a time across every replica and the CLI: each sees the ones before it.
                try await conn.query("SELECT pg_advisory_xact_lock(\(lockKey))", logger: log).drain()
                var out: [Admitted] = []
                for r in requests { out.append(try await Self.decide(conn, r, now: now, owner: owner, leaseSeconds: secs)) }
                return out
            }
        }
        return decided.map { d in
            switch d {
            case .duplicate(let id): return .duplicate(runID: id)
            case .refused(let r, let id): return .refused(r, runID: id)
            case .admitted(let id, let overridden): return .admitted(lease: Lease(store: self, runID: id), lock: nil, overridden: overridden)
            }
        }
    }

    enum Admitted: Sendable {
        case admitted(String, GuardCheck.Refusal?)
        case refused(GuardCheck.Refusal, String)
        case duplicate(String)
    }

    static func decide(_ conn: PostgresConnection, _ request: RunStore.AdmissionRequest, now: Date, owner: String, leaseSeconds: Double) async throws -> Admitted {
        let log = Logger(label: "runbook.postgres.admit")
        let runbook = request.runbook
        var record = request.record
        let name = runbook.name
        if let fp = record.fingerprint {
            let existing = try await conn.query("""
                SELECT id FROM runs WHERE runbook = \(name) AND fingerprint = \(fp) AND resolved_at IS NULL
                AND (outcome IS NULL OR outcome <> 'refused') ORDER BY started DESC LIMIT 1
                """, logger: log).all(String.self)
            if let id = existing.first { return .duplicate(id) }
        }
        var facts = AdmissionFacts()
        if request.checksGuards {
            if let key = record.lockKey {
                // The lock is "an open run holds this key", read in the serialised transaction.
                facts.lockHolder = try await conn.query("""
                    SELECT id FROM runs WHERE runbook = \(name) AND lock_key = \(key) AND outcome IS NULL AND NOT dry_run AND NOT drill
                    ORDER BY started DESC LIMIT 1
                    """, logger: log).all(String.self).first
                facts.lockBusy = facts.lockHolder != nil
            }
            if let breaker = request.maxChanges {
                let since = now.addingTimeInterval(-breaker.per)
                facts.recentChanges = try await conn.query("SELECT at FROM changes WHERE at >= \(since) ORDER BY at", logger: log).all(Date.self)
            }
            if runbook.guards.maxActive != nil {
                facts.active = try await conn.query("""
                    SELECT count(*) FROM runs WHERE runbook = \(name) AND outcome IS NULL AND NOT dry_run AND NOT drill
                    """, logger: log).all(Int.self).first ?? 0
            }
            if request.startsWindow > 0 {
                let since = now.addingTimeInterval(-request.startsWindow)
                facts.earlierStarts = try await conn.query("""
                    SELECT started FROM runs WHERE runbook = \(name) AND lock_key IS NOT DISTINCT FROM \(record.lockKey)
                    AND NOT dry_run AND NOT drill AND (outcome IS NULL OR outcome <> 'refused') AND started >= \(since) ORDER BY started
                    """, logger: log).all(Date.self)
            }
        }
        let (refusal, overridden) = AdmissionRules.decide(request, facts: facts, now: now)
        if let r = refusal {
            if let fp = record.fingerprint, let existing = try await conn.query("""
                SELECT id FROM runs WHERE runbook = \(name) AND fingerprint = \(fp) AND outcome = 'refused' AND refusal_guard = \(r.guardName)
                AND resolved_at IS NULL ORDER BY started DESC LIMIT 1
                """, logger: log).all(String.self).first {
                try await conn.query("""
                    UPDATE runs SET refused_count = COALESCE(refused_count, 1) + 1, refusal_message = \(r.message), refusal_until = \(r.until)
                    WHERE id = \(existing)
                    """, logger: log).drain()
                return .refused(r, existing)
            }
            record.outcome = RunOutcome.refused.rawValue
            try await conn.query("""
                INSERT INTO runs (id, runbook, trigger, fingerprint, outcome, started, duration_ms, dry_run, drill, lock_key,
                    refusal_guard, refusal_message, refusal_until, refused_count)
                VALUES (\(record.id), \(name), \(record.trigger), \(record.fingerprint), 'refused', \(record.started), 0, \(record.dryRun),
                    \(record.drill), \(record.lockKey), \(r.guardName), \(r.message), \(r.until), 1)
                """, logger: log).drain()
            return .refused(r, record.id)
        }
        try await conn.query("""
            INSERT INTO runs (id, runbook, trigger, fingerprint, started, dry_run, drill, lock_key, owner, lease_until)
            VALUES (\(record.id), \(name), \(record.trigger), \(record.fingerprint), \(record.started), \(record.dryRun), \(record.drill),
                \(record.lockKey), \(owner), now() + make_interval(secs => \(leaseSeconds)))
            """, logger: log).drain()
        return .admitted(record.id, overridden)
    }
}
