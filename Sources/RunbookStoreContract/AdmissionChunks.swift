import Dispatch
import Foundation

/// A large batch (one alert payload of thousands) admitted in consecutive chunks, each in one store
/// transaction of its own, so that another writer waiting for the store's write lock (an approval,
/// another replica's payload, the CLI) waits for one chunk, not for the whole payload.
///
/// Each chunk is decided exactly as a batch of its own, after the chunks before it, whose rows it
/// reads committed: dedupe, the lock, cooldown, max_runs, max_active and the breaker hold across the
/// payload as they hold across separate payloads, and each alert gets exactly one decision. A chunk
/// is atomic; the payload is not. When a chunk fails, the chunks before it stay recorded (their runs
/// start) and the rest is not tried: the caller answers 5xx and Alertmanager sends the whole payload
/// again, where the alerts already recorded are duplicates or repeat refusals.
public enum AdmissionChunks {
    /// Requests per transaction: large enough that a payload costs few transactions (each costs one
    /// query per guard kind and a commit), small enough that a waiting writer waits a few
    /// milliseconds.
    public static let size = 500

    /// What chunked admission decided.
    public struct Outcome<Decided> {
        /// The decisions of the chunks recorded, in request order: the first `decided.count` requests.
        public var decided: [Decided]
        /// Why the remaining requests were not recorded, when a chunk failed.
        public var failure: (any Error)?
    }

    /// Decides `items` in consecutive chunks of at most `size`, each with `decide` (one transaction),
    /// stopping at the first chunk that throws.
    public static func decide<Item, Decided>(_ items: [Item], size: Int = size, _ decide: ([Item]) throws -> [Decided]) -> Outcome<Decided> {
        precondition(size > 0, "a chunk holds at least one request")
        var out = Outcome<Decided>(decided: [], failure: nil)
        out.decided.reserveCapacity(items.count)
        var start = items.startIndex
        while start < items.endIndex {
            let end = min(start + size, items.endIndex)
            do { out.decided += try decide(Array(items[start..<end])) } catch {
                out.failure = error
                break
            }
            start = end
        }
        return out
    }
}

extension AdmissionChunks {
    /// `decide`, with the caller's own work on each chunk done while its neighbours are recorded:
    /// on the calling thread, `prepare` readies chunk k+1 and `finish` handles chunk k-1's answers
    /// while `record` writes chunk k on `recorder`. On two cores a large payload's preparation and
    /// answers then cost little more than its transactions.
    ///
    /// The chunks are recorded one after another, in order, each after the one before it returned
    /// (so each still reads the ones before it), and `finish` sees them in order. `prepare` must not
    /// read what earlier chunks record: it runs before they are recorded. A caller inside
    /// `StoreReachability.failingFast` has its chunks recorded failing fast too. A batch of one
    /// chunk is recorded on the calling thread. When `record` throws, the
    /// chunks before stay decided and the rest are not recorded (as with `decide`).
    /// - Parameters:
    ///   - prepare: on the calling thread, chunk by chunk, in order.
    ///   - record: on `recorder` (on the calling thread for a single chunk), one chunk at a time:
    ///     one store transaction.
    ///   - finish: on the calling thread, in order: one result per item of the chunk.
    public static func pipelined<Item, Prepared: Sendable, Recorded: Sendable, Finished>(
        _ items: [Item], size: Int = size, recorder: DispatchQueue,
        prepare: (ArraySlice<Item>) -> Prepared,
        record: @escaping @Sendable (Prepared) throws -> Recorded,
        finish: (Prepared, Recorded) -> [Finished]
    ) -> Outcome<Finished> {
        precondition(size > 0, "a chunk holds at least one request")
        var out = Outcome<Finished>(decided: [], failure: nil)
        out.decided.reserveCapacity(items.count)
        var chunks = stride(from: items.startIndex, to: items.endIndex, by: size).lazy.map { start in
            items[start..<min(start + size, items.endIndex)]
        }.makeIterator()
        guard let first = chunks.next() else { return out }
        // One chunk has nothing to overlap: it is recorded here, with no hop to the recorder and
        // back (a webhook of a few alerts, the usual case).
        guard first.count < items.count else {
            let prepared = prepare(first)
            do { out.decided = finish(prepared, try record(prepared)) } catch { out.failure = error }
            precondition(out.failure != nil || out.decided.count == first.count, "one result per item")
            return out
        }
        var inFlight = (count: first.count, prepared: prepare(first), recording: Recording<Recorded>())
        inFlight.recording.start(on: recorder) { [p = inFlight.prepared] in try record(p) }
        while true {
            let nextChunk = chunks.next()
            let next = nextChunk.map(prepare)
            let recorded: Recorded
            do { recorded = try inFlight.recording.wait() } catch {
                out.failure = error
                return out
            }
            let done = inFlight
            if let nextChunk, let next {
                inFlight = (nextChunk.count, next, Recording<Recorded>())
                inFlight.recording.start(on: recorder) { try record(next) }
            }
            let finished = finish(done.prepared, recorded)
            precondition(finished.count == done.count, "one result per item")
            out.decided.append(contentsOf: finished)
            if next == nil { return out }
        }
    }

    /// One chunk being recorded on the recorder's queue, and the caller waiting for it.
    private final class Recording<Recorded: Sendable>: @unchecked Sendable {
        // `result` is guarded by `condition`.
        private let condition = NSCondition()
        private var result: Result<Recorded, any Error>?

        /// Runs `body` on `queue`, failing fast there when the caller does (`StoreReachability`:
        /// a webhook's admission gives up on an unreachable store at once, on whichever thread).
        func start(on queue: DispatchQueue, _ body: @escaping @Sendable () throws -> Recorded) {
            let failsFast = StoreReachability.failsFast
            queue.async {
                let r = Result { failsFast ? try StoreReachability.failingFast(body) : try body() }
                self.condition.withLock {
                    self.result = r
                    self.condition.signal()
                }
            }
        }

        /// Blocks the calling thread until the chunk is recorded (call it off Swift concurrency's pool).
        func wait() throws -> Recorded {
            StoreThreads.assertNotInTask("waiting for a chunk of an admission to be recorded")
            condition.lock()
            defer { condition.unlock() }
            while result == nil { condition.wait() }
            return try result!.get()
        }
    }
}

extension AdmissionChunks.Outcome: Sendable where Decided: Sendable {}

extension RunDatabase {
    /// `admitAll` in chunks of at most `size` requests, one transaction each (`AdmissionChunks`).
    public func admitInChunks(_ requests: [AdmissionRequest], now: Date, size: Int = AdmissionChunks.size) -> AdmissionChunks.Outcome<AdmissionDecision> {
        AdmissionChunks.decide(requests, size: size) { try admitAll($0, now: now) }
    }
}
