import Dispatch
import Foundation
import RunbookStoreContract

/// Looks for cancel requests left in the store for the runs this process drives (by `runbook cancel`
/// or a replica that does not own them) and cancels those runs: one store read per tick for all of
/// them, on a queue of its own, about twice a second.
public final class CancelWatch: @unchecked Sendable {
    // `sessions` and `timer` are guarded by `lock`; the rest is immutable.
    private let lock = NSLock()
    private let store: any CancelRequests
    private let queue = DispatchQueue(label: "runbook.cancel-watch")
    private let every: Double
    private var sessions: [String: RunSession] = [:]
    private var timer: (any DispatchSourceTimer)?

    /// - Parameters:
    ///   - every: seconds between looks (a request is acted on within this).
    public init(store: any CancelRequests, every: Double = 0.4) {
        self.store = store
        self.every = every
    }

    /// Watches `session`'s run until `remove`.
    public func add(_ session: RunSession) {
        lock.withLock {
            sessions[session.runID] = session
            if timer == nil {
                let t = DispatchSource.makeTimerSource(queue: queue)
                t.schedule(deadline: .now() + every, repeating: every, leeway: .milliseconds(50))
                t.setEventHandler { [weak self] in self?.look() }
                t.resume()
                timer = t
            }
        }
    }

    /// Stops watching a run (it ended).
    public func remove(_ runID: String) {
        lock.withLock { _ = sessions.removeValue(forKey: runID) }
    }

    /// Stops looking altogether.
    public func stop() {
        lock.withLock {
            timer?.cancel()
            timer = nil
        }
    }

    /// One look: every waiting request is acted on once and removed.
    func look() {
        let current = lock.withLock { sessions }
        guard !current.isEmpty, let found = try? store.pendingCancels(among: Array(current.keys)) else { return }
        for (id, request) in found {
            _ = current[id]?.cancel(by: request.by, undo: request.undo)
            try? store.clearCancelRequest(runID: id)
        }
    }
}
