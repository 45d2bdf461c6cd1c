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

    /// Adds `items` behind those waiting. When none was waiting, the first group starts now, on the
    /// caller's thread; the rest follow on the pacer's queue. After `stop`, each is given up at once.
    func enqueue(_ items: [Item]) {
        guard !items.isEmpty else { return }
        // `lead`: no group is scheduled, so this caller starts the first and schedules the rest.
        let (lead, now, giveUp) = lock.withLock { () -> (Bool, [Item], [Item]) in
            if stopped { return (false, [], items) }
            waiting += items
            if scheduled { return (false, [], []) }
            scheduled = true
            return (true, takeGroup(), [])
        }
        giveUp.forEach { $0.giveUp() }
        now.forEach { $0.start() }
        if lead { scheduleNext() }
    }

    /// Stops: nothing more starts; returns how many runs were still waiting (each given up).
    @discardableResult
    func stop() -> Int {
        let left = lock.withLock { () -> [Item] in
            stopped = true
            defer { waiting.removeAll() }
            return waiting
        }
        left.forEach { $0.giveUp() }
        return left.count
    }

    /// Runs still waiting for their turn.
    var waitingCount: Int { lock.withLock { waiting.count } }

    /// The next group (under `lock`).
    private func takeGroup() -> [Item] {
        let group = Array(waiting.prefix(perTick))
        waiting.removeFirst(group.count)
        return group
    }

    private func scheduleNext() {
        let more = lock.withLock { () -> Bool in
            if waiting.isEmpty || stopped { scheduled = false; return false }
            return true
        }
        guard more else { return }
        queue.asyncAfter(deadline: .now() + interval) { [self] in
            let group = lock.withLock { stopped ? [] : takeGroup() }
            group.forEach { $0.start() }
            scheduleNext()
        }
    }
}
