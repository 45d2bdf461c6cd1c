import Foundation
import Hummingbird
import HTTPTypes
import NIOCore
import RunbookCore
import RunbookRuntime
import RunbookStoreContract

/// The web console on the server's own listener: sign-in, the pages, their assets (inside the
/// binary, `ConsoleAssets`), the JSON they read, and the event streams.
enum ConsoleRoutes {
    /// Every console answer: scripts and styles from this server only, never inline, never framed.
    static let securityHeaders: HTTPFields = [
        HTTPField.Name("Content-Security-Policy")!: "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        HTTPField.Name("X-Content-Type-Options")!: "nosniff",
        HTTPField.Name("Referrer-Policy")!: "same-origin",
        .cacheControl: "no-store",
    ]

    static func register(on router: Router<BasicRequestContext>, gate: Gatekeeper, api: RunAPI, threads: ServerThreads, maxWatchers: Int) {
        let feeds = RunFeeds(store: api.store, launcher: api.launcher, threads: threads)
        let list = RunListFeed(store: api.store, threads: threads)
        EventStreamRoutes.register(on: router, gate: gate, feeds: feeds, list: list, limit: WatcherLimit(limit: maxWatchers),
                                   threads: threads, store: api.store)
        let signIn = gate.tokens != nil

        router.get("/") { _, _ in redirect("/ui/") }
        router.get("/ui/login") { request, _ in
            if !signIn || caller(gate, request) != nil { return redirect("/ui/") }
            return html(200, ConsolePages.login(message: nil))
        }
        router.post("/ui/login") { request, _ in
            guard signIn else { return redirect("/ui/") }
            guard Gatekeeper.sameOrigin(request) else { return html(403, ConsolePages.login(message: "This sign-in came from another site: refused.")) }
            let body = (try? await request.body.collect(upTo: 16 * 1024)).map { String(buffer: $0) } ?? ""
            let token = formField(body, "token") ?? ""
            guard let t = gate.tokens?.caller(authorization: "Bearer " + token) else {
                return html(401, ConsolePages.login(message: "Unknown token: sign in with a token from the server's token file."))
            }
            guard t.role >= .reader else {
                return html(403, ConsolePages.login(message: "Token '\(t.name)' has the alerts role, which may only post alerts: use a reader or operator token."))
            }
            let id = gate.sessions.open(t)
            var r = redirect("/ui/")
            r.headers[.setCookie] = "\(ConsoleSessions.cookie)=\(id); Path=/; HttpOnly; SameSite=Strict; Max-Age=\(Int(gate.sessions.lifetime))"
                + (Gatekeeper.overTLS(request) ? "; Secure" : "")
            return r
        }
        router.post("/ui/logout") { request, _ in
            guard Gatekeeper.sameOrigin(request) else { return EventStreamRoutes.plain(Gatekeeper.foreign.answer) }
            if let id = Gatekeeper.sessionID(request) { gate.sessions.close(id) }
            var r = redirect(signIn ? "/ui/login" : "/ui/")
            r.headers[.setCookie] = "\(ConsoleSessions.cookie)=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0" + (Gatekeeper.overTLS(request) ? "; Secure" : "")
            return r
        }
        for (path, page) in [("/ui/", "runs"), ("/ui/runbooks", "runbooks")] {
            router.get(RouterPath(stringLiteral: path)) { request, _ in
                guard caller(gate, request) != nil else { return redirect("/ui/login") }
                return html(200, ConsolePages.shell(page: page, title: page == "runs" ? "Runs" : "Runbooks"))
            }
        }
        router.get("/ui/runs/:id") { request, context in
            guard caller(gate, request) != nil else { return redirect("/ui/login") }
            let id = context.parameters.get("id") ?? ""
            // A run the store says it does not have is a 404 page; when the store cannot answer, the
            // page's script says why (it asks /runs/ID, which answers 503).
            let store = api.store
            let unknown = (try? await threads.blocking { () -> String? in
                do { _ = try store.resolveRunID(id); return nil } catch let e as RunIDError { return "\(e)" } catch { return nil }
            }) ?? nil
            if let unknown { return html(404, ConsolePages.notFound(unknown)) }
            return html(200, ConsolePages.shell(page: "run", title: "Run \(id)", runID: id))
        }
        // Any other page under /ui/ is a 404 page with the console's headers, not a bare answer.
        router.get("/ui/**") { request, _ in
            guard caller(gate, request) != nil else { return redirect("/ui/login") }
            return html(404, ConsolePages.notFound("There is no page \(request.uri.path) in the console."))
        }
        router.get("/ui/assets/:name") { _, context in
            guard let (type, text) = ConsoleAssets.files[context.parameters.get("name") ?? ""] else {
                return EventStreamRoutes.plain(RunAPI.error(404, "no such asset"))
            }
            var headers = securityHeaders
            headers[.contentType] = type
            headers[.cacheControl] = "no-cache"
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        }
        router.get("/ui/me") { request, _ in
            switch gate.caller(request, .read) {
            case .failure(let r): return EventStreamRoutes.plain(r.answer)
            case .success(let t):
                let may = Permission.approve.granted(to: t.role)
                return json(200, "{\"name\":\(JSONText.string(t.name)),\"role\":\"\(t.role.rawValue)\",\"operator\":\(may),\"sign_in\":\(signIn)}")
            }
        }
        // The runbooks stay as loaded for the server's life: their JSON (and graphs) is made once.
        let runbooksJSON = RunbookJSON.list(api.runbooks)
        router.get("/runbooks") { request, _ in
            if case .failure(let r) = gate.caller(request, .read) { return EventStreamRoutes.plain(r.answer) }
            return json(200, runbooksJSON)
        }
        router.get("/runs/:id/postmortem") { request, context in
            if case .failure(let r) = gate.caller(request, .read) { return EventStreamRoutes.plain(r.answer) }
            let given = context.parameters.get("id") ?? ""
            let store = api.store, runbooks = api.runbooks
            let text = try? await threads.blocking { () -> String? in
                guard let id = try? store.resolveRunID(given) else { return nil }
                let events = store.timeline(id)
                return Postmortem.markdown(events: events, runbook: runbooks.first { $0.name == events.first?.runbook })
            }
            guard let text = text ?? nil else { return EventStreamRoutes.plain(RunAPI.error(404, "no run '\(given)'")) }
            var headers: HTTPFields = [.contentType: "text/markdown; charset=utf-8"]
            if request.uri.queryParameters.get("download") != nil {
                headers[.contentDisposition] = "attachment; filename=\"postmortem-\(given.filter { $0.isLetter || $0.isNumber || $0 == "-" }).md\""
            }
            return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        }
    }

    /// The caller of a page request, if signed in (or `--no-auth`).
    static func caller(_ gate: Gatekeeper, _ request: Request) -> APIToken? {
        if case .success(let t) = gate.caller(request, .read) { return t }
        return nil
    }

    static func redirect(_ to: String) -> Response {
        var headers = securityHeaders
        headers[.location] = to
        return Response(status: .seeOther, headers: headers)
    }

    static func html(_ status: Int, _ text: String) -> Response {
        var headers = securityHeaders
        headers[.contentType] = "text/html; charset=utf-8"
        return Response(status: HTTPResponse.Status(code: status), headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }

    static func json(_ status: Int, _ text: String) -> Response {
        Response(status: HTTPResponse.Status(code: status), headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(string: text + "\n")))
    }

    /// One field of an `application/x-www-form-urlencoded` body.
    static func formField(_ body: String, _ name: String) -> String? {
        for pair in body.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard kv.count == 2, kv[0] == name else { continue }
            return String(kv[1]).replacingOccurrences(of: "+", with: " ").removingPercentEncoding
        }
        return nil
    }
}
