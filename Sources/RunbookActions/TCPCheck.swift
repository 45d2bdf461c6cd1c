import Foundation
import NIOCore
import NIOPosix
import RunbookCore

/// The `tcp` check: connect, measure, close.
enum TCPCheck {
    static func run(_ c: TCPCheckSpec, _ request: StepRequest, completion: @escaping @Sendable (StepResult) -> Void) -> any Cancellable {
        let host = request.render(c.host)
        // A templated port is checked here, after rendering; a literal one was checked at load.
        let portText = c.port.render(request.render)
        guard let port = Int(portText), (1...65535).contains(port) else {
            completion(StepResult(.failed, "port '\(portText)' is not a number from 1 to 65535"))
            return NothingToCancel()
        }
        let maxLatency = c.maxLatency
        let started = Date()
        let timeout = TimeAmount.milliseconds(Int64(request.step.timeout * 1000))
        let future = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connectTimeout(timeout).connect(host: host, port: port)
        future.whenComplete { result in
            let latency = Date().timeIntervalSince(started)
            switch result {
            case .success(let channel):
                channel.close(promise: nil)
                let output: [String: Value] = ["latency_ms": .number((latency * 1000).rounded())]
                if let maxLatency, latency > maxLatency {
                    completion(StepResult(.failed, "connected to \(host):\(port) in \(Quantity.formatDuration(latency)), over \(Quantity.formatDuration(maxLatency))", output: output))
                } else {
                    completion(StepResult(.passed, "connected to \(host):\(port) in \(Quantity.formatDuration(latency))", output: output))
                }
            case .failure(let e):
                completion(StepResult(.errored, "cannot connect to \(host):\(port): \(HTTPProbe.describe(e))"))
            }
        }
        return NothingToCancel()
    }
}
