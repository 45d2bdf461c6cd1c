import Dispatch
import Foundation
import Logging
import PostgresNIO
import RunbookCore
import RunbookStoreContract

/// Ownership: leases renewed every 2 s, and claims of runs whose owner stopped renewing.
extension PostgresRunStore {
    /// Renews the leases of the runs this process holds, every 2 s, on a Dispatch timer.
    func startRenewal() {
        let t = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "runbook.postgres.renew"))
        t.schedule(deadline: .now() + Self.renewEvery, repeating: Self.renewEvery, leeway: .milliseconds(100))
        t.setEventHandler { [weak self] in self?.renew() }
        t.resume()
        renewal = t
    }

    /// Runs this process held whose lease another process took (it was cut off from the database
    /// for longer than a lease): the launcher must stop driving them.
    public var onLost: (@Sendable ([String]) -> Void)? {
        get { lock.withLock { lostHandler } }
        set { lock.withLock { lostHandler = newValue } }
    }

    func renew() {
        let ids = lock.withLock { Array(held) }
        guard !ids.isEmpty else { return }
        let owner = self.owner, secs = Self.leaseSeconds
        guard let kept = try? sync({ client in
            try await client.query("""
                UPDATE runs SET lease_until = now() + make_interval(secs => \(secs))
                WHERE id = ANY(\(ids)) AND owner = \(owner) AND outcome IS NULL RETURNING id
                """).all(String.self)
        }) else { return }
        let open = Set(kept)
        let missing = ids.filter { !open.contains($0) }
        guard !missing.isEmpty else { return }
        // Finished runs drop out quietly; runs another owner took are lost.
        let finishedIDs: [String] = (try? sync { client -> [String] in
            try await client.query("SELECT id FROM runs WHERE id = ANY(\(missing)) AND outcome IS NOT NULL").all(String.self)
        }) ?? []
        let finished = Set(finishedIDs)
        let lost = missing.filter { !finished.contains($0) }
        lock.withLock { held.subtract(lost); held.subtract(finished) }
        if !lost.isEmpty, let handler = onLost { handler(lost) }
    }

    /// A run this process owns: renewed until released; released early (a paused run left at
    /// shutdown) it expires at once, so another replica takes it.
    final class Lease: RunHold, @unchecked Sendable {
        let store: PostgresRunStore
        let runID: String
        init(store: PostgresRunStore, runID: String) {
            self.store = store
            self.runID = runID
            store.lock.withLock { _ = store.held.insert(runID) }
        }
        func release() {
            let removed = store.lock.withLock { store.held.remove(runID) != nil }
            guard removed else { return }
            let (id, owner) = (runID, store.owner)
            try? store.execute("UPDATE runs SET lease_until = now() WHERE id = \(id) AND owner = \(owner) AND outcome IS NULL")
        }
    }

    /// Claims open runs whose lease expired (their owner died), at most `limit`, skipping rows another
    /// replica is claiming and runs this process owns (a late renewal of its own is not a death).
    /// A claimed run paused at a resumable gate whose deadline passed is ended here (not resumed,
    /// the same rule as on SQLite). Returns the others, each with its previous owner; the caller
    /// takes them over.
    public func claimExpiredRuns(limit: Int = 20) throws -> [(runID: String, previousOwner: String?, lease: any RunHold)] {
        try claim(limit: limit, pausedOnly: false, now: Date()).map { ($0.runID, $0.previousOwner, $0.lease) }
    }

    /// Takes the paused runs a new server resumes: open, their lease expired (a server left them
    /// paused at shutdown, or died), waiting at a resumable gate whose deadline is ahead.
    public func takePausedRuns(now: Date) throws -> [(runID: String, lease: any RunHold)] {
        try claim(limit: 200, pausedOnly: true, now: now).map { ($0.runID, $0.lease) }
    }

    /// Claims expired runs in one transaction (`FOR UPDATE SKIP LOCKED`); ends those paused past
    /// their deadline.
    func claim(limit: Int, pausedOnly: Bool, now: Date) throws -> [(runID: String, previousOwner: String?, lease: any RunHold)] {
        let owner = self.owner, secs = Self.leaseSeconds, log = logger
        let rows = try sync { client in
            try await client.withTransaction(logger: log) { conn in
                let claimed = try await conn.query("""
                    SELECT id, owner, EXISTS (SELECT 1 FROM gates g WHERE g.run = runs.id AND g.status = 'open' AND g.resumable AND g.deadline <= \(now))
                    FROM runs WHERE outcome IS NULL AND NOT dry_run AND NOT drill AND lease_until < now()
                    AND owner IS DISTINCT FROM \(owner)
                    AND (NOT \(pausedOnly) OR EXISTS (SELECT 1 FROM gates g WHERE g.run = runs.id AND g.status = 'open' AND g.resumable AND g.deadline > \(now)))
                    ORDER BY started LIMIT \(limit) FOR UPDATE SKIP LOCKED
                    """, logger: log).all((String, String?, Bool).self)
                let ids = claimed.map(\.0)
                if !ids.isEmpty {
                    try await conn.query("UPDATE runs SET owner = \(owner), lease_until = now() + make_interval(secs => \(secs)) WHERE id = ANY(\(ids))",
                                         logger: log).drain()
                }
                return claimed.map { ($0.0, $0.1, $0.2) }
            }
        }
        var out: [(runID: String, previousOwner: String?, lease: any RunHold)] = []
        let stale = rows.contains(where: \.2) ? try staleGates(now: now) : [:]
        for (id, previous, pastDeadline) in rows {
            let lease = Lease(store: self, runID: id)
            if pastDeadline, let deadline = stale[id], let record = try run(id) {
                try finalize(runID: id, started: record.started, message: RunEndings.staleGateMessage(deadline: deadline), now: now)
                lease.release()
                continue
            }
            out.append((id, previous, lease))
        }
        return out
    }
}
