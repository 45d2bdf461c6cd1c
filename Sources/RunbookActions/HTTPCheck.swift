import Foundation
import RunbookCore

/// The `http` check.
enum HTTPCheck {
    static func run(_ c: HTTPCheckSpec, _ request: StepRequest, completion: @escaping @Sendable (StepResult) -> Void) -> any Cancellable {
        let url = request.render(c.url)
        let method = c.method
        let headers = c.headers.map { ($0.name, request.render($0.value)) }
        let body = c.body.map(request.render)
        let expected = c.status
        let contains = c.contains.map(request.render)
        let jsonExpect = c.json.map { ($0.path, $0.value) }
        let maxLatency = c.maxLatency
        return HTTPProbe.send(method: method, url: url, headers: headers, body: body, timeout: request.step.timeout) { result in
            switch result {
            case .failure(let f):
                // Out of time: the step timed out, whichever timer noticed first. Refused, reset,
                // unknown name: the check could not measure.
                completion(StepResult(f.timedOut ? .timedOut : .errored, f.message))
            case .success(let a):
                var output: [String: Value] = ["status": .number(Double(a.status)), "latency_ms": .number((a.latency * 1000).rounded())]
                let head = "\(method) \(url): \(a.status) in \(Quantity.formatDuration(a.latency))"
                var problems: [String] = []
                if let expected {
                    if !expected.contains(a.status) { problems.append("status \(a.status), expected \(expected.map(String.init).joined(separator: " or "))") }
                } else if !(200..<400).contains(a.status) {
                    problems.append("status \(a.status), expected 2xx or 3xx")
                }
                if let contains, !a.body.contains(contains) { problems.append("body does not contain '\(contains)'") }
                if !jsonExpect.isEmpty {
                    if let root = try? JSONSerialization.jsonObject(with: Data(a.body.utf8), options: [.fragmentsAllowed]) {
                        for (path, want) in jsonExpect {
                            let got = JSONPath.value(root, path)
                            output["json.\(path)"] = got.map { v in
                                if let s = v as? String { return .string(s) }
                                if let n = v as? NSNumber { return String(cString: n.objCType) == "c" ? .bool(n.boolValue) : .number(n.doubleValue) }
                                return .string("\(v)")
                            } ?? .null
                            if !JSONPath.matches(got, want) { problems.append("\(path) is \(JSONPath.render(got)), expected \(JSONText.value(want))") }
                        }
                    } else {
                        problems.append("body is not JSON")
                    }
                }
                if let maxLatency, a.latency > maxLatency {
                    problems.append("latency \(Quantity.formatDuration(a.latency)) over \(Quantity.formatDuration(maxLatency))")
                }
                completion(StepResult(problems.isEmpty ? .passed : .failed, problems.isEmpty ? head : head + ": " + problems.joined(separator: "; "), output: output))
            }
        }
    }
}
