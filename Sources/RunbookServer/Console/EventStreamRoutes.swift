import Foundation
import Hummingbird
import HTTPTypes
import NIOCore
import RunbookCore
import RunbookRuntime
import RunbookStoreContract
import ServiceLifecycle

/// `GET /runs/ID/events` and `GET /runs/events`: Server-Sent Events (`text/event-stream`), usable by
/// a browser's `EventSource` and by `curl -N`.
///
/// A run's stream sends its recorded events first, then each new one, every one with `id:` (its
/// position in the run's record, from 1) and its JSON line as `data:`; it ends after `run.finished`.
/// `Last-Event-ID: N` (or `?after=N`) resumes after event N. A finished run with nothing after N is
/// answered 204, which tells `EventSource` not to reconnect.
enum EventStreamRoutes {
    static func register(on router: Router<BasicRequestContext>, gate: Gatekeeper, feeds: RunFeeds, list: RunListFeed,
                         limit: WatcherLimit, threads: ServerThreads, store: any RunDatabase) {
        router.get("/runs/events") { request, _ in
            if case .failure(let r) = gate.caller(request, .read) { return plain(r.answer) }
            guard limit.take() else { return tooMany(limit) }
            return events(list.watch(), limit: limit) { item in
                switch item {
                case .changed(let id, let summary): "id: \(id)\nevent: run\ndata: \(summary.jsonLine())\n\n"
                case .keepAlive: ": keep-alive\n\n"
                }
            }
        }
        router.get("/runs/:id/events") { request, context in
            if case .failure(let r) = gate.caller(request, .read) { return plain(r.answer) }
            let given = context.parameters.get("id") ?? ""
            let lastID = request.headers[HTTPField.Name("Last-Event-ID")!] ?? request.uri.queryParameters.get("after")
            let after: Int
            if let text = lastID {
                guard let n = Int(text.trimmingCharacters(in: .whitespaces)), n >= 0 else {
                    return plain(RunAPI.error(400, "Last-Event-ID (or after=) must be an event number from this stream"))
                }
                after = n
            } else {
                after = 0
            }
            let found = try? await threads.blocking { () -> (String, Bool, Int)? in
                guard let id = try? store.resolveRunID(given), let r = try? store.run(id) else { return nil }
                return (id, r.outcome != nil, r.outcome != nil ? store.timeline(id).count : 0)
            }
            guard let run = found ?? nil else { return plain(RunAPI.error(404, "no run '\(given)'")) }
            let (runID, closed, count) = run
            if closed, after >= count { return Response(status: .noContent) }
            guard limit.take() else { return tooMany(limit) }
            return events(feeds.watch(runID, after: after), limit: limit) { item in
                switch item {
                case .event(let id, let line): "id: \(id)\ndata: \(line)\n\n"
                case .keepAlive: ": keep-alive\n\n"
                }
            }
        }
    }

    /// An open event stream: `retry:`, then each item as `text` gives it, until the stream ends (or
    /// drops a watcher that fell behind: it reconnects and resumes); its place under `limit` is
    /// given back when it closes.
    static func events<Item: Sendable>(_ stream: AsyncThrowingStream<Item, any Error>, limit: WatcherLimit,
                                       text: @escaping @Sendable (Item) -> String) -> Response {
        Response(status: .ok, headers: headers, body: ResponseBody { writer in
            defer { limit.give() }
            try await writer.write(ByteBuffer(string: "retry: 1000\n\n"))
            do {
                // Ends when the server shuts down (SIGTERM): an open stream must not hold a restart up.
                for try await item in stream.cancelOnGracefulShutdown() { try await writer.write(ByteBuffer(string: text(item))) }
            } catch is RunWatchEnd {}
            try await writer.finish(nil)
        })
    }

    static let headers: HTTPFields = [
        .contentType: "text/event-stream; charset=utf-8", .cacheControl: "no-store",
        HTTPField.Name("X-Accel-Buffering")!: "no",
    ]

    static func plain(_ r: (Int, String)) -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if r.0 == 401 { headers[.wwwAuthenticate] = "Bearer realm=\"runbook\"" }
        return Response(status: HTTPResponse.Status(code: r.0), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: r.1 + "\n")))
    }

    static func tooMany(_ limit: WatcherLimit) -> Response {
        var r = plain(RunAPI.error(503, "\(limit.limit) event streams are open (serve --max-watchers): try again shortly"))
        r.headers[.retryAfter] = "2"
        return r
    }
}
