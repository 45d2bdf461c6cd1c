import Dispatch
import Foundation
import Logging
import PostgresNIO
import RunbookCore
import RunbookStoreContract

/// A run this process owns, as the store keeps it: the epoch its writes carry, and when its lease
/// was last confirmed (the moment the renewal that succeeded was sent, on this machine's clock).
struct HeldLease {
    var epoch: Int64
    var confirmed: DispatchTime
}

/// Ownership: fenced leases renewed every 2 s, given up when they cannot be renewed in time, and
/// claims of runs whose owner stopped renewing (each claim one more epoch).
extension PostgresRunStore {
    /// Starts the store's own renewal and give-up timers (the CLI; the server runs `LeaseService`).
    func startRenewal() {
        let renew = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "runbook.postgres.renew"))
        renew.schedule(deadline: .now() + Self.renewEvery, repeating: Self.renewEvery, leeway: .milliseconds(100))
        renew.setEventHandler { [weak self] in self?.renewLeases() }
        // On a queue of its own: a renewal waiting for a database that went away must not hold it up.
        let watch = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "runbook.postgres.lease-watch"))
        watch.schedule(deadline: .now() + 0.25, repeating: 0.25, leeway: .milliseconds(50))
        watch.setEventHandler { [weak self] in self?.giveUpLapsedLeases() }
        lock.withLock { timers = [renew, watch] }
        renew.resume()
        watch.resume()
    }

    public var renewsOnItsOwn: Bool {
        get { lock.withLock { !timers.isEmpty } }
        set {
            if newValue {
                if !renewsOnItsOwn { startRenewal() }
            } else {
                let stopped = lock.withLock { () -> [any DispatchSourceTimer] in
                    defer { timers = [] }
                    return timers
                }
                stopped.forEach { $0.cancel() }
            }
        }
    }

    /// Runs this process held whose lease another process took (it was cut off from the database
    /// for longer than a lease), or that it gave up before they could expire: the launcher must
    /// stop driving them.
    public var onLost: (@Sendable ([String]) -> Void)? {
        get { lock.withLock { lostHandler } }
        set { lock.withLock { lostHandler = newValue } }
    }

    /// Whether this process still owns `fence`'s run under that epoch (it has not lost or given it up).
    func holds(_ fence: RunFence) -> Bool {
        lock.withLock { held[fence.runID]?.epoch == fence.epoch }
    }

    /// Renews every held lease whose epoch is still the run's, in one statement; a renewal that
    /// succeeds confirms the lease from the moment it was sent. Runs another owner took are lost.
    public func renewLeases() {
        let snapshot = lock.withLock { held.map { ($0.key, $0.value.epoch) } }
        guard !snapshot.isEmpty else { return }
        let owner = self.owner, secs = Self.leaseSeconds
        let ids = snapshot.map(\.0), epochs = snapshot.map(\.1)
        let sent = DispatchTime.now()
        guard let kept = try? sync({ client in
            // Rows are locked in id order; appends (`FOR KEY SHARE`) do not hold a renewal up.
            try await client.rows(PreparedStatements.RenewLeases(runIDs: ids, epochs: epochs, owner: owner, leaseSeconds: secs))
        }) else { return }
        let open = Set(kept)
        let missing = Set(ids.filter { !open.contains($0) })
        lock.withLock {
            for (id, epoch) in snapshot where open.contains(id) {
                guard var h = held[id], h.epoch == epoch else { continue }
                h.confirmed = max(h.confirmed, sent)
                held[id] = h
            }
        }
        guard !missing.isEmpty else { return }
        // Finished runs drop out quietly; runs another owner took are lost.
        let missingIDs = Array(missing)
        let finishedIDs: [String] = (try? sync { client -> [String] in
            try await client.query("SELECT id FROM runs WHERE id = ANY(\(missingIDs)) AND outcome IS NOT NULL").all(String.self)
        }) ?? []
        let finished = Set(finishedIDs)
        let lost = lock.withLock { () -> [String] in
            var lost: [String] = []
            for (id, epoch) in snapshot where missing.contains(id) && held[id]?.epoch == epoch {
                held[id] = nil
                if !finished.contains(id) { lost.append(id) }
            }
            return lost
        }
        if !lost.isEmpty, let handler = onLost { handler(lost) }
    }

    /// Gives up every lease whose last confirmed renewal was sent `LeaseTiming.giveUpAfter` ago or
    /// more: the lease has at most `leaseSeconds - giveUpAfter` left, so its owner stops now (its
    /// writes are fenced from here on, its commands killed by `onLost`'s handler) and a takeover
    /// never overlaps it. Never waits for the database.
    public func giveUpLapsedLeases() {
        let now = DispatchTime.now()
        let limit = UInt64(LeaseTiming.giveUpAfter * 1e9)
        let lapsed = lock.withLock { () -> [String] in
            let ids = held.filter { now.uptimeNanoseconds > $0.value.confirmed.uptimeNanoseconds + limit }.map(\.key)
            for id in ids { held[id] = nil }
            return ids
        }
        if !lapsed.isEmpty, let handler = onLost { handler(lapsed) }
    }

    /// A run this process owns under one epoch: renewed until released; released early (a paused
    /// run left at shutdown) it expires at once, so another replica takes it.
    final class Lease: FencedRunHold, @unchecked Sendable {
        // Immutable.
        let store: PostgresRunStore
        let currentFence: RunFence
        let startRecorded: Bool
        init(store: PostgresRunStore, runID: String, epoch: Int64 = 1, confirmed: DispatchTime = .now(), startRecorded: Bool = false) {
            self.store = store
            self.currentFence = RunFence(runID: runID, epoch: epoch)
            self.startRecorded = startRecorded
            store.lock.withLock { store.held[runID] = HeldLease(epoch: epoch, confirmed: confirmed) }
        }
        func release() {
            let fence = currentFence
            let removed = store.lock.withLock { () -> Bool in
                guard store.held[fence.runID]?.epoch == fence.epoch else { return false }
                store.held[fence.runID] = nil
                return true
            }
            guard removed else { return }
            let (id, epoch) = (fence.runID, fence.epoch)
            try? store.execute("UPDATE runs SET lease_until = now() WHERE id = \(id) AND epoch = \(epoch) AND outcome IS NULL")
        }
    }

    /// Claims open runs whose lease expired (their owner died), at most `limit`, skipping rows another
    /// replica is claiming and runs this process still holds (a late renewal of its own is not a
    /// death; a run it gave up is claimed like any other). Each claim is one more epoch, so the old
    /// owner's writes are refused from then on. A claimed run paused at a resumable gate whose
    /// deadline passed is ended here (not resumed, the same rule as on SQLite). Returns the others,
    /// each with its previous owner; the caller takes them over.
    public func claimExpiredRuns(limit: Int = 20) throws -> [(runID: String, previousOwner: String?, lease: any RunHold)] {
        try claim(limit: limit, pausedOnly: false, now: Date()).map { ($0.runID, $0.previousOwner, $0.lease) }
    }

    /// Takes the paused runs a new server resumes: open, their lease expired (a server left them
    /// paused at shutdown, or died), waiting at a resumable gate whose deadline is ahead.
    public func takePausedRuns(now: Date) throws -> [(runID: String, lease: any RunHold)] {
        try claim(limit: 200, pausedOnly: true, now: now).map { ($0.runID, $0.lease) }
    }

    /// Claims expired runs in one transaction (`FOR UPDATE SKIP LOCKED`), one epoch up each; ends
    /// those paused past their deadline.
    func claim(limit: Int, pausedOnly: Bool, now: Date) throws -> [(runID: String, previousOwner: String?, lease: any RunHold)] {
        let owner = self.owner, secs = Self.leaseSeconds, log = logger
        let mine = lock.withLock { Array(held.keys) }
        let sent = DispatchTime.now()
        let rows = try sync { client in
            try await client.withTransaction(logger: log) { conn in
                // `FOR UPDATE` here is what fences the old owner's appends (they lock `FOR KEY SHARE`,
                // which only `FOR UPDATE` conflicts with): an UPDATE of the epoch alone would not
                // wait for an append in progress (PostgresRowLockTests).
                let claimed = try await conn.query("""
                    SELECT id, owner, EXISTS (SELECT 1 FROM gates g WHERE g.run = runs.id AND g.status = 'open' AND g.resumable AND g.deadline <= \(now))
                    FROM runs WHERE outcome IS NULL AND NOT dry_run AND NOT drill AND lease_until < now()
                    AND NOT (id = ANY(\(mine)::text[]))
                    AND (NOT \(pausedOnly) OR EXISTS (SELECT 1 FROM gates g WHERE g.run = runs.id AND g.status = 'open' AND g.resumable AND g.deadline > \(now)))
                    ORDER BY started LIMIT \(limit) FOR UPDATE SKIP LOCKED
                    """, logger: log).all((String, String?, Bool).self)
                let ids = claimed.map(\.0)
                var epochs: [String: Int64] = [:]
                if !ids.isEmpty {
                    for (id, epoch) in try await conn.query("""
                        UPDATE runs SET owner = \(owner), lease_until = now() + make_interval(secs => \(secs)), epoch = epoch + 1
                        WHERE id = ANY(\(ids)) RETURNING id, epoch
                        """, logger: log).all((String, Int64).self) {
                        epochs[id] = epoch
                    }
                }
                return claimed.map { ($0.0, $0.1, $0.2, epochs[$0.0] ?? 1) }
            }
        }
        var out: [(runID: String, previousOwner: String?, lease: any RunHold)] = []
        let stale = rows.contains(where: \.2) ? try staleGates(now: now) : [:]
        for (id, previous, pastDeadline, epoch) in rows {
            let lease = Lease(store: self, runID: id, epoch: epoch, confirmed: sent)
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
