import Foundation
import RunbookCore
import RunbookRuntime

/// What an event stream sends: a timeline event's JSON line with its position in the run's record
/// (its SSE `id:`), or a keep-alive comment. The line is encoded once, whatever the watchers.
enum FeedItem: Sendable {
    case event(id: Int, line: String)
    case keepAlive
}

/// One run's events for every browser and `curl -N` watching it, numbered by their position in the
/// run's record (the record is the truth, so every replica numbers events alike and a resume by
/// `Last-Event-ID` loses and repeats nothing).
///
/// Events come in two ways, and cost only what is new: a read of the record (`publish(record:)`,
/// at the start, after a gap, or for a run another process drives), and the run's own live events
/// (`publish(live:)`) when this server drives it. Live events arrive in record order after being
/// recorded; the first one after a read is placed by finding it among the events already published
/// (the live view was attached before the read, so it may repeat the read's last events), and each
/// later one takes the next position.
final class RunFeed: @unchecked Sendable {
    // Guarded by `lock`: every `var`.
    private let lock = NSLock()
    let runID: String
    /// Each published event's JSON line: position N (from 1) is `lines[N - 1]`.
    private var lines: [String] = []
    private var ended = false
    /// Record position (from 0) of the next live event, once placed; nil after a read.
    private var liveNext: Int?
    /// Each watcher, and the last event it was given (or had before it came).
    private var subscribers: [Int: (continuation: AsyncThrowingStream<FeedItem, any Error>.Continuation, after: Int)] = [:]
    private var next = 0

    init(runID: String) { self.runID = runID }

    /// Events after `after`, then each new one; ends after `run.finished`. A watcher that leaves
    /// `buffer` items unread is dropped (`RunWatchEnd.fellBehind`): it reconnects and resumes.
    func subscribe(after: Int, buffer: Int) -> AsyncThrowingStream<FeedItem, any Error> {
        lock.withLock {
            let backlog = max(0, lines.count - after)
            let (stream, c) = AsyncThrowingStream<FeedItem, any Error>.makeStream(bufferingPolicy: .bufferingOldest(buffer + backlog))
            if after < lines.count {
                for i in after..<lines.count { c.yield(.event(id: i + 1, line: lines[i])) }
            }
            if ended {
                c.finish()
                return stream
            }
            next += 1
            let id = next
            subscribers[id] = (c, max(after, lines.count))
            c.onTermination = { [weak self] _ in self?.lock.withLock { _ = self?.subscribers.removeValue(forKey: id) } }
            return stream
        }
    }

    var watcherCount: Int { lock.withLock { subscribers.count } }
    var isEnded: Bool { lock.withLock { ended } }
    /// Events published so far.
    var count: Int { lock.withLock { lines.count } }

    /// Takes a read of the run's whole record: the events past those published go out (only they are
    /// encoded); `finished` says the run's row is closed. The next live event is placed anew.
    /// Returns whether the stream is over.
    @discardableResult
    func publish(record: [TimelineEvent], finished: Bool) -> Bool {
        deliver { () -> Bool in
            liveNext = nil
            append(record.dropFirst(lines.count))
            return finished
        }
    }

    /// Takes the run's live events, in record order, each recorded already. Returns whether the
    /// stream is over.
    @discardableResult
    func publish(live events: [TimelineEvent]) -> Bool {
        guard let first = events.first else { return isEnded }
        // As the record has it: written as its line, read back, encoded again.
        let line = TimelineEvent.parse(jsonLine: first.jsonLine())?.jsonLine() ?? first.jsonLine()
        return deliver { () -> Bool in
            let at = liveNext ?? place(line)
            liveNext = at + events.count
            // Positions the record already gave are not sent again.
            append(events.dropFirst(max(0, lines.count - at)))
            return false
        }
    }

    /// Where the first live event after a read stands: the last published event with its line (the
    /// read already had it), else the next position. Lines carry the time to the millisecond: only
    /// two events alike in every field and millisecond could be mistaken for each other.
    private func place(_ line: String) -> Int {
        lines.lastIndex(of: line) ?? lines.count
    }

    /// Adds `events` after the published ones and sends each to every watcher that has not had it.
    private func append(_ events: ArraySlice<TimelineEvent>) {
        guard !events.isEmpty else { return }
        let first = lines.count
        let fresh = events.map { $0.jsonLine() }
        lines += fresh
        if events.contains(where: { $0.event == "run.finished" }) { ended = true }
        for (id, sub) in subscribers {
            // A watcher that resumed after event N gets only the events after N.
            for (offset, line) in fresh.enumerated() where first + offset + 1 > sub.after {
                if case .dropped = sub.continuation.yield(.event(id: first + offset + 1, line: line)) {
                    if let gone = subscribers.removeValue(forKey: id) { behind.append(gone.continuation) }
                    break
                }
                subscribers[id]?.after = first + offset + 1
            }
        }
    }

    /// Watchers dropped while `lock` was held, finished once it is released.
    private var behind: [AsyncThrowingStream<FeedItem, any Error>.Continuation] = []

    /// Runs `change` under the lock; ends every watcher once the run is over. Finishing a stream
    /// calls its termination handler, which takes `lock`: streams are finished outside it.
    private func deliver(_ change: () -> Bool) -> Bool {
        var done: [AsyncThrowingStream<FeedItem, any Error>.Continuation] = []
        var dropped: [AsyncThrowingStream<FeedItem, any Error>.Continuation] = []
        let over = lock.withLock { () -> Bool in
            guard !ended else { return true }
            if change() { ended = true }
            dropped = behind
            behind = []
            if ended {
                done = subscribers.values.map(\.continuation)
                subscribers.removeAll()
            }
            return ended
        }
        for c in dropped { c.finish(throwing: RunWatchEnd.fellBehind(run: runID, bufferSize: 0)) }
        for c in done { c.finish() }
        return over
    }

    /// A keep-alive to every watcher (a proxy, and the server, keep the connection open).
    func keepAlive() {
        let all = lock.withLock { subscribers.values.map(\.continuation) }
        for c in all { c.yield(.keepAlive) }
    }
}
