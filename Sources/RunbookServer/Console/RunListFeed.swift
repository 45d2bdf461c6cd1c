import Foundation
import RunbookRuntime
import RunbookStoreContract

/// Changes to the run list for `GET /runs/events`: a new run, a status change, an outcome. One
/// reader polls the newest runs while anyone watches and sends each changed run's summary.
final class RunListFeed: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var subscribers: [Int: AsyncThrowingStream<ListItem, any Error>.Continuation] = [:]
    private var next = 0
    private var reading = false
    private var seq = 0
    let store: any RunDatabase
    let threads: ServerThreads
    let pollEvery: Double
    let keepAliveEvery: Double

    /// A changed run with its sequence number, or a keep-alive.
    enum ListItem: Sendable {
        case changed(id: Int, RunSummary)
        case keepAlive
    }

    init(store: any RunDatabase, threads: ServerThreads, pollEvery: Double = 0.5, keepAliveEvery: Double = 15) {
        self.store = store
        self.threads = threads
        self.pollEvery = pollEvery
        self.keepAliveEvery = keepAliveEvery
    }

    /// Changes from now on.
    func watch(buffer: Int = 512) -> AsyncThrowingStream<ListItem, any Error> {
        let (stream, c) = AsyncThrowingStream<ListItem, any Error>.makeStream(bufferingPolicy: .bufferingOldest(buffer))
        let start = lock.withLock { () -> Bool in
            next += 1
            let id = next
            subscribers[id] = c
            c.onTermination = { [weak self] _ in self?.lock.withLock { _ = self?.subscribers.removeValue(forKey: id) } }
            defer { reading = true }
            return !reading
        }
        if start { Task { await read() } }
        return stream
    }

    private func read() async {
        var known: [String: RunSummary] = [:]
        var first = true
        var lastKeepAlive = Date()
        while true {
            let store = self.store
            guard let rows = try? await threads.blocking({ () -> [RunSummary] in
                let awaiting = (try? store.runsAwaitingApproval()) ?? []
                return ((try? store.runs(limit: 200)) ?? []).map { RunSummary($0, awaiting: awaiting.contains($0.id)) }
            }) else { return }
            let changed = first ? [] : rows.filter { known[$0.id] != $0 }.reversed()
            for r in rows { known[r.id] = r }
            first = false
            let keepAlive = Date().timeIntervalSince(lastKeepAlive) >= keepAliveEvery
            if keepAlive { lastKeepAlive = Date() }
            // Finishing a stream calls its termination handler, which takes `lock`: finish outside it.
            let (done, behind) = lock.withLock { () -> (Bool, [AsyncThrowingStream<ListItem, any Error>.Continuation]) in
                var behind: [AsyncThrowingStream<ListItem, any Error>.Continuation] = []
                for r in changed {
                    seq += 1
                    for (id, c) in subscribers {
                        if case .dropped = c.yield(.changed(id: seq, r)), let gone = subscribers.removeValue(forKey: id) { behind.append(gone) }
                    }
                }
                if keepAlive { for c in subscribers.values { c.yield(.keepAlive) } }
                if subscribers.isEmpty { reading = false }
                return (subscribers.isEmpty, behind)
            }
            for c in behind { c.finish(throwing: RunWatchEnd.fellBehind(run: "*", bufferSize: 0)) }
            if done { return }
            try? await Task.sleep(for: .milliseconds(Int64(pollEvery * 1000)))
        }
    }
}

/// At most `limit` event streams open at once (`serve --max-watchers`): one more is answered 503.
final class WatcherLimit: @unchecked Sendable {
    private let lock = NSLock()
    private var open = 0
    let limit: Int

    init(limit: Int) { self.limit = limit }

    /// Takes a place, or returns false when all are taken.
    func take() -> Bool {
        lock.withLock {
            guard open < limit else { return false }
            open += 1
            return true
        }
    }

    func give() { lock.withLock { open -= 1 } }
    var count: Int { lock.withLock { open } }
}
