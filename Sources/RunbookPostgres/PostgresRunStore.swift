import Dispatch
import Foundation
import Logging
import PostgresNIO
import RunbookCore
import RunbookStoreContract

/// Run history, timelines, guards, gates and leases in PostgreSQL, shared by any number of `serve`
/// replicas and the CLI (SPEC §6.8).
///
/// - Exactly one run per alert: admission (dedupe, lock, max_active, breaker, cooldown, max_runs
///   and the run's row) happens in one transaction that first takes a transaction-level advisory
///   lock, so admissions from all replicas are serialised; a unique index over open
///   (runbook, fingerprint) pairs backs it.
/// - Ownership: each open run names its owner and a lease time the owner renews every 2 s. A run
///   whose lease expired is claimed by another replica (`FOR UPDATE SKIP LOCKED`) and taken over.
/// - Timelines are rows of the `events` table, so every replica and the CLI read the same runs.
///
/// The engine's callers are Dispatch threads; each call here blocks its caller until PostgreSQL
/// answers (or 15 s pass), never a Swift concurrency thread (debug builds check it; async code goes
/// through `StoreThreads.run`).
public final class PostgresRunStore: ReplicatedRunDatabase, @unchecked Sendable {
    // `held`, `timers`, `lostHandler` and `latencies` are guarded by `lock`; everything else is immutable after init.
    public let location: String
    /// This process, as recorded in `runs.owner`.
    public let owner: String
    let client: PostgresClient
    /// Connections of admission's own: a burst of run writes (a takeover of a dead replica's runs)
    /// never leaves an alert waiting for a connection.
    let admissionClient: PostgresClient
    let logger: Logger
    let lock = NSLock()
    var held: [String: HeldLease] = [:]
    /// The store's own renewal and give-up timers (nil once `renewsOnItsOwn` is false).
    var timers: [any DispatchSourceTimer] = []
    /// Told of runs another process took while this one held them (see `onLost`).
    var lostHandler: (@Sendable ([String]) -> Void)?
    /// Where admission's queries continue: never behind the continuations of run writes, since an
    /// admission holds the lock every replica's admissions wait for.
    let admissionExecutor: StoreTaskExecutor
    private let runTask: Task<Void, Never>
    private let admissionRunTask: Task<Void, Never>
    /// Seconds a lease lasts without renewal; renewed every `renewEvery` (`LeaseTiming`).
    public static let leaseSeconds = LeaseTiming.leaseSeconds
    public static let renewEvery = LeaseTiming.renewEvery
    /// Every query's longest wait.
    static let queryTimeout = 15.0
    /// Latency of the last queries, for /metrics.
    private var latencies: [Double] = []
    /// What the health probe last found (`startMonitoring`).
    public let reachability = StoreReachability()
    /// Where the probe connects.
    let target: (host: String, port: Int, user: String, password: String?, database: String)
    /// The probe, once started (guarded by `lock`).
    var monitoring = false
    var probe: Task<Void, Never>?

    /// Connects to `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`) and runs the migrations under
    /// an advisory lock.
    /// - Throws: `PostgresStoreError` for a bad URL, an unreachable server or a failed migration.
    public init(url: String, owner: String) throws {
        guard let c = URLComponents(string: url), ["postgres", "postgresql"].contains(c.scheme ?? ""),
              let host = c.host, !host.isEmpty, let user = c.user, !user.isEmpty else {
            throw PostgresStoreError("database URL \(Self.redacted(url)): expected postgres://USER[:PASSWORD]@HOST[:PORT]/DB")
        }
        let db = c.path.hasPrefix("/") ? String(c.path.dropFirst()) : c.path
        target = (host, c.port ?? 5432, user, c.password, db.isEmpty ? user : db)
        var config = PostgresClient.Configuration(host: host, port: c.port ?? 5432, username: user, password: c.password,
                                                  database: db.isEmpty ? user : db, tls: .disable)
        config.options.maximumConnections = 8
        // Kept open from the start: a replica that just (re)started admits and writes without
        // first waiting for connections to be made, under the load its restart caught.
        config.options.minimumConnections = 4
        config.options.connectionIdleTimeout = .seconds(60)
        var logger = Logger(label: "runbook.postgres")
        logger.logLevel = .critical
        self.logger = logger
        self.location = Self.redacted(url)
        self.owner = owner
        let client = PostgresClient(configuration: config, backgroundLogger: logger)
        self.client = client
        var admissionConfig = config
        admissionConfig.options.maximumConnections = 2
        admissionConfig.options.minimumConnections = 1
        let admissionClient = PostgresClient(configuration: admissionConfig, backgroundLogger: logger)
        self.admissionClient = admissionClient
        // The clients' loops and every query run on the stores' own executor, never waiting for a
        // cooperative thread the host program may be using.
        runTask = Task(executorPreference: StoreThreads.executor) { await client.run() }
        let admissionExecutor = StoreTaskExecutor(label: "runbook.store.admission")
        self.admissionExecutor = admissionExecutor
        admissionRunTask = Task(executorPreference: admissionExecutor) { await admissionClient.run() }
        do {
            try migrate()
        } catch {
            runTask.cancel()
            admissionRunTask.cancel()
            // `sync` already names the URL.
            let why = (error as? PostgresStoreError)?.description ?? "\(location): \(Self.describe(error))"
            throw PostgresStoreError("cannot open \(why); check with pg_isready -h \(host) -p \(c.port ?? 5432) that PostgreSQL answers, and that the database, the user and its password are right")
        }
        startRenewal()
    }

    deinit {
        lock.withLock { timers }.forEach { $0.cancel() }
        probe?.cancel()
        runTask.cancel()
        admissionRunTask.cancel()
    }

    static func redacted(_ url: String) -> String {
        guard var c = URLComponents(string: url) else { return "postgres://?" }
        if c.password != nil { c.password = "***" }
        return c.string ?? "postgres://?"
    }

    static func describe(_ error: any Error) -> String {
        if let p = error as? PSQLError {
            if let m = p.serverInfo?[.message] { return m }
            return "\(p.code)"
        }
        return "\(error)"
    }

    // MARK: Blocking bridge

    /// Runs `body` on the client and waits for it (at most `queryTimeout`). A call that gives up
    /// cancels `body`, so a query still waiting for a connection never runs later. Inside
    /// `StoreReachability.failingFast` it fails at once while the probe finds the store unreachable,
    /// and gives up as soon as the probe finds it gone.
    /// - Parameter admission: on admission's own connections.
    func sync<T: Sendable>(admission: Bool = false, _ body: @escaping @Sendable (PostgresClient) async throws -> T) throws -> T {
        StoreThreads.assertNotInTask("PostgreSQL query on \(location)")
        if let why = unreachableForFailFast() { throw StoreUnreachableError(location: location, reason: why) }
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        let client = admission ? admissionClient : self.client
        let started = Date()
        let task = Task(executorPreference: admission ? admissionExecutor : StoreThreads.executor) {
            do { box.set(.success(try await body(client))) } catch { box.set(.failure(error)) }
            done.signal()
        }
        let slice = StoreReachability.failsFast ? 0.1 : Self.queryTimeout
        while done.wait(timeout: .now() + slice) != .success {
            if let why = unreachableForFailFast() {
                task.cancel()
                throw StoreUnreachableError(location: location, reason: why)
            }
            if Date().timeIntervalSince(started) >= Self.queryTimeout {
                task.cancel()
                throw StoreUnreachableError(location: location, reason: "no answer within \(Int(Self.queryTimeout)) s: is PostgreSQL up and reachable from this machine?")
            }
        }
        guard let result = box.get() else {
            throw PostgresStoreError("\(location): the query ended without an answer")
        }
        record(latency: Date().timeIntervalSince(started))
        switch result {
        case .success(let v): return v
        case .failure(let e):
            if Self.meansUnreachable(e) { throw StoreUnreachableError(location: location, reason: Self.describe(e)) }
            throw PostgresStoreError("\(location): \(Self.describe(e))")
        }
    }

    /// Whether `error` says the server could not be reached or went away (its connection closed or
    /// refused, the server shutting down), rather than that it refused the statement.
    static func meansUnreachable(_ error: any Error) -> Bool {
        guard let p = error as? PSQLError else { return false }
        if [.serverClosedConnection, .connectionError, .uncleanShutdown].contains(p.code) { return true }
        guard p.code == .server, let state = p.serverInfo?[.sqlState] else { return false }
        // Class 08: connection exceptions; 57P01-57P03: shut down, crashed, not accepting connections yet.
        return state.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(state)
    }

    func record(latency: Double) {
        lock.withLock {
            latencies.append(latency)
            if latencies.count > 1000 { latencies.removeFirst(latencies.count - 1000) }
        }
    }

    /// Median and worst of the last thousand queries, in seconds.
    public var latency: (p50: Double, max: Double)? {
        lock.withLock {
            guard !latencies.isEmpty else { return nil }
            let sorted = latencies.sorted()
            return (sorted[sorted.count / 2], sorted.last!)
        }
    }

    func execute(_ query: PostgresQuery) throws {
        _ = try sync { try await $0.query(query).drain() }
    }

}

/// A PostgreSQL store that cannot do what was asked: the URL, the server, a query.
public struct PostgresStoreError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Carries a result from a task to the thread waiting for it.
final class ResultBox<T: Sendable>: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var value: Result<T, any Error>?
    func set(_ v: Result<T, any Error>) { lock.withLock { value = v } }
    func get() -> Result<T, any Error>? { lock.withLock { value } }
}

extension PostgresRowSequence {
    /// Every row, decoded.
    func all<each Column: PostgresDecodable>(_ type: (repeat each Column).Type) async throws -> [(repeat each Column)] {
        var out: [(repeat each Column)] = []
        for try await row in self { out.append(try row.decode(type)) }
        return out
    }

    /// Reads and drops every row; the statement is done when this returns.
    @discardableResult
    func drain() async throws -> Int {
        var n = 0
        for try await _ in self { n += 1 }
        return n
    }
}
