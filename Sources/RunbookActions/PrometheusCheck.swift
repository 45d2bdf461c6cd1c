import Foundation
import RunbookCore

/// The `prometheus` check: an instant query against the HTTP API.
enum PrometheusCheck {
    /// Runs `query` and returns the sample values of the result.
    static func query(server: String, query: String, timeout: Double, completion: @escaping @Sendable (Result<[Double], ProbeFailure>) -> Void) -> any Cancellable {
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "+&=;#")
        let q = query.addingPercentEncoding(withAllowedCharacters: allowed) ?? query
        let base = server.hasSuffix("/") ? String(server.dropLast()) : server
        return HTTPProbe.send(url: "\(base)/api/v1/query?query=\(q)", timeout: timeout) { result in
            switch result {
            case .failure(let f): completion(.failure(f))
            case .success(let a):
                guard let obj = try? JSONSerialization.jsonObject(with: Data(a.body.utf8)) as? [String: Any] else {
                    return completion(.failure(ProbeFailure("Prometheus answered \(a.status) without JSON")))
                }
                guard obj["status"] as? String == "success", let data = obj["data"] as? [String: Any] else {
                    return completion(.failure(ProbeFailure("Prometheus: \(obj["error"] as? String ?? "query failed (\(a.status))")")))
                }
                var values: [Double] = []
                switch data["resultType"] as? String {
                case "vector":
                    for r in data["result"] as? [[String: Any]] ?? [] {
                        if let v = r["value"] as? [Any], v.count == 2, let s = v[1] as? String, let d = Double(s) { values.append(d) }
                    }
                case "scalar":
                    if let v = data["result"] as? [Any], v.count == 2, let s = v[1] as? String, let d = Double(s) { values.append(d) }
                default: break
                }
                completion(.success(values))
            }
        }
    }

    static func run(_ c: PrometheusCheckSpec, _ request: StepRequest, completion: @escaping @Sendable (StepResult) -> Void) -> any Cancellable {
        let server = request.render(c.url)
        let q = request.render(c.query)
        let above = c.above, below = c.below
        return query(server: server, query: q, timeout: request.step.timeout) { result in
            switch result {
            case .failure(let f): completion(StepResult(f.timedOut ? .timedOut : .errored, f.message))
            case .success(let values):
                var output: [String: Value] = ["series": .number(Double(values.count))]
                if let v = values.first { output["value"] = .number(v) }
                guard let first = values.first else {
                    return completion(StepResult(.failed, "query returned no data", output: output))
                }
                var problems: [String] = []
                if let above, !(first > above) { problems.append("\(Self.fmt(first)) is not above \(Self.fmt(above))") }
                if let below, !(first < below) { problems.append("\(Self.fmt(first)) is not below \(Self.fmt(below))") }
                let head = "value \(Self.fmt(first))\(values.count > 1 ? " (first of \(values.count) series)" : "")"
                completion(StepResult(problems.isEmpty ? .passed : .failed, problems.isEmpty ? head : problems.joined(separator: "; "), output: output))
            }
        }
    }

    static func fmt(_ d: Double) -> String { d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(format: "%.4g", d) }
}
