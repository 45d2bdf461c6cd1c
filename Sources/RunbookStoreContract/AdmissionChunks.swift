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
    public static let size = 250

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

extension AdmissionChunks.Outcome: Sendable where Decided: Sendable {}

extension RunDatabase {
    /// `admitAll` in chunks of at most `size` requests, one transaction each (`AdmissionChunks`).
    public func admitInChunks(_ requests: [AdmissionRequest], now: Date, size: Int = AdmissionChunks.size) -> AdmissionChunks.Outcome<AdmissionDecision> {
        AdmissionChunks.decide(requests, size: size) { try admitAll($0, now: now) }
    }
}
