import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import RunbookCore

/// One HTTP answer, as the checks see it.
struct HTTPAnswer: Sendable {
    var status: Int
    var body: String
    var latency: Double
}

/// HTTP requests on AsyncHTTPClient's shared client: event-loop I/O, no thread held while waiting.
enum HTTPProbe {
    /// Largest body kept; metrics pages and health answers are far smaller.
    static let maxBody = 4 << 20

    /// One client for the process. AsyncHTTPClient retries a refused connection until the connect
    /// timeout, so that timeout is kept short: a dead endpoint is reported in about a second.
    static let client: HTTPClient = {
        var config = HTTPClient.Configuration(timeout: .init(connect: .seconds(1)))
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: config)
    }()

    /// Sends a request; `completion` gets the answer or a message saying why there is none.
    static func send(method: String = "GET", url: String, headers: [(String, String)] = [], body: String? = nil,
                     timeout: Double, completion: @escaping @Sendable (Result<HTTPAnswer, ProbeFailure>) -> Void) -> any Cancellable {
        // A templated URL is checked here, once rendered, as the loader checks a literal one.
        if let problem = ActionDecoder.urlProblem(url) {
            completion(.failure(ProbeFailure("bad URL '\(url)': it \(problem) (write it like http://host:8080/path)")))
            return NothingToCancel()
        }
        let request: HTTPClient.Request
        do {
            var h = HTTPHeaders()
            for (k, v) in headers { h.add(name: k, value: v) }
            if body != nil, !h.contains(name: "Content-Type") { h.add(name: "Content-Type", value: "application/json") }
            request = try HTTPClient.Request(url: url, method: HTTPMethod(rawValue: method), headers: h, body: body.map { .string($0) })
        } catch {
            completion(.failure(ProbeFailure("bad URL '\(url)': \(error)")))
            return NothingToCancel()
        }
        let started = Date()
        let deadline = NIODeadline.now() + .milliseconds(Int64(max(0.001, timeout) * 1000))
        let task = client.execute(request: request, delegate: ResponseAccumulator(request: request, maxBodySize: maxBody), deadline: deadline)
        task.futureResult.whenComplete { result in
            switch result {
            case .success(let r):
                let text = r.body.map { String(buffer: $0) } ?? ""
                completion(.success(HTTPAnswer(status: Int(r.status.code), body: text, latency: Date().timeIntervalSince(started))))
            case .failure(let e):
                var f = ProbeFailure("\(method) \(url): \(describe(e))")
                f.timedOut = isTimeout(e)
                completion(.failure(f))
            }
        }
        return TaskCanceller(task: task)
    }

    /// The request ran out of its time (the step's timeout): the step timed out, it did not error.
    static func isTimeout(_ e: any Error) -> Bool {
        guard let h = e as? HTTPClientError else { return false }
        return h == .deadlineExceeded || h == .readTimeout || h == .connectTimeout
    }

    static func describe(_ e: any Error) -> String {
        if let h = e as? HTTPClientError {
            switch h {
            case .deadlineExceeded, .readTimeout, .connectTimeout: return "timed out"
            case .remoteConnectionClosed: return "connection closed by the server"
            case .cancelled: return "cancelled"
            default: return "\(h)"
            }
        }
        let text = "\(e)"
        if text.contains("connectionRefused") || text.contains("Connection refused") { return "connection refused" }
        return text
    }
}

/// Why a probe has no answer.
struct ProbeFailure: Error, Sendable {
    var message: String
    /// It ran out of time rather than failing (refused, reset, unknown name).
    var timedOut = false
    init(_ message: String) { self.message = message }
}

private struct TaskCanceller<R>: Cancellable, @unchecked Sendable {
    // HTTPClient.Task is thread-safe for cancel().
    let task: HTTPClient.Task<R>
    func cancel() { task.cancel() }
}

/// Reading dotted paths out of JSON: `db.up`, `items.0.name`.
enum JSONPath {
    static func value(_ root: Any, _ path: String) -> Any? {
        var current: Any? = root
        for part in path.split(separator: ".") {
            if let d = current as? [String: Any] { current = d[String(part)] }
            else if let a = current as? [Any], let i = Int(part), a.indices.contains(i) { current = a[i] }
            else { return nil }
        }
        return current
    }

    /// Compares a JSON value with a runbook's expected value.
    static func matches(_ actual: Any?, _ expected: Value) -> Bool {
        guard let actual, !(actual is NSNull) else { return expected == .null }
        switch expected {
        case .null: return false
        case .bool(let b):
            if let n = actual as? NSNumber, String(cString: n.objCType) == "c" { return n.boolValue == b }
            return (actual as? Bool) == b
        case .number(let d):
            if let n = actual as? NSNumber { return n.doubleValue == d }
            return (actual as? String).flatMap(Double.init) == d
        case .string(let s):
            if let a = actual as? String { return a == s }
            return "\(actual)" == s
        }
    }

    static func render(_ actual: Any?) -> String {
        guard let actual else { return "missing" }
        if let s = actual as? String { return "\"\(s)\"" }
        if let n = actual as? NSNumber, String(cString: n.objCType) == "c" { return n.boolValue ? "true" : "false" }
        return "\(actual)"
    }
}
