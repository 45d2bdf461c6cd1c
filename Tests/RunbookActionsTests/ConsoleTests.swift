import Foundation
import RunbookTestSupport
import Testing

/// The console's HTTP surface on a real `runbook serve`: event streams, cancel, sign-in, roles,
/// foreign origins and the security headers (the browser tests in Tests/browser drive the pages).
@Suite(.timeLimit(.minutes(10)))
struct ConsoleTests {
    static let admin = "adm1n-0123456789abcdef"
    static let reader = "read3r-0123456789abcdef"
    static let alerts = "al3rts-0123456789abcdef"
    static let op = "op3rator-0123456789abcdef"

    static let runbook = """
    runbook: slow
    params:
      seconds: { default: "1", pattern: "^[0-9.]+$" }
    guards: { auto: true }
    steps:
      - id: look
        phase: diagnose
        check: { command: ["sh", "-c", "sleep {{ params.seconds }}; echo looked"] }
        timeout: 1h   # a long sleep ends by a cancel, never by the default 30 s timeout on a loaded machine
      - id: again
        phase: diagnose
        needs: [look]
        check: { command: ["true"] }

    """

    struct Server {
        let child: ChildServer
        let port: Int
        let dir: String
        var base: String { "http://127.0.0.1:\(port)" }
        func stop() {
            child.stop()
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    func start(_ yaml: String = ConsoleTests.runbook) async throws -> Server {
        let dir = temporaryFolder()
        try FileManager.default.createDirectory(atPath: dir + "/rb", withIntermediateDirectories: true)
        try yaml.write(toFile: dir + "/rb/slow.yaml", atomically: true, encoding: .utf8)
        try writeTokenFile("root:admin:\(Self.admin)\nrita:reader:\(Self.reader)\nam:alerts:\(Self.alerts)\nolga:operator:\(Self.op)\n", to: dir + "/token")
        let (child, port) = try await ChildServer.serve(["--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--token-file", dir + "/token"])
        return Server(child: child, port: port, dir: dir)
    }

    func bearer(_ token: String) -> [String: String] { ["Authorization": "Bearer \(token)"] }

    /// Starts a run through `/hooks/run`; returns its id.
    func startRun(_ s: Server, seconds: String) throws -> String {
        let r = try exchange("POST", s.base + "/hooks/run", body: "{\"runbook\":\"slow\",\"params\":{\"seconds\":\"\(seconds)\"}}", headers: bearer(Self.admin))
        #expect(r.status == 202, "\(r.body)")
        let obj = try JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any]
        return try #require(((obj?["runs"] as? [[String: Any]])?.first?["run"]) as? String)
    }

    /// The `id:` and `data:` of each SSE message in `text`.
    func messages(_ text: String) -> [(id: Int, event: String)] {
        text.components(separatedBy: "\n\n").compactMap { block in
            var id: Int?, event: String?
            for line in block.split(separator: "\n") {
                if line.hasPrefix("id: ") { id = Int(line.dropFirst(4)) }
                if line.hasPrefix("data: "), let obj = try? JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as? [String: Any] {
                    event = obj["event"] as? String
                }
            }
            guard let id, let event else { return nil }
            return (id, event)
        }
    }

    /// A browser tab left open on a run must not hold up a restart: SIGTERM ends every open event
    /// stream (a new user saw `serve` keep sending keep-alives for 634 s after SIGTERM).
    @Test func sigtermEndsTheServerWhileEventStreamsAreOpen() async throws {
        let s = try await start()
        defer { s.stop() }
        let id = try startRun(s, seconds: "3600")
        let runStream = try LiveProgram(["curl", "-sN", "-H", "Authorization: Bearer \(Self.reader)", s.base + "/runs/\(id)/events"])
        let listStream = try LiveProgram(["curl", "-sN", "-H", "Authorization: Bearer \(Self.reader)", s.base + "/runs/events"])
        let opened = try await offPool { (runStream.readLine(containing: "retry:"), listStream.readLine(containing: "retry:")) }
        #expect(opened.0 != nil && opened.1 != nil, "the streams did not open")
        // The server is this test's child, not reaped yet: its pid cannot be anyone else's.
        let server = PinnedProcess(s.child.pid)
        kill(s.child.pid, SIGTERM)
        // Its run is drained for --shutdown-grace (10 s), then interrupted; 240 s is far above that on any machine.
        let ended = try await offPool { server.hasExited(within: 240) }
        if !ended { runStream.signal(SIGKILL); listStream.signal(SIGKILL) }
        _ = try await offPool { (runStream.wait(), listStream.wait()) }
        #expect(ended, "serve did not exit on SIGTERM while two event streams were open")
    }

    @Test func aRunsStreamSendsEveryEventOnceWithIncreasingIDsAndEndsAfterRunFinished() async throws {
        let s = try await start()
        defer { s.stop() }
        let id = try startRun(s, seconds: "1")
        // Attached while the run sleeps: past events first, then live ones, then the end.
        let r = try exchange("GET", s.base + "/runs/\(id)/events", headers: bearer(Self.reader))
        #expect(r.status == 200)
        #expect(r.headers["content-type"]?.hasPrefix("text/event-stream") == true)
        let got = messages(r.body)
        #expect(got.map(\.id) == Array(1...got.count), "\(r.body)")
        #expect(got.first?.event == "run.started")
        #expect(got.last?.event == "run.finished")
        #expect(got.contains { $0.event == "step.finished" })
        // The record holds the same events in the same order.
        let detail = try exchange("GET", s.base + "/runs/\(id)", headers: bearer(Self.reader)).body
        let timeline = (try JSONSerialization.jsonObject(with: Data(detail.utf8)) as? [String: Any])?["timeline"] as? [[String: Any]] ?? []
        #expect(timeline.map { $0["event"] as? String ?? "" } == got.map(\.event))
    }

    @Test func resumingWithLastEventIDLosesAndRepeatsNothing() async throws {
        let s = try await start()
        defer { s.stop() }
        let id = try startRun(s, seconds: "0")
        let all = messages(try exchange("GET", s.base + "/runs/\(id)/events", headers: bearer(Self.reader)).body)
        #expect(all.count >= 5)
        var h = bearer(Self.reader)
        h["Last-Event-ID"] = "2"
        let rest = messages(try exchange("GET", s.base + "/runs/\(id)/events", headers: h).body)
        #expect(rest.map(\.id) == Array(3...all.count))
        #expect(rest.map(\.event) == Array(all.dropFirst(2).map(\.event)))
        // Nothing after the last one of a finished run: 204, so EventSource stops reconnecting.
        h["Last-Event-ID"] = "\(all.count)"
        #expect(try exchange("GET", s.base + "/runs/\(id)/events", headers: h).status == 204)
        h["Last-Event-ID"] = "x"
        #expect(try exchange("GET", s.base + "/runs/\(id)/events", headers: h).status == 400)
        #expect(try exchange("GET", s.base + "/runs/no-such-run/events", headers: bearer(Self.reader)).status == 404)
        #expect(try exchange("GET", s.base + "/runs/\(id)/events").status == 401)
    }

    @Test func cancelStopsARunningRunRecordsWhoAndAnswersByState() async throws {
        let s = try await start()
        defer { s.stop() }
        let id = try startRun(s, seconds: "297")
        let sleeping = await waitUntil(60) { processAlive(matching: "sleep 297") }
        #expect(sleeping)
        #expect(try exchange("POST", s.base + "/runs/\(id)/cancel", body: "{}", headers: bearer(Self.reader)).status == 403)
        let r = try exchange("POST", s.base + "/runs/\(id)/cancel", body: "{\"undo\": true}", headers: bearer(Self.op))
        #expect(r.status == 200, "\(r.body)")
        // The stream ends: the sleeping step was stopped and the run ended interrupted.
        let events = try exchange("GET", s.base + "/runs/\(id)/events", headers: bearer(Self.reader)).body
        #expect(events.contains("\"event\":\"run.cancelled\""))
        #expect(events.contains("\"by\":\"olga\""))
        #expect(events.contains("\"outcome\":\"interrupted\""))
        // The step's process tree is gone.
        #expect(await waitUntil(30) { !processAlive(matching: "sleep 297") })
        #expect(try exchange("POST", s.base + "/runs/\(id)/cancel", headers: bearer(Self.op)).status == 409)
        #expect(try exchange("POST", s.base + "/runs/nope/cancel", headers: bearer(Self.op)).status == 404)
        #expect(try exchange("POST", s.base + "/runs/\(id)/cancel", body: "{\"undo\": 1}", headers: bearer(Self.op)).status == 400)
    }

    @Test func signInSetsAStrictHttpOnlyCookieThatTheAPIAccepts() async throws {
        let s = try await start()
        defer { s.stop() }
        #expect(try exchange("GET", s.base + "/").headers["location"] == "/ui/")
        #expect(try exchange("GET", s.base + "/ui/").headers["location"] == "/ui/login")
        let form = try exchange("GET", s.base + "/ui/login")
        #expect(form.status == 200 && form.body.contains("name=\"token\""))
        let csp = try #require(form.headers["content-security-policy"])
        #expect(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline") && csp.contains("default-src 'none'"))

        let bad = try exchange("POST", s.base + "/ui/login", body: "token=wrong-token-0123456789", headers: ["Content-Type": "application/x-www-form-urlencoded"])
        #expect(bad.status == 401 && bad.headers["set-cookie"] == nil)
        let alerts = try exchange("POST", s.base + "/ui/login", body: "token=\(Self.alerts)", headers: ["Content-Type": "application/x-www-form-urlencoded"])
        #expect(alerts.status == 403 && alerts.headers["set-cookie"] == nil)

        let ok = try exchange("POST", s.base + "/ui/login", body: "token=\(Self.reader)", headers: ["Content-Type": "application/x-www-form-urlencoded"])
        #expect(ok.status == 303 && ok.headers["location"] == "/ui/")
        let cookie = try #require(ok.headers["set-cookie"])
        #expect(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Max-Age=") && !cookie.contains("Secure"))
        #expect(!cookie.contains(Self.reader))
        let session = String(cookie.split(separator: ";")[0])
        let page = try exchange("GET", s.base + "/ui/", headers: ["Cookie": session])
        #expect(page.status == 200 && !page.body.contains(Self.reader))
        #expect(try exchange("GET", s.base + "/runs", headers: ["Cookie": session]).status == 200)
        #expect(try exchange("GET", s.base + "/ui/me", headers: ["Cookie": session]).body.contains("\"role\":\"reader\""))
        // A run or page that is not there is a 404 page with the same headers, not an empty 200 shell.
        let noRun = try exchange("GET", s.base + "/ui/runs/r-nope", headers: ["Cookie": session])
        #expect(noRun.status == 404 && noRun.body.contains("r-nope") && !noRun.body.contains("data-run="), "\(noRun.body)")
        #expect(noRun.headers["content-security-policy"] == csp)
        let noPage = try exchange("GET", s.base + "/ui/nope/deeper", headers: ["Cookie": session])
        #expect(noPage.status == 404 && noPage.body.contains("/ui/nope/deeper") && noPage.headers["content-security-policy"] == csp, "\(noPage.body)")
        #expect(try exchange("GET", s.base + "/ui/nope").headers["location"] == "/ui/login")

        // Behind a TLS proxy the cookie is Secure.
        var tls = ["Content-Type": "application/x-www-form-urlencoded"]
        tls["X-Forwarded-Proto"] = "https"
        #expect(try exchange("POST", s.base + "/ui/login", body: "token=\(Self.reader)", headers: tls).headers["set-cookie"]?.contains("Secure") == true)

        let out = try exchange("POST", s.base + "/ui/logout", headers: ["Cookie": session, "Origin": s.base])
        #expect(out.status == 303 && out.headers["set-cookie"]?.contains("Max-Age=0") == true)
        #expect(try exchange("GET", s.base + "/runs", headers: ["Cookie": session]).status == 401)
    }

    @Test func cookieRequestsFromAnotherSiteAreRefusedAndBearerOnesNeedNoOrigin() async throws {
        let s = try await start()
        defer { s.stop() }
        let login = try exchange("POST", s.base + "/ui/login", body: "token=\(Self.op)", headers: ["Content-Type": "application/x-www-form-urlencoded"])
        let session = String(try #require(login.headers["set-cookie"]).split(separator: ";")[0])
        let id = try startRun(s, seconds: "300")
        let foreign = try exchange("POST", s.base + "/runs/\(id)/cancel", body: "{}", headers: ["Cookie": session, "Origin": "http://evil.example"])
        #expect(foreign.status == 403, "\(foreign.body)")
        #expect(try exchange("POST", s.base + "/runs/\(id)/cancel", body: "{}", headers: ["Cookie": session, "Origin": "null"]).status == 403)
        let readerLogin = try exchange("POST", s.base + "/ui/login", body: "token=\(Self.reader)", headers: ["Content-Type": "application/x-www-form-urlencoded"])
        let readerSession = String(try #require(readerLogin.headers["set-cookie"]).split(separator: ";")[0])
        #expect(try exchange("POST", s.base + "/runs/\(id)/cancel", body: "{}", headers: ["Cookie": readerSession, "Origin": s.base]).status == 403)
        #expect(try exchange("POST", s.base + "/runs/\(id)/cancel", body: "{}", headers: ["Cookie": session, "Origin": s.base]).status == 200)
        #expect(try exchange("POST", s.base + "/runs/\(id)/cancel", body: "{}", headers: bearer(Self.op)).status == 409)
    }

    @Test func theRunListIsFilteredAndPagedOnTheServer() async throws {
        let s = try await start()
        defer { s.stop() }
        var ids: [String] = []
        for _ in 0..<3 { ids.append(try startRun(s, seconds: "0")) }
        for id in ids { _ = try exchange("GET", s.base + "/runs/\(id)/events", headers: bearer(Self.reader)) }
        func list(_ q: String) throws -> [String] {
            let r = try exchange("GET", s.base + "/runs?" + q, headers: bearer(Self.reader))
            return ((try JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [[String: Any]]) ?? []).compactMap { $0["id"] as? String }
        }
        let newestFirst = try list("limit=2")
        #expect(newestFirst == Array(ids.reversed().prefix(2)))
        #expect(try list("limit=2&before=\(newestFirst[1])") == [ids[0]])
        #expect(try list("status=finished&runbook=slow").count == 3)
        #expect(try list("status=running").isEmpty)
        #expect(try list("q=\(ids[1].suffix(6))") == [ids[1]])
        #expect(try list("runbook=other").isEmpty)
        #expect(try exchange("GET", s.base + "/runs?status=bogus", headers: bearer(Self.reader)).status == 400)
    }

    @Test func withoutAuthOnLoopbackTheConsoleOpensAndForeignOriginsAreStillRefused() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/rb", withIntermediateDirectories: true)
        try Self.runbook.write(toFile: dir + "/rb/slow.yaml", atomically: true, encoding: .utf8)
        let (child, port) = try await ChildServer.serve(["--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--no-auth"])
        defer { child.stop() }
        let base = "http://127.0.0.1:\(port)"
        let page = try exchange("GET", base + "/ui/")
        #expect(page.status == 200 && page.body.contains("data-page=\"runs\""))
        #expect(try exchange("GET", base + "/ui/login").headers["location"] == "/ui/")
        let start = try exchange("POST", base + "/hooks/run", body: "{\"runbook\":\"slow\",\"params\":{\"seconds\":\"299\"}}")
        let id = try #require(((try JSONSerialization.jsonObject(with: Data(start.body.utf8)) as? [String: Any])?["runs"] as? [[String: Any]])?.first?["run"] as? String)
        #expect(try exchange("POST", base + "/runs/\(id)/cancel", body: "{}", headers: ["Origin": "http://evil.example"]).status == 403)
        #expect(try exchange("POST", base + "/runs/\(id)/cancel", body: "{}", headers: ["Origin": base]).status == 200)
    }

    @Test func aDryRunFromTheConsoleDescribesTheChangeAndMakesNone() async throws {
        let dir = temporaryFolder()
        let s = try await start("""
        runbook: slow
        steps:
          - id: look
            phase: detect
            check: { command: ["true"] }
          - id: make
            phase: mitigate
            command: ["touch", "\(dir)/made"]

        """)
        defer { s.stop(); try? FileManager.default.removeItem(atPath: dir) }
        let r = try exchange("POST", s.base + "/hooks/dry-run", body: "{\"runbook\":\"slow\"}", headers: bearer(Self.op))
        #expect(r.status == 202, "\(r.body)")
        #expect(try exchange("POST", s.base + "/hooks/dry-run", body: "{\"runbook\":\"slow\"}", headers: bearer(Self.reader)).status == 403)
        let id = try #require(((try JSONSerialization.jsonObject(with: Data(r.body.utf8)) as? [String: Any])?["runs"] as? [[String: Any]])?.first?["run"] as? String)
        let events = try exchange("GET", s.base + "/runs/\(id)/events", headers: bearer(Self.reader)).body
        #expect(events.contains("\"status\":\"would-change\""), "\(events)")
        #expect(events.contains("\"outcome\":\"would-mitigate\""))
        #expect(!FileManager.default.fileExists(atPath: dir + "/made"))
    }

    @Test func aCLIRunIsCancelledFromAnotherProcessThroughTheStore() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/rb", withIntermediateDirectories: true)
        try Self.runbook.write(toFile: dir + "/rb/slow.yaml", atomically: true, encoding: .utf8)
        let run = try ChildServer([runbookBinary, "run", "slow", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--param", "seconds=300"])
        defer { run.stop() }
        run.drainOutput()
        let started = await waitUntil(60) {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: dir + "/state/runs")) ?? []
            return files.contains { $0.hasSuffix(".jsonl") && ((try? String(contentsOfFile: dir + "/state/runs/" + $0, encoding: .utf8)) ?? "").contains("step.started") }
        }
        #expect(started)
        // The CLI cancels as the OS user: --as naming someone else is refused, changing nothing.
        let other = try await runCLI(["cancel", "last", "--as", "nina-\(getpid())", "--state-dir", dir + "/state"])
        #expect(other.status == 2, "\(other.stderr)")
        #expect(other.stderr.contains("POST /runs/ID/cancel") && !other.stderr.contains("/approve"), "\(other.stderr)")
        let r = try await runCLI(["cancel", "last", "--wait", "300", "--state-dir", dir + "/state"])  // a margin far above a loaded machine's
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("cancelled run"))
        let history = try await runCLI(["history", "--json", "--state-dir", dir + "/state"]).stdout
        let ended = await waitUntil(300) { ((try? runCLI(["history", "--json", "--state-dir", dir + "/state"]))?.stdout ?? "").contains("\"interrupted\"") }
        #expect(ended, "\(history)")
        let again = try await runCLI(["cancel", "last", "--state-dir", dir + "/state"])
        #expect(again.status == 1)
        await #expect(try runCLI(["cancel", "nope", "--state-dir", dir + "/state"]).status == 2)
    }
}

/// One HTTP exchange through Python's http.client (independent of the code under test): no
/// redirects followed, every response header (lowercased names) returned.
func exchange(_ method: String, _ url: String, body: String? = nil, headers: [String: String] = [:]) throws -> (status: Int, headers: [String: String], body: String) {
    let script = """
        import json, sys, http.client, urllib.parse
        method, url, headers = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
        data = sys.stdin.buffer.read() if sys.argv[4] == "1" else None
        u = urllib.parse.urlsplit(url)
        c = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        c.request(method, u.path + ("?" + u.query if u.query else ""), body=data, headers=headers)
        r = c.getresponse()
        out = {"status": r.status, "headers": {k.lower(): v for k, v in r.getheaders()}, "body": r.read().decode(errors="replace")}
        sys.stdout.write(json.dumps(out))
        """
    let bodyFile = NSTemporaryDirectory() + "body-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: bodyFile) }
    try (body ?? "").write(toFile: bodyFile, atomically: true, encoding: .utf8)
    let headerJSON = String(decoding: try JSONSerialization.data(withJSONObject: headers), as: UTF8.self)
    let r = try Spawn.run(["sh", "-c", "exec python3 -c \"$0\" \"$1\" \"$2\" \"$3\" \"$4\" < \"$5\"", script, method, url, headerJSON, body == nil ? "0" : "1", bodyFile])
    let obj = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
    return (obj["status"] as? Int ?? 0, obj["headers"] as? [String: String] ?? [:], obj["body"] as? String ?? r.stderr)
}
