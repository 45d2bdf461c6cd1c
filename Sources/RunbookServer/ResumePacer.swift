import Dispatch
import Foundation

/// Lets taken-over runs go on a few at a time: `perTick` at once, then `perTick` more every
/// `interval` seconds, in the order given.
///
/// A replica that dies leaves hundreds of runs; the one that takes them over used to start them
/// all in the same instant (each re-runs its running step and writes its events), and new alerts
/// on every replica waited behind that burst (on three replicas at 200 alerts/s, the seconds after
/// a takeover held most of the webhook-to-first-step p99). Their notes (`run.taken_over`) are
/// written before, together; only going on is paced. Their leases stay held (and renewed) while
/// they wait. At shutdown (`stop`) the runs still waiting are handed back: their leases are given
/// up, for another replica to take at once.
final class ResumePacer: @unchecked Sendable {
    /// A run waiting for its turn: `start` makes it go on; `giveUp` hands it back unstarted.
    struct Item: Sendable {
        var start: @Sendable () -> Void
        var giveUp: @Sendable () -> Void
    }

    let perTick: Int
    let interval: Double
    // `waiting`, `scheduled` and `stopped` are guarded by `lock`; `queue` starts the items.
    private let lock = NSLock()
    private let queue = DispatchQueue(label: "runbook.serve.resume-pacer")
    private var waiting: [Item] = []
    private var scheduled = false
    private var stopped = false

    /// - Parameters:
    ///   - perTick: runs started together (at least 1).
    ///   - interval: seconds between two groups.
    init(perTick: Int = 20, interval: Double = 0.1) {
        self.perTick = max(1, perTick)
        self.interval = interval
    }

    /// Adds `items` behind those waiting. When none was waiting, the first group starts at once; the
    /// rest follow, `perTick` every `interval`. Every item starts on the pacer's queue. After `stop`,
    /// each is given up instead.
    func enqueue(_ items: [Item]) {
        guard !items.isEmpty else { return }
        // `lead`: no group is scheduled, so this caller schedules the first now.
        let (lead, giveUp) = lock.withLock { () -> (Bool, [Item]) in
            if stopped { return (false, items) }
            waiting += items
            if scheduled { return (false, []) }
            scheduled = true
            return (true, [])
        }
        if !giveUp.isEmpty { Self.handBack(giveUp) }
        if lead { queue.async { [self] in tick() } }
    }

    /// Stops: nothing more starts. Waits for a group being started to be started (so that the
    /// caller, draining the server, sees those runs), then hands back the runs still waiting, off
    /// the caller's thread (each gives its lease up: a database that does not answer must not hold
    /// the drain up). Returns how many. Blocks briefly: call it from the server's own threads.
    @discardableResult
    func stop() -> Int {
        let left = lock.withLock { () -> [Item] in
            stopped = true
            defer { waiting.removeAll() }
            return waiting
        }
        queue.sync {}
        if !left.isEmpty { Self.handBack(left) }
        return left.count
    }

    private static func handBack(_ items: [Item]) {
        DispatchQueue.global().async { items.forEach { $0.giveUp() } }
    }

    /// Runs still waiting for their turn.
    var waitingCount: Int { lock.withLock { waiting.count } }

    /// The next group (under `lock`).
    private func takeGroup() -> [Item] {
        let group = Array(waiting.prefix(perTick))
        waiting.removeFirst(group.count)
        return group
    }

    /// Starts the next group, then schedules the one after (on `queue`).
    private func tick() {
        let group = lock.withLock { stopped ? [] : takeGroup() }
        group.forEach { $0.start() }
        let more = lock.withLock { () -> Bool in
            if waiting.isEmpty || stopped { scheduled = false; return false }
            return true
        }
        if more { queue.asyncAfter(deadline: .now() + interval) { [self] in tick() } }
    }
}
