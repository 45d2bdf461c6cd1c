import Foundation
import RunbookStoreContract

/// Decides the requests of webhooks that arrive while an admission is in flight together, in one
/// admission (flat combining).
///
/// Every admission on a database that replicas share is a transaction behind one advisory lock, so
/// admitting each webhook on its own makes that lock the queue at a few hundred webhooks a second.
/// Here the first caller to find no admission in flight leads: it takes every request waiting (up to
/// `limit` requests, at least one caller's), decides them with one call of `decide`, hands each
/// caller its own decisions and steps down; callers that arrived meanwhile are decided by the next
/// leader, together. Callers keep their arrival order, so each is decided after the ones before it.
///
/// Callers block until their decisions are in: call it from the server's intake threads, never from
/// a Swift concurrency thread.
final class AdmissionCombiner<Request: Sendable, Decision: Sendable>: @unchecked Sendable {
    // `waiting`, `leading` and every ticket's `decisions` are guarded by `condition`.
    private let condition = NSCondition()
    private var waiting: [Ticket] = []
    private var leading = false
    /// Most requests decided together, unless one caller alone brings more.
    let limit: Int

    private final class Ticket {
        let requests: [Request]
        var decisions: [Decision]?
        init(_ requests: [Request]) { self.requests = requests }
    }

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// Callers waiting for a leader to take their requests (for tests).
    var waitingCount: Int { condition.withLock { waiting.count } }

    /// Decides `requests` with those of other callers waiting now; returns this caller's decisions.
    /// - Parameter decide: one decision per request, in order (every caller passes the same).
    func submit(_ requests: [Request], decide: ([Request]) -> [Decision]) -> [Decision] {
        guard !requests.isEmpty else { return [] }
        StoreThreads.assertNotInTask("waiting to be admitted with other webhooks")
        let mine = Ticket(requests)
        condition.lock()
        waiting.append(mine)
        while mine.decisions == nil {
            if leading {
                condition.wait()
                continue
            }
            leading = true
            let batch = takeBatch()
            condition.unlock()
            let all = batch.flatMap(\.requests)
            let decisions = decide(all)
            precondition(decisions.count == all.count, "one decision per request")
            condition.lock()
            var at = decisions.startIndex
            for ticket in batch {
                ticket.decisions = Array(decisions[at..<at + ticket.requests.count])
                at += ticket.requests.count
            }
            leading = false
            condition.broadcast()
        }
        let out = mine.decisions!
        condition.unlock()
        return out
    }

    /// The callers the next admission decides: the first one waiting, and those after it while
    /// their requests stay within `limit` (called holding the lock).
    private func takeBatch() -> [Ticket] {
        var count = 0, taken = 0
        for ticket in waiting {
            if taken > 0, count + ticket.requests.count > limit { break }
            count += ticket.requests.count
            taken += 1
        }
        defer { waiting.removeFirst(taken) }
        return Array(waiting.prefix(taken))
    }
}
