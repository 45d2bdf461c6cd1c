import Dispatch
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import RunbookStoreContract

/// The health probe: a connection of its own (never one a busy pool would make it wait for) runs
/// `SELECT 1` every half second with a one-second limit. A stopped server closes that connection,
/// so the probe sees an outage within half a second; a silent network within a second and a half.
extension PostgresRunStore: ReachabilityMonitored {
    /// Seconds between probes, and each probe's limit (connecting included).
    static let probeEvery = 0.5
    static let probeTimeout = 1.0

    public func startMonitoring() {
        let start = lock.withLock { () -> Bool in
            defer { monitoring = true }
            return !monitoring
        }
        guard start else { return }
        let (config, reachability, logger) = (probeConfiguration, reachability, logger)
        let task = Task(executorPreference: StoreThreads.executor) {
            var connection: PostgresConnection?
            while !Task.isCancelled {
                let open = connection
                let outcome = await Self.within(Self.probeTimeout) { () async throws -> PostgresConnection in
                    let c: PostgresConnection
                    if let open { c = open } else {
                        c = try await PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.next(),
                                                                 configuration: config, id: 0, logger: logger).get()
                    }
                    if Task.isCancelled {
                        if open == nil { try? await c.close() }
                        throw CancellationError()
                    }
                    _ = try await c.query("SELECT 1", logger: logger).get()
                    return c
                }
                switch outcome {
                case .success(let c)?:
                    connection = c
                    reachability.markReachable()
                case .failure(let e)?:
                    try? await connection?.close()
                    connection = nil
                    reachability.markUnreachable(Self.describe(e))
                case nil:
                    if let c = connection { Task { try? await c.close() } }
                    connection = nil
                    reachability.markUnreachable("no answer within \(Self.probeTimeout) s")
                }
                try? await Task.sleep(for: .milliseconds(Int64(Self.probeEvery * 1000)))
            }
            try? await connection?.close()
        }
        lock.withLock { probe = task }
    }

    /// The probe's connection settings: the store's own, with a short connect limit.
    var probeConfiguration: PostgresConnection.Configuration {
        var c = PostgresConnection.Configuration(host: target.host, port: target.port, username: target.user,
                                                 password: target.password, database: target.database, tls: .disable)
        c.options.connectTimeout = .milliseconds(Int64(Self.probeTimeout * 1000))
        return c
    }

    /// `body`'s result, or nil once `seconds` passed (then `body` is cancelled and its result dropped).
    static func within<T: Sendable>(_ seconds: Double, _ body: @escaping @Sendable () async throws -> T) async -> Result<T, any Error>? {
        let box = FirstAnswer<Result<T, any Error>?>()
        return await withCheckedContinuation { (c: CheckedContinuation<Result<T, any Error>?, Never>) in
            box.set(c)
            let task = Task(executorPreference: StoreThreads.executor) {
                do { box.answer(.success(try await body())) } catch { box.answer(.failure(error)) }
            }
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds) {
                task.cancel()
                box.answer(nil)
            }
        }
    }

    /// Whether a call made in `StoreReachability.failingFast` should give up now: the probe finds
    /// the store unreachable. Returns the reason.
    func unreachableForFailFast() -> String? {
        guard StoreReachability.failsFast else { return nil }
        return reachability.unreachableReason
    }
}

/// Resumes a continuation with the first answer given; later answers are dropped.
final class FirstAnswer<T: Sendable>: @unchecked Sendable {
    // Guarded by `lock`; nil once answered.
    private let lock = NSLock()
    private var continuation: CheckedContinuation<T, Never>?

    /// Called first, before anything may answer.
    func set(_ c: CheckedContinuation<T, Never>) { lock.withLock { continuation = c } }

    func answer(_ value: T) {
        let c = lock.withLock { () -> CheckedContinuation<T, Never>? in
            defer { continuation = nil }
            return continuation
        }
        c?.resume(returning: value)
    }
}
