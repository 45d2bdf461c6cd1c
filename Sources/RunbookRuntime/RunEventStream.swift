import Foundation
import RunbookCore

/// The one stream of a run's events: every event the run emits passes here once, secrets redacted,
/// and goes on to the run's sinks (its record first, then the terminal, metrics and the like) and
/// to any number of live watchers.
///
/// Sinks are called in order on the run's queue: the record is complete whatever a watcher does.
/// A watcher reads at its own pace from a bounded buffer; one that falls behind is dropped with a
/// clear end (`RunWatchEnd.fellBehind`), and the run never waits for it.
public final class RunEventStream: TimelineSink, @unchecked Sendable {
    // `watchers`, `finished` and `nextWatcher` are guarded by `lock`; the rest is immutable.
    private let lock = NSLock()
    private let secrets: [String]
    private let durable: [any TimelineSink]
    private let subscribers: [any TimelineSink]
    private var watchers: [Int: Watcher] = [:]
    private var nextWatcher = 0
    private var finished = false

    /// A watcher's continuation and its buffer size.
    private struct Watcher {
        var continuation: AsyncThrowingStream<TimelineEvent, any Error>.Continuation
        var bufferSize: Int
    }

    /// - Parameters:
    ///   - secrets: values of the run's secret params, replaced by `***` before anyone sees an event.
    ///   - record: the run's record (its timeline, its history row), written first.
    ///   - subscribers: the others that see every event, in order (the terminal, metrics).
    public init(secrets: [String], record: [any TimelineSink], subscribers: [any TimelineSink] = []) {
        self.secrets = secrets
        self.durable = record
        self.subscribers = subscribers
    }

    /// Sends `event` (redacted) to the record, every subscriber and watcher; ends the watchers
    /// after `run.finished`.
    public func record(_ event: TimelineEvent) {
        let e = SecretRedactor.redact(event, secrets)
        for s in durable { s.record(e) }
        deliver(e)
    }

    /// `record` for events emitted together: the record takes them in one write.
    public func record(_ events: [TimelineEvent]) {
        guard events.count > 1 else { events.forEach(record); return }
        let redacted = events.map { SecretRedactor.redact($0, secrets) }
        for s in durable { s.record(redacted) }
        redacted.forEach(deliver)
    }

    /// Sends an event the record already holds (the run's start, written before anything ran) to
    /// the subscribers and watchers only.
    public func announce(_ event: TimelineEvent) {
        deliver(SecretRedactor.redact(event, secrets))
    }

    private func deliver(_ e: TimelineEvent) {
        for s in subscribers { s.record(e) }
        let (current, ended) = lock.withLock { () -> ([Int: Watcher], Bool) in
            if e.event == "run.finished" { finished = true }
            return (watchers, finished)
        }
        var behind: [Int] = []
        for (id, w) in current {
            if case .dropped = w.continuation.yield(e) { behind.append(id) }
        }
        for id in behind { drop(id, RunWatchEnd.fellBehind(run: e.run, bufferSize: current[id]?.bufferSize ?? 0)) }
        if ended { finish() }
    }

    /// A live view of the run's events from now on: at most `bufferSize` events wait unread; one
    /// more and the watcher is dropped (its sequence ends throwing `RunWatchEnd.fellBehind` after
    /// the events it had). The sequence ends normally when the run finishes (or is left to another
    /// process).
    public func watch(bufferSize: Int = 1024) -> AsyncThrowingStream<TimelineEvent, any Error> {
        let size = max(1, bufferSize)
        let (stream, continuation) = AsyncThrowingStream<TimelineEvent, any Error>.makeStream(bufferingPolicy: .bufferingOldest(size))
        let id: Int? = lock.withLock {
            guard !finished else { return nil }
            nextWatcher += 1
            watchers[nextWatcher] = Watcher(continuation: continuation, bufferSize: size)
            return nextWatcher
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in self?.lock.withLock { _ = self?.watchers.removeValue(forKey: id) } }
        return stream
    }

    /// Watchers attached now.
    public var watcherCount: Int { lock.withLock { watchers.count } }

    /// Ends every watcher normally; later watchers end at once.
    public func finish() {
        let all = lock.withLock { () -> [Watcher] in
            finished = true
            defer { watchers.removeAll() }
            return Array(watchers.values)
        }
        for w in all { w.continuation.finish() }
    }

    private func drop(_ id: Int, _ end: RunWatchEnd) {
        let w = lock.withLock { watchers.removeValue(forKey: id) }
        w?.continuation.finish(throwing: end)
    }
}

/// Why a watcher's view of a run ended before the run did.
public enum RunWatchEnd: Error, Sendable, Equatable, CustomStringConvertible {
    /// The watcher left `bufferSize` events unread and the run went on: it was dropped.
    case fellBehind(run: String, bufferSize: Int)

    public var description: String {
        switch self {
        case .fellBehind(let run, let n):
            "watcher of run \(run) dropped: it fell \(n) events behind (the run and its record went on; read the timeline to catch up)"
        }
    }
}
