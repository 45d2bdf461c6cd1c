import Foundation
import RunbookCore
import RunbookStoreContract

/// Honest answers while the store is down: a request that needs the store gets 503 (send again)
/// at once, never an empty list or an answer after the database came back; `/healthz` says the
/// store is unreachable and `/readyz` answers 503 so that a load balancer sends elsewhere.
extension RunAPI {
    /// The store's health probe, when it has one (PostgreSQL).
    var reachability: StoreReachability? { (store as? any ReachabilityMonitored)?.reachability }

    /// A 503 while the store is known unreachable, else nil.
    func storeUnavailable() -> (Int, String)? {
        guard let why = reachability?.unreachableReason else { return nil }
        return Self.unavailable(StoreUnreachableError(location: store.location, reason: why))
    }

    /// The 503 for a store that cannot be reached: the client should send again.
    static func unavailable(_ e: StoreUnreachableError) -> (Int, String) {
        error(503, "\(e.description): send again")
    }

    /// `GET /healthz`: 200 while the process serves (a supervisor must not restart it for a database
    /// outage), saying whether the store answers.
    public func health() -> (Int, String) {
        let active = launcher.activeCount
        if let r = reachability, let why = r.unreachableReason {
            let since = r.unreachableSince.map { TimelineEvent.timestamp($0) } ?? ""
            return (200, "{\"status\":\"degraded\",\"store\":\"unreachable\",\"store_error\":\(JSONText.string(why)),"
                + "\"store_unreachable_since\":\(JSONText.string(since)),\"active_runs\":\(active)}")
        }
        return (200, "{\"status\":\"ok\",\"store\":\"ok\",\"active_runs\":\(active)}")
    }

    /// `GET /readyz`: 200 when this server can take webhooks (its store answers), 503 otherwise.
    public func readiness() -> (Int, String) {
        if let why = reachability?.unreachableReason {
            return (503, "{\"ready\":false,\"store\":\"unreachable\",\"store_error\":\(JSONText.string(why))}")
        }
        return (200, "{\"ready\":true,\"store\":\"ok\"}")
    }

    /// The answer for a read the store could not serve: 503 (try again), never an empty answer.
    static func readFailed(_ error: any Error) -> (Int, String) {
        if let e = error as? StoreUnreachableError { return unavailable(e) }
        return Self.error(503, "the store could not be read, try again: \(error)")
    }
}
