import Foundation

/// Asks which hosts a `prometheus:` target set names: the live engine queries the server's HTTP
/// API; a drill, which contacts nothing, answers with the `within` inventory's hosts.
public protocol PrometheusHostLookup: Sendable {
    /// The values of `source.label` over the query's result vector, in the answer's order.
    /// - Parameter within: the set's `within` inventory (absolute), every host of which may be named.
    /// - Throws: an error whose description says why there is no answer (unreachable, a query error).
    func hosts(_ source: PrometheusTargets, within: String?) throws -> [String]
}

/// A drill's answer for `prometheus:` sets: no server is asked; the rehearsal acts on every host
/// of the set's `within` inventory (its outcomes per host name them).
public struct RehearsedPrometheusLookup: PrometheusHostLookup {
    public init() {}

    public func hosts(_ source: PrometheusTargets, within: String?) throws -> [String] {
        guard let within else { return [] }
        return try Inventory.load(path: within).all
    }
}
