import Foundation
import RunbookCore
import RunbookRuntime
import RunbookStoreContract

/// What an event stream sends: a timeline event with its position in the run's record (its SSE
/// `id:`), or a keep-alive comment.
enum FeedItem: Sendable {
    case event(id: Int, TimelineEvent)
    case keepAlive
}

/// One run's events for every browser and `curl -N` watching it, read from the store (the record
/// is the truth, so every replica numbers events alike and a resume by `Last-Event-ID` loses and
/// repeats nothing). One reader per run whatever the number of watchers: it wakes when the run,
/// driven here, records an event (its `RunEventStream`), or polls the store when another process or
/// replica drives it.
final class RunFeed: @unchecked Sendable {
    // Guarded by `lock`: `events`, `ended`, `subscribers`, `next`.
    private let lock = NSLock()
    let runID: String
    private var events: [TimelineEvent] = []
    private var ended = false
    /// Each watcher, and the last event it was given (or had before it came).
    private var subscribers: [Int: (continuation: AsyncThrowingStream<FeedItem, any Error>.Continuation, after: Int)] = [:]
    private var next = 0

    init(runID: String) { self.runID = runID }

    /// Events after `after`, then each new one; ends after `run.finished`. A watcher that leaves
    /// `buffer` items unread is dropped (`RunWatchEnd.fellBehind`): it reconnects and resumes.
    func subscribe(after: Int, buffer: Int) -> AsyncThrowingStream<FeedItem, any Error> {
        lock.withLock {
            let backlog = max(0, events.count - after)
            let (stream, c) = AsyncThrowingStream<FeedItem, any Error>.makeStream(bufferingPolicy: .bufferingOldest(buffer + backlog))
            if after < events.count {
                for i in after..<events.count { c.yield(.event(id: i + 1, events[i])) }
            }
            if ended {
                c.finish()
                return stream
            }
            next += 1
            let id = next
            subscribers[id] = (c, max(after, events.count))
            c.onTermination = { [weak self] _ in self?.lock.withLock { _ = self?.subscribers.removeValue(forKey: id) } }
            return stream
        }
    }

    var watcherCount: Int { lock.withLock { subscribers.count } }
    var isEnded: Bool { lock.withLock { ended } }

    /// Takes a fresh read of the run's record: new events go out; returns whether the run is over.
    @discardableResult
    func publish(_ read: [TimelineEvent], finished: Bool) -> Bool {
        // Finishing a stream calls its termination handler, which takes `lock`: finish outside it.
        var behind: [AsyncThrowingStream<FeedItem, any Error>.Continuation] = []
        var done: [AsyncThrowingStream<FeedItem, any Error>.Continuation] = []
        let over = lock.withLock { () -> Bool in
            guard !ended else { return true }
            if read.count > events.count {
                let fresh = read[events.count...]
                events = read
                for (id, sub) in subscribers {
                    // A watcher that resumed after event N gets only the events after N.
                    for (offset, e) in zip(fresh.indices, fresh) where offset + 1 > sub.after {
                        if case .dropped = sub.continuation.yield(.event(id: offset + 1, e)) {
                            if let gone = subscribers.removeValue(forKey: id) { behind.append(gone.continuation) }
                            break
                        }
                        subscribers[id]?.after = offset + 1
                    }
                }
            }
            if finished || events.contains(where: { $0.event == "run.finished" }) {
                ended = true
                done = subscribers.values.map(\.continuation)
                subscribers.removeAll()
            }
            return ended
        }
        for c in behind { c.finish(throwing: RunWatchEnd.fellBehind(run: runID, bufferSize: 0)) }
        for c in done { c.finish() }
        return over
    }

    /// A keep-alive to every watcher (a proxy, and the server, keep the connection open).
    func keepAlive() {
        let all = lock.withLock { subscribers.values.map(\.continuation) }
        for c in all { c.yield(.keepAlive) }
    }
}

/// The live feeds, one per watched run, each read by one task while anyone watches it.
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

    /// The feed's reader: reads the record, publishes, waits for the next event (or polls), until
    /// the run ends or nobody watches.
    private func read(_ feed: RunFeed) async {
        let id = feed.runID
        var lastKeepAlive = Date()
        var bell: Doorbell?
        defer {
            bell?.stop()
            lock.withLock { if feeds[id] === feed { feeds[id] = nil } }
        }
        while true {
            if bell == nil, let session = launcher.session(id) {
                let b = Doorbell()
                b.ring(from: session.events.watch(bufferSize: 4096))
                bell = b
            }
            let store = self.store
            let read = try? await threads.blocking { () -> ([TimelineEvent], Bool) in
                // The row first: a closed row's timeline holds its end already.
                let closed = (try? store.run(id))?.outcome != nil
                return (store.timeline(id), closed)
            }
            if let read, feed.publish(read.0, finished: read.1) { return }
            if read == nil { return }  // the server is shutting down
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
            if let b = bell, !b.isSilent {
                await b.wait(upTo: 2)
            } else {
                bell?.stop()
                bell = nil
                try? await Task.sleep(for: .milliseconds(Int64(pollEvery * 1000)))
            }
        }
    }
}

/// Wakes a feed's reader when the run records an event; many events while it reads make one wake.
final class Doorbell: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var rung = false
    private var silent = false
    private var waiter: CheckedContinuation<Void, Never>?
    private var listener: Task<Void, Never>?

    /// Rings once per event of `events`; goes silent when they end (the run ended or left).
    func ring(from events: AsyncThrowingStream<TimelineEvent, any Error>) {
        let task = Task {
            do { for try await _ in events { self.ring() } } catch {}
            lock.withLock { silent = true }
            self.ring()
        }
        lock.withLock { listener = task }
    }

    /// Stops listening: the run's watcher is given up.
    func stop() {
        lock.withLock { listener }?.cancel()
    }

    var isSilent: Bool { lock.withLock { silent } }

    func ring() {
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
