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
    private var subscribers: [Int: AsyncThrowingStream<FeedItem, any Error>.Continuation] = [:]
    private var next = 0

    init(runID: String) { self.runID = runID }

    /// Events after `after`, then each new one; ends after `run.finished`. A watcher that leaves
    /// `buffer` items unread is dropped (`RunWatchEnd.fellBehind`): it reconnects and resumes.
    func subscribe(after: Int, buffer: Int) -> AsyncThrowingStream<FeedItem, any Error> {
        lock.withLock {
            let backlog = max(0, events.count - after)
            let (stream, c) = AsyncThrowingStream<FeedItem, any Error>.makeStream(bufferingPolicy: .bufferingOldest(buffer + backlog))
            for i in max(0, after)..<events.count { c.yield(.event(id: i + 1, events[i])) }
            if ended {
                c.finish()
                return stream
            }
            next += 1
            let id = next
            subscribers[id] = c
            c.onTermination = { [weak self] _ in self?.lock.withLock { _ = self?.subscribers.removeValue(forKey: id) } }
            return stream
        }
    }

    var watcherCount: Int { lock.withLock { subscribers.count } }
    var isEnded: Bool { lock.withLock { ended } }

    /// Takes a fresh read of the run's record: new events go out; returns whether the run is over.
    @discardableResult
    func publish(_ read: [TimelineEvent], finished: Bool) -> Bool {
        lock.withLock {
            guard !ended else { return true }
            if read.count > events.count {
                let fresh = read[events.count...]
                events = read
                var behind: [Int] = []
                for (id, c) in subscribers {
                    for (offset, e) in zip(fresh.indices, fresh) {
                        if case .dropped = c.yield(.event(id: offset + 1, e)) {
                            behind.append(id)
                            break
                        }
                    }
                }
                for id in behind { subscribers.removeValue(forKey: id)?.finish(throwing: RunWatchEnd.fellBehind(run: runID, bufferSize: 0)) }
            }
            if finished || events.contains(where: { $0.event == "run.finished" }) {
                ended = true
                for c in subscribers.values { c.finish() }
                subscribers.removeAll()
            }
            return ended
        }
    }

    /// A keep-alive to every watcher (a proxy, and the server, keep the connection open).
    func keepAlive() {
        let all = lock.withLock { Array(subscribers.values) }
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
        let (feed, isNew) = lock.withLock { () -> (RunFeed, Bool) in
            if let f = feeds[runID], !f.isEnded { return (f, false) }
            let f = RunFeed(runID: runID)
            feeds[runID] = f
            return (f, true)
        }
        let stream = feed.subscribe(after: after, buffer: buffer)
        if isNew { Task { await self.read(feed) } }
        return stream
    }

    /// The feed's reader: reads the record, publishes, waits for the next event (or polls), until
    /// the run ends or nobody watches.
    private func read(_ feed: RunFeed) async {
        let id = feed.runID
        var lastKeepAlive = Date()
        var bell: Doorbell?
        defer { lock.withLock { if feeds[id] === feed { feeds[id] = nil } } }
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
            if feed.watcherCount == 0 { return }
            if Date().timeIntervalSince(lastKeepAlive) >= keepAliveEvery {
                feed.keepAlive()
                lastKeepAlive = Date()
            }
            if let b = bell, !b.isSilent {
                await b.wait(upTo: 2)
            } else {
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

    /// Rings once per event of `events`; goes silent when they end (the run ended or left).
    func ring(from events: AsyncThrowingStream<TimelineEvent, any Error>) {
        Task {
            do { for try await _ in events { self.ring() } } catch {}
            lock.withLock { silent = true }
            self.ring()
        }
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
