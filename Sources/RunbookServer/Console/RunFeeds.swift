import Foundation
import RunbookCore
import RunbookRuntime
import RunbookStoreContract

/// The live feeds, one per watched run, each fed by one task while anyone watches it.
final class RunFeeds: @unchecked Sendable {
    // `feeds` is guarded by `lock`.
    private let lock = NSLock()
    private var feeds: [String: RunFeed] = [:]
    let store: any RunDatabase
    let launcher: RunLauncher
    let threads: ServerThreads
    /// Seconds between store reads for a run driven by another process or replica.
    let pollEvery: Double
    /// Seconds between keep-alive comments.
    let keepAliveEvery: Double

    init(store: any RunDatabase, launcher: RunLauncher, threads: ServerThreads, pollEvery: Double = 0.25, keepAliveEvery: Double = 15) {
        self.store = store
        self.launcher = launcher
        self.threads = threads
        self.pollEvery = pollEvery
        self.keepAliveEvery = keepAliveEvery
    }

    /// A watcher's view of `runID` after event `after`.
    func watch(_ runID: String, after: Int, buffer: Int = 512) -> AsyncThrowingStream<FeedItem, any Error> {
        // Under the lock: a reader leaving because nobody watches removes its feed under it too, so a
        // new watcher never joins a feed whose reader is gone.
        let (feed, stream, isNew) = lock.withLock { () -> (RunFeed, AsyncThrowingStream<FeedItem, any Error>, Bool) in
            if let f = feeds[runID], !f.isEnded { return (f, f.subscribe(after: after, buffer: buffer), false) }
            let f = RunFeed(runID: runID)
            feeds[runID] = f
            return (f, f.subscribe(after: after, buffer: buffer), true)
        }
        if isNew { Task { await self.read(feed) } }
        return stream
    }

    /// The feed's reader, until the run ends or nobody watches. For a run driven here it attaches to
    /// the run's live events first, reads the record once to catch up, then passes on each live
    /// event as it comes; without them (another process or replica drives the run, or its record
    /// could not be written) it reads the record every `pollEvery` seconds.
    private func read(_ feed: RunFeed) async {
        let id = feed.runID
        var lastKeepAlive = Date()
        var tap: RunTap?
        // Set once the run's live events ended without its end (it was left to another process):
        // from then on the record is read.
        var liveGone = false
        var catchUp = true
        defer {
            tap?.stop()
            lock.withLock { if feeds[id] === feed { feeds[id] = nil } }
        }
        while true {
            if tap == nil, !liveGone, let session = launcher.session(id), Self.recorded(session.health) {
                tap = RunTap(session.events.watch(bufferSize: 4096))
                catchUp = true
            }
            if catchUp || tap == nil {
                let store = self.store
                guard let read = try? await threads.blocking({ () -> ([TimelineEvent], Bool) in
                    // The row first: a closed row's timeline holds its end already.
                    let closed = (try? store.run(id))?.outcome != nil
                    return (store.timeline(id), closed)
                }) else { return }  // the server is shutting down
                if feed.publish(record: read.0, finished: read.1) { return }
                catchUp = false
            }
            if let t = tap {
                let (events, end) = t.take()
                // A write the record refused (a full disk, a lost lease): the live events no longer
                // match the record, which stays the truth.
                if !events.isEmpty, !Self.recorded(launcher.session(id)?.health) {
                    liveGone = true
                } else if feed.publish(live: events) {
                    return
                }
                if end != nil || liveGone {
                    t.stop()
                    tap = nil
                    if end == .left { liveGone = true }
                    catchUp = true
                    continue
                }
            }
            let alone = lock.withLock { () -> Bool in
                guard feed.watcherCount == 0 else { return false }
                if feeds[id] === feed { feeds[id] = nil }
                return true
            }
            if alone { return }
            if Date().timeIntervalSince(lastKeepAlive) >= keepAliveEvery {
                feed.keepAlive()
                lastKeepAlive = Date()
            }
            if let t = tap {
                await t.wait(upTo: 2)
            } else {
                try? await Task.sleep(for: .milliseconds(Int64(pollEvery * 1000)))
            }
        }
    }

    /// Whether a run's events are all on record so far.
    static func recorded(_ health: RecordHealth?) -> Bool {
        health?.failure == nil && health?.fenced == nil
    }
}

/// A run's live events, gathered as they come for the feed's reader, which it wakes; many events
/// while it works make one wake.
final class RunTap: @unchecked Sendable {
    /// How the live events ended.
    enum End: Equatable {
        /// The run finished, or was left to another process.
        case left
        /// The tap fell behind and was dropped: the record has what it missed.
        case fellBehind
    }

    // Guarded by `lock`.
    private let lock = NSLock()
    private var pending: [TimelineEvent] = []
    private var end: End?
    private var rung = false
    private var waiter: CheckedContinuation<Void, Never>?
    private var listener: Task<Void, Never>?

    init(_ events: AsyncThrowingStream<TimelineEvent, any Error>) {
        let task = Task {
            var how = End.left
            do {
                for try await e in events { self.add(e) }
            } catch {
                how = .fellBehind
            }
            lock.withLock { end = how }
            ring()
        }
        lock.withLock { listener = task }
    }

    private func add(_ e: TimelineEvent) {
        lock.withLock { pending.append(e) }
        ring()
    }

    /// The events gathered since the last take, and how the live events ended if they did (after
    /// these events).
    func take() -> (events: [TimelineEvent], end: End?) {
        lock.withLock {
            defer { pending = [] }
            return (pending, end)
        }
    }

    /// Stops listening: the run's live events are given up.
    func stop() {
        lock.withLock { listener }?.cancel()
    }

    private func ring() {
        let w = lock.withLock { () -> CheckedContinuation<Void, Never>? in
            rung = true
            defer { waiter = nil }
            return waiter
        }
        w?.resume()
    }

    /// Returns when rung (at once if it rang since the last wait), or after `seconds`.
    func wait(upTo seconds: Double) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = lock.withLock { () -> Bool in
                if rung {
                    rung = false
                    return true
                }
                waiter = c
                return false
            }
            if now { c.resume(); return }
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { [self] in
                let w = lock.withLock { () -> CheckedContinuation<Void, Never>? in
                    defer { waiter = nil }
                    return waiter
                }
                w?.resume()
            }
        }
        lock.withLock { rung = false }
    }
}
