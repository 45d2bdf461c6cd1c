import Dispatch
import Foundation

/// Something that can be stopped: a timer, a running step.
public protocol Cancellable: Sendable {
    func cancel()
}

/// Time for the runner: live Dispatch timers, or simulated time in drills and tests.
/// Blocks run on the run's serial queue.
public protocol RunScheduler: Sendable {
    /// The current time.
    var now: Date { get }
    /// Runs `block` on the run queue after `seconds`.
    @discardableResult
    func schedule(after seconds: Double, _ block: @escaping @Sendable () -> Void) -> any Cancellable
    /// True when time is simulated (durations are reported, not waited).
    var isSimulated: Bool { get }
}

/// Live time: Dispatch timers on the run queue. A waiting step holds a timer, not a thread.
public struct DispatchScheduler: RunScheduler {
    let queue: DispatchQueue

    public init(queue: DispatchQueue) { self.queue = queue }

    public var now: Date { Date() }
    public var isSimulated: Bool { false }

    public func schedule(after seconds: Double, _ block: @escaping @Sendable () -> Void) -> any Cancellable {
        if seconds <= 0 {
            // No timer for "now": a timer's leeway would cost a millisecond per zero wait.
            let flag = CancelFlag()
            queue.async { if !flag.isCancelled { block() } }
            return flag
        }
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + max(0, seconds), leeway: .milliseconds(1))
        let box = TimerBox(timer)
        timer.setEventHandler {
            box.cancel()
            block()
        }
        timer.resume()
        return box
    }
}

/// A cancellation flag for work already queued.
public final class CancelFlag: Cancellable, @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var cancelled = false
    public init() {}
    public var isCancelled: Bool { lock.withLock { cancelled } }
    public func cancel() { lock.withLock { cancelled = true } }
}

/// Holds a timer source; cancelling twice is harmless.
final class TimerBox: Cancellable, @unchecked Sendable {
    // DispatchSourceTimer is thread-safe for cancel(); the source is never mutated after init.
    private let timer: any DispatchSourceTimer
    init(_ timer: any DispatchSourceTimer) { self.timer = timer }
    func cancel() { timer.cancel() }
}

/// Simulated time: blocks run in time order as fast as the queue allows, and `now` jumps ahead.
/// A ten-minute drill takes milliseconds.
public final class VirtualScheduler: RunScheduler, @unchecked Sendable {
    // All state is guarded by `lock`; blocks themselves run on `queue`.
    private let queue: DispatchQueue
    private let lock = NSLock()
    private var current: Date
    private var pending: [(time: Date, seq: Int, id: Int, block: @Sendable () -> Void)] = []
    private var cancelled = Set<Int>()
    private var seq = 0
    private var pumping = false

    public init(queue: DispatchQueue, start: Date) {
        self.queue = queue
        self.current = start
    }

    public var now: Date { lock.withLock { current } }
    public var isSimulated: Bool { true }

    public func schedule(after seconds: Double, _ block: @escaping @Sendable () -> Void) -> any Cancellable {
        let (id, start): (Int, Bool) = lock.withLock {
            seq += 1
            pending.append((current.addingTimeInterval(max(0, seconds)), seq, seq, block))
            let start = !pumping
            pumping = true
            return (seq, start)
        }
        if start { queue.async { self.pump() } }
        return VirtualTimer(scheduler: self, id: id)
    }

    fileprivate func cancel(_ id: Int) { lock.withLock { _ = cancelled.insert(id) } }

    private func pump() {
        let next: (@Sendable () -> Void)? = lock.withLock {
            while let i = pending.indices.min(by: { (pending[$0].time, pending[$0].seq) < (pending[$1].time, pending[$1].seq) }) {
                let item = pending.remove(at: i)
                if cancelled.remove(item.id) != nil { continue }
                if item.time > current { current = item.time }
                return item.block
            }
            pumping = false
            return nil
        }
        guard let next else { return }
        next()
        queue.async { self.pump() }
    }
}

private struct VirtualTimer: Cancellable {
    let scheduler: VirtualScheduler
    let id: Int
    func cancel() { scheduler.cancel(id) }
}
