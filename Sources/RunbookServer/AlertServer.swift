import Dispatch
import Foundation
import NIOFoundationCompat
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOPosix
import RunbookActions
import RunbookCore
import RunbookRuntime
import RunbookStoreContract
import ServiceLifecycle
import UnixSignals

/// `runbook serve`: the hooks and the API on Hummingbird, run as a service with graceful shutdown.
public enum AlertServer {
    /// Largest request body accepted by default (413 beyond; `serve --max-body`).
    public static let maxBody = 1 << 20

    /// How the server listens and whom it lets in.
    public struct Options: Sendable {
        public var host: String
        public var port: Int
        /// nil: `--no-auth` (loopback only; every caller is an anonymous admin).
        public var tokens: TokenSet?
        /// `/metrics` without a token.
        public var metricsPublic = false
        /// A connection must deliver its request head within this many seconds.
        public var headTimeout: Double = 10
        /// A connection that has not yet sent a request with a known token must deliver its head
        /// within this many seconds (the shorter of this and `headTimeout`).
        public var unauthenticatedHeadTimeout: Double = 2
        /// A connection idle this long is closed.
        public var idleTimeout: Double = 60
        /// Connections held at once (at most half the descriptor limit). When full, the oldest
        /// connection that has not authenticated is closed to make room; when every one has, more
        /// wait in the listen backlog. Holding is cheap; closing makes a hostile client reopen at
        /// once and fill the listen backlog that alerts wait in, so the default is high.
        public var maxConnections = 4096
        /// Connections from one address that have not authenticated (nil: half of `maxConnections`);
        /// beyond it the address's oldest such connection is closed. Authenticated ones do not count.
        public var maxConnectionsPerAddress: Int?
        /// Largest request body accepted (413 beyond).
        public var maxBody = AlertServer.maxBody
        /// On SIGTERM, running steps may finish for this long; then the runs are interrupted.
        public var shutdownGrace: Double = 10
        /// Event streams (`/runs/ID/events`, `/runs/events`) open at once; more are answered 503.
        public var maxWatchers = 256

        public init(host: String, port: Int, tokens: TokenSet?) {
            self.host = host
            self.port = port
            self.tokens = tokens
        }
    }

    /// Builds and runs the server until SIGTERM or SIGINT: the HTTP server, takeovers (with a shared
    /// database) and the runs' drain are services of one group, shut down in that order.
    /// - Parameters:
    ///   - threads: where blocking work runs (admissions on one thread, the rest on a small pool).
    public static func run(_ options: Options, api: RunAPI, threads: ServerThreads, logger: Logger) async throws {
        let router = Router()
        let gate = Gatekeeper(tokens: options.tokens, sessions: ConsoleSessions())

        @Sendable func answer(_ r: (Int, String), type: String = "application/json") -> Response {
            var headers: HTTPFields = [.contentType: type]
            if r.0 == 401 { headers[.wwwAuthenticate] = "Bearer realm=\"runbook\"" }
            return Response(status: HTTPResponse.Status(code: r.0), headers: headers,
                            body: ResponseBody(byteBuffer: ByteBuffer(string: r.1 + "\n")))
        }
        /// The caller (a bearer token or a console session), or the answer refusing it (`Gatekeeper`).
        @Sendable func caller(_ request: Request, _ permission: Permission) -> Result<APIToken, HTTPRefusal> {
            gate.caller(request, permission)
        }
        /// Blocking work on `pool`, never on the cooperative pool; 503 once the pool stopped. Work
        /// that `needsStore` gets 503 at once while the store is known unreachable; its store calls
        /// fail fast (`StoreReachability.failingFast`), so nobody waits out a database outage.
        @Sendable func offload(_ pool: NIOThreadPool, needsStore: Bool = true, _ work: @escaping @Sendable () -> (Int, String)) async -> (Int, String) {
            if needsStore, let down = api.storeUnavailable() { return down }
            do {
                return try await pool.runIfActive {
                    if needsStore, let down = api.storeUnavailable() { return down }
                    return StoreReachability.failingFast(work)
                }
            } catch {
                return RunAPI.error(503, "the server is shutting down: send again")
            }
        }
        /// A request with a body. Recording runs does blocking store writes: alert intake runs on
        /// its own thread, one request at a time (a flood of hooks must not become a flood of
        /// blocked threads); approvals run on the store pool, never queued behind alerts.
        @Sendable func hook(_ request: Request, _ permission: Permission, on pool: NIOThreadPool,
                            _ handle: @escaping @Sendable (Data, APIToken) -> (Int, String)) async -> Response {
            let who: APIToken
            switch caller(request, permission) {
            case .failure(let r): return answer(r.answer)
            case .success(let t): who = t
            }
            let body: ByteBuffer
            do { body = try await request.body.collect(upTo: options.maxBody) } catch {
                return answer(RunAPI.error(413, "body over \(options.maxBody) bytes"))
            }
            // The body's own bytes, not a copy of them (a storm's payload is megabytes).
            let data = Data(buffer: body, byteTransferStrategy: .noCopy)
            return answer(await offload(pool) { handle(data, who) })
        }
        @Sendable func read(_ request: Request, needsStore: Bool = true, _ body: @escaping @Sendable () -> (Int, String),
                            type: String = "application/json") async -> Response {
            if case .failure(let r) = caller(request, .read) { return answer(r.answer) }
            return answer(await offload(threads.store, needsStore: needsStore, body), type: type)
        }
        router.post("/hooks/alertmanager") { request, _ in
            await hook(request, .postAlerts, on: threads.intake) { data, who in
                let (result, summary) = api.alertmanagerWithSummary(data, by: who.name)
                if let summary { logger.info("\(summary)") }
                return result
            }
        }
        router.post("/hooks/run") { request, _ in
            await hook(request, .startRuns, on: threads.intake) { data, who in
                api.run(data, by: who.name, mayConfirm: Permission.startRuns.granted(to: who.role))
            }
        }
        router.post("/hooks/dry-run") { request, _ in
            await hook(request, .startRuns, on: threads.intake) { data, who in api.run(data, by: who.name, mayConfirm: true, mode: .dryRun) }
        }
        router.get("/runs") { request, _ in
            let query = Dictionary(request.uri.queryParameters.map { (String($0.key), String($0.value)) }, uniquingKeysWith: { a, _ in a })
            return await read(request) { query.isEmpty ? api.runs() : api.runs(query: query) }
        }
        for (verb, approve) in [("approve", true), ("deny", false)] {
            router.post("/runs/:id/\(verb)") { request, context in
                let id = context.parameters.get("id") ?? ""
                return await hook(request, .approve, on: threads.store) { data, who in
                    api.answer(id: id, approve: approve, body: data, by: who.name, anonymous: options.tokens == nil)
                }
            }
        }
        router.get("/runs/:id") { request, context in
            let id = context.parameters.get("id") ?? ""
            return await read(request) { api.run(id: id) }
        }
        router.post("/runs/:id/cancel") { request, context in
            let id = context.parameters.get("id") ?? ""
            return await hook(request, .approve, on: threads.store) { data, who in api.cancel(id: id, body: data, by: who.name) }
        }
        ConsoleRoutes.register(on: router, gate: gate, api: api, threads: threads, maxWatchers: options.maxWatchers)
        router.get("/healthz") { _, _ in answer(api.health()) }
        router.get("/readyz") { _, _ in answer(api.readiness()) }
        router.get("/metrics") { request, _ in
            if options.metricsPublic {
                return answer(await offload(threads.store, needsStore: false) { (200, api.launcher.metricsText()) }, type: "text/plain; version=0.0.4")
            }
            return await read(request, needsStore: false, { (200, api.launcher.metricsText()) }, type: "text/plain; version=0.0.4")
        }

        // The store's health probe: webhooks and reads answer 503 at once while it finds the store gone.
        (api.store as? any ReachabilityMonitored)?.startMonitoring()
        let capacity = min(options.maxConnections, max(64, ConnectionGate.descriptorLimit() / 2))
        let connections = ConnectionGate(capacity: capacity, unauthenticatedPerAddress: options.maxConnectionsPerAddress ?? max(1, capacity / 2))
        let configuration = ApplicationConfiguration(
            address: .hostname(options.host, port: options.port), serverName: "runbook",
            availableConnectionsDelegate: ConnectionGate.Availability(gate: connections))
        var app = Application(
            router: router,
            server: .guardedHTTP1(headTimeout: options.headTimeout, unauthenticatedHeadTimeout: options.unauthenticatedHeadTimeout,
                                  idleTimeout: options.idleTimeout,
                                  admission: ConnectionAdmission(gate: connections, tokens: options.tokens)),
            configuration: configuration,
            onServerRunning: { channel in
                // The bound address, port 0 resolved: scripts and tests read this line.
                let a = channel.localAddress
                let ip = a?.ipAddress ?? options.host
                let bound = "\(ip.contains(":") ? "[\(ip)]" : ip):\(a?.port ?? options.port)"
                let line = Array("runbook serve: listening on http://\(bound)\n".utf8)
                _ = line.withUnsafeBufferPointer { write(1, $0.baseAddress!, $0.count) }
            },
            logger: logger)
        app.beforeServerStarts {
            logger.info("runbook serve starting", metadata: [
                "address": "\(options.host):\(options.port)", "runbooks": "\(api.runbooks.count)",
                "auth": "\(options.tokens.map { "\($0.tokens.count) token(s)" } ?? "none (--no-auth)")",
                "database": "\(api.store.location)",
            ])
        }
        // Shut down in reverse order: the HTTP server stops taking requests (those in hand are
        // answered), takeovers stop, then the runs drain.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [
            .init(service: RunDrainService(launcher: api.launcher, threads: threads, grace: options.shutdownGrace, logger: logger)),
        ]
        if let shared = api.store as? any ReplicatedRunDatabase {
            services.append(.init(service: LeaseService(store: shared, threads: threads, logger: logger)))
            services.append(.init(service: TakeoverService(launcher: api.launcher, runbooks: api.runbooks, threads: threads,
                                                           every: LeaseTiming.takeoverScanEvery, logger: logger)))
        }
        services.append(.init(service: app))
        let group = ServiceGroup(configuration: ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// An HTTP answer that refuses a request.
struct HTTPRefusal: Error {
    var answer: (Int, String)
}
