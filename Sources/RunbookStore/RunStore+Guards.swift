import Foundation
import GRDB
import RunbookCore

extension RunStore {
    /// A run asking to start: its row as it will be written, and what admission must check.
    public struct AdmissionRequest: Sendable {
        public var runbook: Runbook
        public var record: RunRecord
        /// Check cooldown, max_runs and lock (not for dry runs and drills, which change nothing).
        public var checkGuards = true
        /// `--force`: cooldown and max_runs refusals are overridden (a lock never is).
        public var force = false
        /// The change breaker (`serve --max-changes N/PER`): no new run while N changes were applied,
        /// by all runbooks, within PER seconds.
        public var maxChanges: (count: Int, per: Double)?
        /// A change freeze in force (checked after lock, max_active, cooldown and max_runs; `--force`
        /// overrides it on the CLI, recorded).
        public var freeze: GuardCheck.Refusal?
        /// A refusal decided before admission (a param that failed its pattern, `guards.auto`): it is
        /// recorded, counted, with the others.
        public var refusal: GuardCheck.Refusal?

        public init(runbook: Runbook, record: RunRecord) {
            self.runbook = runbook
            self.record = record
        }
    }

    /// What admission decided.
    public enum AdmissionDecision: Sendable {
        /// The run's row is written and its lease held; `overridden` is the refusal `--force` set aside.
        case admitted(lease: any RunHold, lock: (any RunHold)?, overridden: GuardCheck.Refusal?)
        /// Refused by a guard; recorded in `runID`'s row (a new row, or one counting repeats of this alert's refusal).
        case refused(GuardCheck.Refusal, runID: String)
        /// The alert already started this run, which is not resolved yet; nothing is written.
        case duplicate(runID: String)
    }

    /// Decides whether a run may start and records it, in one `BEGIN IMMEDIATE` transaction.
    /// - Throws: `StoreError` when the state cannot be written; the run must then not start.
    public func admit(_ request: AdmissionRequest, now: Date) throws -> AdmissionDecision {
        try admitAll([request], now: now)[0]
    }

    /// Decides and records many runs (one alert payload) in one `BEGIN IMMEDIATE` transaction, so two
    /// processes (or two server requests) can never both pass the same guard: dedupe by fingerprint,
    /// the lock, cooldown and max_runs are read and each run's row written while the database's write
    /// lock is held, and each request sees the ones before it. An admitted run's lease is taken before
    /// its row exists, so nobody ever sees an open run without a live owner. Refusals are rows, never
    /// files; a repeat refusal of one alert by one guard adds to a count.
    /// - Throws: `StoreError` when the state cannot be written; then nothing is admitted.
    public func admitAll(_ requests: [AdmissionRequest], now: Date) throws -> [AdmissionDecision] {
        var taken: [(any RunHold, (any RunHold)?)] = []
        do {
            return try pool.writeWithoutTransaction { db -> [AdmissionDecision] in
                var decisions: [AdmissionDecision] = []
                try db.inTransaction(.immediate) {
                    decisions = []
                    for request in requests {
                        let d = try decide(db, request, now: now)
                        if case .admitted(let lease, let lock, _) = d { taken.append((lease, lock)) }
                        decisions.append(d)
                    }
                    return .commit
                }
                return decisions
            }
        } catch {
            for (lease, lock) in taken {
                lease.release()
                lock?.release()
            }
            throw StoreError(path: directory + "/runbook.sqlite", error)
        }
    }

    func decide(_ db: Database, _ request: AdmissionRequest, now: Date) throws -> AdmissionDecision {
        let runbook = request.runbook
        var record = request.record
        let lockKey = record.lockKey
        if let fp = record.fingerprint, let existing = try String.fetchOne(db.cachedStatement(sql: """
            SELECT id FROM runs WHERE runbook = ? AND fingerprint = ? AND resolved_at IS NULL
            AND (outcome IS NULL OR outcome != 'refused') ORDER BY started DESC LIMIT 1
            """), arguments: [runbook.name, fp]) {
            return .duplicate(runID: existing)
        }
        var held: RunLock?
        var facts = AdmissionFacts()
        if request.checksGuards {
            if let key = lockKey {
                held = try tryLock(runbook: runbook.name, key: key)
                if held == nil {
                    facts.lockBusy = true
                    facts.lockHolder = try String.fetchOne(db, sql: """
                        SELECT id FROM runs WHERE runbook = ? AND lock_key = ? AND outcome IS NULL AND dry_run = 0 AND drill = 0
                        ORDER BY started DESC LIMIT 1
                        """, arguments: [runbook.name, key])
                }
            }
            if let breaker = request.maxChanges {
                facts.recentChanges = try Date.fetchAll(db.cachedStatement(sql: "SELECT at FROM changes WHERE at >= ? ORDER BY at"),
                                                        arguments: [now.addingTimeInterval(-breaker.per)])
            }
            if runbook.guards.maxActive != nil {
                // Open runs of this runbook, whatever their keys (a dead owner's run is finalised on open).
                facts.active = try Int.fetchOne(db.cachedStatement(sql: """
                    SELECT COUNT(*) FROM runs WHERE runbook = ? AND outcome IS NULL AND dry_run = 0 AND drill = 0
                    """), arguments: [runbook.name]) ?? 0
            }
            if request.startsWindow > 0 {
                facts.earlierStarts = try Date.fetchAll(db, sql: """
                    SELECT started FROM runs WHERE runbook = ? AND lock_key IS ? AND dry_run = 0 AND drill = 0
                    AND (outcome IS NULL OR outcome != 'refused') AND started >= ? ORDER BY started
                    """, arguments: [runbook.name, lockKey, now.addingTimeInterval(-request.startsWindow)])
            }
        }
        let (refusal, overridden) = AdmissionRules.decide(request, facts: facts, now: now)
        if let r = refusal {
            held?.release()
            if let fp = record.fingerprint, let existing = try String.fetchOne(db.cachedStatement(sql: """
                SELECT id FROM runs WHERE runbook = ? AND fingerprint = ? AND outcome = 'refused' AND refusal_guard = ?
                AND resolved_at IS NULL ORDER BY started DESC LIMIT 1
                """), arguments: [runbook.name, fp, r.guardName]) {
                try db.cachedStatement(sql: """
                    UPDATE runs SET refused_count = COALESCE(refused_count, 1) + 1, refusal_message = ?, refusal_until = ? WHERE id = ?
                    """).execute(arguments: [r.message, r.until, existing])
                return .refused(r, runID: existing)
            }
            record.outcome = RunOutcome.refused.rawValue
            record.durationMs = 0
            record.refusalGuard = r.guardName
            record.refusalMessage = r.message
            record.refusalUntil = r.until
            record.refusedCount = 1
            try record.insert(db)
            return .refused(r, runID: record.id)
        }
        let lease = try RunLease.take(path: leasePath(record.id))
        do {
            try record.insert(db)
        } catch {
            lease.release(removing: true)
            held?.release()
            throw error
        }
        return .admitted(lease: lease, lock: held, overridden: overridden)
    }

    /// The events of a refused run: its start, the `guard.refused` with guard and until, and its end.
    public static func refusalEvents(start: TimelineEvent, refusal r: GuardCheck.Refusal) -> [TimelineEvent] {
        var e = TimelineEvent(time: start.time, run: start.run, event: "guard.refused")
        e.guardName = r.guardName
        e.until = r.until
        e.message = r.message
        var end = TimelineEvent(time: start.time, run: start.run, event: "run.finished")
        end.outcome = RunOutcome.refused.rawValue
        end.durationMs = 0
        end.message = "refused by guard \(r.guardName)"
        return [start, e, end]
    }
}
