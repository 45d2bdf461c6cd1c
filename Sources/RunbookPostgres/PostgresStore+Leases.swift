import Dispatch
import Foundation
import Logging
import PostgresNIO
import RunbookCore
import RunbookStore

/// Ownership: leases renewed every 2 s, and claims of runs whose owner stopped renewing.
extension PostgresStore {
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
        let store: PostgresStore
        let runID: String
        init(store: PostgresStore, runID: String) {
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
    /// Returns each run with its previous owner; the caller takes them over.
    public func claimExpiredRuns(limit: Int = 20) throws -> [(runID: String, previousOwner: String?, lease: any RunHold)] {
        let owner = self.owner, secs = Self.leaseSeconds, log = logger
        let rows = try sync { client in
            try await client.withTransaction(logger: log) { conn in
                let claimed = try await conn.query("""
                    SELECT id, owner FROM runs WHERE outcome IS NULL AND NOT dry_run AND NOT drill AND lease_until < now()
                    AND owner IS DISTINCT FROM \(owner)
                    ORDER BY started LIMIT \(limit) FOR UPDATE SKIP LOCKED
                    """, logger: log).all((String, String?).self)
                for (id, _) in claimed {
                    try await conn.query("UPDATE runs SET owner = \(owner), lease_until = now() + make_interval(secs => \(secs)) WHERE id = \(id)",
                                         logger: log).collect()
                }
                return claimed.map { ($0.0, $0.1) }
            }
        }
        return rows.map { ($0.0, $0.1, Lease(store: self, runID: $0.0)) }
    }
}
