import Dispatch
import Foundation
import RunbookCore
import RunbookStoreContract

/// The live answer for `targets.NAME.prometheus`: one instant query on the server's HTTP API
/// (through `HTTPProbe`, as the `prometheus` check), whose result vector's `label` values are the
/// hosts. Asked once, before the run starts, by the thread preparing it (never a Swift task's).
public struct PrometheusHosts: PrometheusHostLookup {
    /// Longest the query may take before the run is refused.
    public var timeout: Double

    public init(timeout: Double = 10) {
        self.timeout = timeout
    }

    public func hosts(_ source: PrometheusTargets, within: String?) throws -> [String] {
        StoreThreads.assertNotInTask("asking Prometheus for a target set's hosts")
        let box = Answer()
        let done = DispatchSemaphore(value: 0)
        _ = HTTPProbe.send(url: Self.url(source), timeout: timeout) { result in
            box.set(result)
            done.signal()
        }
        done.wait()
        guard let result = box.get() else { throw PrometheusHostsError("Prometheus at \(source.url) gave no answer") }
        switch result {
        case .failure(let f): throw PrometheusHostsError("cannot ask Prometheus at \(source.url): \(f.message)")
        case .success(let a): return try Self.labelValues(a.body, status: a.status, source)
        }
    }

    /// `BASE/api/v1/query?query=Q`, with `+ & = ; #` in the query encoded so that they stay its own.
    static func url(_ source: PrometheusTargets) -> String {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "+&=;#")
        let base = source.url.hasSuffix("/") ? String(source.url.dropLast()) : source.url
        return base + "/api/v1/query?query=" + (source.query.addingPercentEncoding(withAllowedCharacters: allowed) ?? source.query)
    }

    /// The label's values over an instant vector, in the answer's order; a series without the label is an error.
    static func labelValues(_ body: String, status: Int, _ source: PrometheusTargets) throws -> [String] {
        guard let obj = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any] else {
            throw PrometheusHostsError("Prometheus at \(source.url) answered \(status) without JSON")
        }
        guard obj["status"] as? String == "success", let data = obj["data"] as? [String: Any] else {
            throw PrometheusHostsError("Prometheus refused \(source.query): \(obj["error"] as? String ?? "query failed (\(status))")")
        }
        guard data["resultType"] as? String == "vector", let series = data["result"] as? [[String: Any]] else {
            throw PrometheusHostsError("\(source.query) gave a \(data["resultType"] as? String ?? "?"), not an instant vector: hosts come from its series' labels")
        }
        return try series.map { s in
            guard let value = (s["metric"] as? [String: Any])?[source.label] as? String else {
                throw PrometheusHostsError("a series of \(source.query) has no label \(source.label): \(s["metric"] ?? [:])")
            }
            return value
        }
    }

    /// The one answer, handed from NIO's thread to the waiting one.
    final class Answer: @unchecked Sendable {
        private let lock = NSLock()
        private var value: Result<HTTPAnswer, ProbeFailure>?
        func set(_ v: Result<HTTPAnswer, ProbeFailure>) { lock.withLock { value = v } }
        func get() -> Result<HTTPAnswer, ProbeFailure>? { lock.withLock { value } }
    }
}

/// Why a `prometheus:` target set has no hosts to give.
public struct PrometheusHostsError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}
