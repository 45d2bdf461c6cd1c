import Dispatch
import Foundation
import Hummingbird
import Logging
import NIOCore
import RunbookActions
import RunbookCore
import RunbookStore

/// `runbook serve`: the hooks and the API on Hummingbird, run as a service with graceful shutdown.
public enum AlertServer {
    /// Largest request body accepted (413 beyond).
    public static let maxBody = 1 << 20

    /// Where hook requests are handled, one at a time.
    static let intakeQueue = DispatchQueue(label: "runbook.serve.intake")

    /// Builds and runs the server until SIGTERM or SIGINT.
    /// - Parameters:
    ///   - token: when set, every hook needs `Authorization: Bearer TOKEN`.
    public static func run(host: String, port: Int, intake: AlertIntake, token: String?, logger: Logger) async throws {
        let router = Router()
        let expected = token.map { Array("Bearer \($0)".utf8) }

        @Sendable func authorized(_ request: Request) -> Bool {
            guard let expected else { return true }
            let given = Array((request.headers[.authorization] ?? "").utf8)
            // Constant time in the token's length: compare every byte, then the lengths.
            var diff = UInt8(given.count == expected.count ? 0 : 1)
            for i in 0..<expected.count { diff |= expected[i] ^ (i < given.count ? given[i] : 0) }
            return diff == 0
        }
        @Sendable func answer(_ r: (Int, String), type: String = "application/json") -> Response {
            Response(status: HTTPResponse.Status(code: r.0), headers: [.contentType: type],
                     body: ResponseBody(byteBuffer: ByteBuffer(string: r.1 + "\n")))
        }
        @Sendable func hook(_ request: Request, _ handle: @escaping @Sendable (Data) -> (Int, String)) async -> Response {
            guard authorized(request) else { return answer(AlertIntake.error(401, "missing or wrong bearer token")) }
            let body: ByteBuffer
            do { body = try await request.body.collect(upTo: maxBody) } catch {
                return answer(AlertIntake.error(413, "body over \(maxBody) bytes"))
            }
            let data = Data(body.readableBytesView)
            // Recording runs does blocking SQLite writes: keep them off the event loop and the
            // cooperative pool, on one serial queue (SQLite serialises writes anyway, and a flood of
            // hooks must not become a flood of blocked threads).
            return await withCheckedContinuation { c in
                intakeQueue.async { c.resume(returning: answer(handle(data))) }
            }
        }
        router.post("/hooks/alertmanager") { request, _ in await hook(request) { intake.alertmanager($0) } }
        router.post("/hooks/run") { request, _ in await hook(request) { intake.run($0) } }
        router.get("/runs") { _, _ in answer(intake.runs()) }
        router.get("/runs/:id") { _, context in answer(intake.run(id: context.parameters.get("id") ?? "")) }
        router.get("/healthz") { _, _ in answer((200, "{\"status\":\"ok\",\"active_runs\":\(intake.launcher.activeCount)}")) }
        router.get("/metrics") { _, _ in answer((200, intake.launcher.metricsText()), type: "text/plain; version=0.0.4") }

        var app = Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "runbook"),
            onServerRunning: { channel in
                // The bound address, port 0 resolved: scripts and tests read this line.
                let bound = channel.localAddress.map { a in "\(a.ipAddress.map { $0.contains(":") ? "[\($0)]" : $0 } ?? host):\(a.port ?? port)" } ?? "\(host):\(port)"
                let line = Array("runbook serve: listening on http://\(bound)\n".utf8)
                _ = line.withUnsafeBufferPointer { write(1, $0.baseAddress!, $0.count) }
            },
            logger: logger)
        app.beforeServerStarts {
            logger.info("runbook serve listening", metadata: ["address": "\(host):\(port)", "runbooks": "\(intake.runbooks.count)"])
        }
        try await app.runService()
        // Stopped taking alerts: running steps finish or time out (their own timeouts bound the wait),
        // the rest of each run is recorded as interrupted.
        let n = intake.launcher.drainAll()
        while intake.launcher.activeCount > 0 {
            try? await Task.sleep(for: .milliseconds(100))
        }
        // Stopped process trees are owed their KILL: do not exit before it is sent.
        ChildWatcher.shared.waitForOwedKills(timeout: ChildWatcher.killGrace + 5)
        logger.info("runbook serve stopped", metadata: ["interrupted_runs": "\(n)"])
    }
}
