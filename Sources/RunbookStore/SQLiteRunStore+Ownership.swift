import Foundation
import GRDB
import RunbookCore
import RunbookStoreContract

/// Runs whose owner is gone: finalised (their own end adopted, or one `interrupted`), or taken by a
/// new server when they were paused for approval with their deadline ahead.
extension SQLiteRunStore {
    /// Finalises runs whose owner died (no outcome, and their lease is free) and that no server will
    /// resume: each gets one closing `run.finished` `interrupted` naming the last completed step and
    /// the changes left in place, or, when the owner wrote its `run.finished` but died before closing
    /// the row, that outcome. A paused run whose deadline passed is ended saying so. A run whose
    /// owner is alive is left alone. Their changes are never repeated. Returns their ids.
    @discardableResult
    public func finalizeDeadRuns(now: Date) throws -> [String] {
        let open = try read { db in try RunRecord.filter(Column("outcome") == nil).fetchAll(db) }
        return try finalizeIfDead(open, now: now)
    }

    /// Finalises those of `candidates` whose owner is gone and that are not paused with a deadline ahead.
    func finalizeIfDead(_ candidates: [RunRecord], now: Date) throws -> [String] {
        guard !candidates.isEmpty else { return [] }
        let paused = Set(try pausedRunIDs(now: now))
        let stale = try staleGates(now: now)
        var done: [String] = []
        for r in candidates where !paused.contains(r.id) {
            guard let lease = RunLease.takeIfFree(path: leasePath(r.id)) else { continue }
            defer { lease.release(removing: true) }
            // The owner may have closed the row between the read and the lease.
            guard try read({ db in try RunRecord.fetchOne(db, key: r.id) })?.outcome == nil else { continue }
            try closeAbandoned(r, staleDeadline: stale[r.id], now: now)
            done.append(r.id)
        }
        return done
    }

    /// Writes a closing: the interrupted event when there is one, the row's outcome, its gates closed.
    public func close(_ runID: String, _ closing: RunEndings.Closing) throws {
        switch closing {
        case .adopt(let outcome, let ms):
            try finish(runID: runID, outcome: outcome, durationMs: ms)
        case .interrupt(let end):
            try TimelineFileSink(path: timelinePath(runID)).write(end)
            try finish(runID: runID, outcome: .interrupted, durationMs: end.durationMs ?? 0)
        }
        try write { db in try db.execute(sql: "UPDATE gates SET status = 'closed' WHERE run = ? AND status = 'open'", arguments: [runID]) }
    }

    /// Open runs at a resumable gate whose deadline passed, with that deadline.
    func staleGates(now: Date) throws -> [String: Date] {
        try read { db in
            var out: [String: Date] = [:]
            for row in try Row.fetchAll(db, sql: """
                SELECT g.run, MIN(g.deadline) AS deadline FROM gates g JOIN runs r ON r.id = g.run
                WHERE g.status = 'open' AND g.resumable = 1 AND r.outcome IS NULL AND g.deadline <= ? GROUP BY g.run
                """, arguments: [now]) {
                out[row["run"]] = row["deadline"]
            }
            return out
        }
    }

    /// Open runs that wait only for approval, for a server to resume: each has an open gate opened
    /// by a server (`resumable`) whose deadline is ahead, and no step started and not finished.
    public func pausedRunIDs(now: Date = Date()) throws -> [String] {
        let candidates = try read { db in
            try String.fetchAll(db, sql: """
                SELECT DISTINCT g.run FROM gates g JOIN runs r ON r.id = g.run
                WHERE g.status = 'open' AND g.resumable = 1 AND r.outcome IS NULL AND g.deadline > ?
                """, arguments: [now])
        }
        return candidates.filter { RunEndings.isQuietlyPaused(timeline($0)) }
    }

    /// Takes the paused runs whose owner is gone (their lease is free), each with its lease under
    /// one more epoch (the old owner's writes are refused from then on).
    public func takePausedRuns(now: Date) throws -> [(runID: String, lease: any RunHold)] {
        try pausedRunIDs(now: now).compactMap { id in
            guard var lease = RunLease.takeIfFree(path: leasePath(id)) else { return nil }
            if lease.isPlaceholder {
                lease.release(removing: false)
                guard let fresh = try? RunLease.take(path: leasePath(id)) else { return nil }
                lease = fresh
            }
            try bumpEpoch(lease)
            return (id, lease)
        }
    }

    /// Before admission: open live runs holding any of `keys` whose owner died (and that nobody will
    /// resume) are finalised, so a dead process never keeps a lock.
    func finalizeDeadHolders(keys: [String], now: Date) throws {
        guard !keys.isEmpty else { return }
        let holders = try read { db in
            try RunRecord.fetchAll(db, sql: """
                SELECT * FROM runs WHERE outcome IS NULL AND dry_run = 0 AND drill = 0
                AND lock_key IN (SELECT value FROM json_each(?))
                """, arguments: [Self.jsonArray(keys)])
        }
        let dead = holders.filter { RunLease.takeIfFree(path: leasePath($0.id)).map { $0.release(removing: false); return true } ?? false }
        _ = try finalizeIfDead(dead, now: now)
    }

    /// `values` as a JSON array, for `json_each(?)`.
    static func jsonArray(_ values: [String]) -> String {
        "[" + values.map(JSONText.string).joined(separator: ",") + "]"
    }
}
