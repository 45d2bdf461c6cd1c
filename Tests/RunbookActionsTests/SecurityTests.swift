import Foundation
import RunbookCore
import RunbookTestSupport
import Testing

/// The alert server and params, secure by default (SPEC §6.5, §6.7), tried as an attacker would,
/// against the real binary.
@Suite(.timeLimit(.minutes(10)))
struct SecurityTests {
    static let tokens = """
    # name:role:token
    am:alerts:alerts-token-1-0123456789
    dash:reader:reader-token-1-0123456789
    alice:operator:operator-token-1-0123456789
    root:admin:admin-token-1-0123456789

    """

    static let runbooks: [String: String] = [
        "svc": """
        runbook: svc
        params:
          service: { default: shop, pattern: "^[a-z0-9-]+$" }
          count: { default: "1", pattern: "[0-9]+" }
          dir: { default: "DIR/data", type: path, within: "DIR/data" }
        triggers:
          - alert: { alertname: SvcDown }
            params: { service: "{{ alert.labels.service }}" }
        guards: { auto: true }
        steps:
          - id: look
            phase: detect
            check: { command: ["true"] }
          - id: act
            phase: mitigate
            confirm: true
            command: ["true", "{{ params.service }}", "{{ params.dir }}", "{{ params.count }}"]

        """,
        "manual": """
        runbook: manual
        guards: { auto: false }
        steps:
          - id: look
            phase: detect
            check: { command: ["true"] }

        """,
        "esc": """
        runbook: esc
        steps:
          - id: look
            phase: detect
            check: { command: ["sh", "-c", 'printf "\\033]0;pwned\\007\\033[2Jgone" >&2; exit 1'] }

        """,
        "slow": """
        runbook: slow
        steps:
          - id: look
            phase: detect
            check: { command: ["true"] }
          - id: hold
            phase: mitigate
            wait: 1h      # only the shutdown's grace period ends it, however loaded the machine

        """,
    ]

    struct Server {
        let child: ChildServer
        let port: Int
        let dir: String
        var base: String { "http://127.0.0.1:\(port)" }
        func stop() { child.stop(); try? FileManager.default.removeItem(atPath: dir) }
    }

    static func folder() throws -> String {
        let dir = temporaryFolder()
        try FileManager.default.createDirectory(atPath: dir + "/rb", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/data/inside", withIntermediateDirectories: true)
        for (name, yaml) in runbooks {
            try yaml.replacingOccurrences(of: "DIR", with: dir).write(toFile: "\(dir)/rb/\(name).yaml", atomically: true, encoding: .utf8)
        }
        try writeTokenFile(tokens, to: dir + "/tokens")
        return dir
    }

    static func start(_ extra: [String] = []) async throws -> Server {
        let dir = try folder()
        let (child, port) = try await ChildServer.serve(["--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--token-file", dir + "/tokens"] + extra)
        return Server(child: child, port: port, dir: dir)
    }

    static func call(_ s: Server, _ method: String, _ path: String, token: String?, body: String? = nil) throws -> (status: Int, body: String) {
        try http(method, s.base + path, body: body, headers: token.map { ["Authorization": "Bearer \($0)"] } ?? [:])
    }

    static func alert(_ labels: [String: String], fingerprint: String) -> String {
        let obj: [String: Any] = ["version": "4", "status": "firing", "receiver": "runbook", "groupKey": "{}:{}",
                                  "alerts": [["status": "firing", "labels": labels, "annotations": [:], "fingerprint": fingerprint,
                                              "startsAt": "2026-11-25T10:00:00Z"]]]
        return String(decoding: try! JSONSerialization.data(withJSONObject: obj), as: UTF8.self)
    }

    // MARK: 1. Auth that cannot be forgotten

    @Test func serveRefusesToStartWithoutTokensAndNoAuthOnlyOnLoopback() async throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Bounded: a server that wrongly started must not outlive the test.
        let bare = try await offPool { try Spawn.run(["timeout", "30", runbookBinary, "serve", "--listen", "127.0.0.1:0", "--runbooks", dir + "/rb", "--state-dir", dir + "/state"]) }
        #expect(bare.status == 2)
        #expect(bare.stderr.contains("--token-file"), "\(bare.stderr)")
        let open = try await offPool { try Spawn.run(["timeout", "30", runbookBinary, "serve", "--listen", "0.0.0.0:0", "--no-auth", "--runbooks", dir + "/rb", "--state-dir", dir + "/state"]) }
        #expect(open.status == 2)
        #expect(open.stderr.contains("loopback"), "\(open.stderr)")
        let (child, port) = try await ChildServer.serve(["--no-auth", "--runbooks", dir + "/rb", "--state-dir", dir + "/state"])
        defer { child.stop() }
        #expect(try http("GET", "http://127.0.0.1:\(port)/runs").status == 200)
    }

    @Test func everyEndpointButHealthzNeedsATokenWithTheRightRole() async throws {
        let s = try await Self.start()
        defer { s.stop() }
        #expect(try Self.call(s, "GET", "/healthz", token: nil).status == 200)
        for path in ["/runs", "/runs/nope", "/metrics"] {
            #expect(try Self.call(s, "GET", path, token: nil).status == 401, "\(path)")
            #expect(try Self.call(s, "GET", path, token: "wrong-token").status == 401, "\(path)")
            #expect(try Self.call(s, "GET", path, token: "alerts-token-1-0123456789").status == 403, "\(path)")
        }
        #expect(try Self.call(s, "GET", "/runs", token: "reader-token-1-0123456789").status == 200)
        #expect(try Self.call(s, "GET", "/metrics", token: "reader-token-1-0123456789").status == 200)
        let alert = Self.alert(["alertname": "SvcDown", "service": "shop"], fingerprint: "f1")
        #expect(try Self.call(s, "POST", "/hooks/alertmanager", token: "reader-token-1-0123456789", body: alert).status == 403)
        #expect(try Self.call(s, "POST", "/hooks/alertmanager", token: "operator-token-1-0123456789", body: alert).status == 403)
        let run = #"{"runbook": "manual"}"#
        #expect(try Self.call(s, "POST", "/hooks/run", token: "alerts-token-1-0123456789", body: run).status == 403)
        #expect(try Self.call(s, "POST", "/hooks/run", token: "reader-token-1-0123456789", body: run).status == 403)
        let accepted = try Self.call(s, "POST", "/hooks/alertmanager", token: "alerts-token-1-0123456789", body: alert)
        #expect(accepted.status == 202, "\(accepted.body)")
        // The token's name is recorded as `by` on run.started.
        let id = try #require(jsonRuns(accepted.body).first)
        let detail = try Self.call(s, "GET", "/runs/\(id)", token: "admin-token-1-0123456789")
        #expect(detail.body.contains(#""by":"am""#), "\(detail.body)")
    }

    @Test func metricsCanBeMadePublic() async throws {
        let s = try await Self.start(["--metrics-public"])
        defer { s.stop() }
        #expect(try Self.call(s, "GET", "/metrics", token: nil).status == 200)
        #expect(try Self.call(s, "GET", "/runs", token: nil).status == 401)
    }

    // MARK: 2. /hooks/run is a manual run over HTTP

    @Test func hooksRunTakesOnlyDeclaredParamsOfPlainTypes() async throws {
        let s = try await Self.start()
        defer { s.stop() }
        func run(_ body: String) throws -> (status: Int, body: String) {
            try Self.call(s, "POST", "/hooks/run", token: "operator-token-1-0123456789", body: body)
        }
        #expect(try run(#"{"runbook": "svc", "params": {"nope": "x"}}"#).status == 400)
        #expect(try run(#"{"runbook": "svc", "params": {"service": null}}"#).status == 400)
        #expect(try run(#"{"runbook": "svc", "params": {"service": ["a"]}}"#).status == 400)
        #expect(try run(#"{"runbook": "svc", "params": {"service": {"a": 1}}}"#).status == 400)
        #expect(try run(#"{"runbook": "svc", "params": {"service": "a\u0000b"}}"#).status == 400)
        #expect(try run(#"{"runbook": "svc", "params": {"service": "shop\n"}}"#).status == 400)
        #expect(try run(#"{"runbook": "svc", "params": {"service": "shop"}, "extra": 1}"#).status == 400)
        #expect(try run(#"{"runbook": "svc", "confirm": "yes"}"#).status == 400)
        let number = try run(#"{"runbook": "svc", "params": {"count": 3}}"#)
        #expect(number.status == 202, "\(number.body)")
        let id = try #require(jsonRuns(number.body).first)
        let done = await waitUntil(20) { (try? Self.call(s, "GET", "/runs/\(id)", token: "reader-token-1-0123456789").body.contains("\"outcome\":\"")) ?? false }
        #expect(done)
        let detail = try Self.call(s, "GET", "/runs/\(id)", token: "reader-token-1-0123456789").body
        #expect(detail.contains(#""count":"3""#), "a number is the text 3: \(detail)")
    }

    @Test func confirmStepsRunOnlyWhenAnOperatorSaysConfirm() async throws {
        let s = try await Self.start()
        defer { s.stop() }
        func outcome(_ body: String, token: String) async throws -> String? {
            let r = try Self.call(s, "POST", "/hooks/run", token: token, body: body)
            let id = try #require(jsonRuns(r.body).first, "\(r.body)")
            var out: String?
            _ = await waitUntil(20) {
                let runs = (try? JSONSerialization.jsonObject(with: Data(Self.call(s, "GET", "/runs", token: "reader-token-1-0123456789").body.utf8))) as? [[String: Any]]
                out = runs?.first { $0["id"] as? String == id }?["outcome"] as? String
                return out != nil
            }
            return out
        }
        #expect(try await outcome(#"{"runbook": "svc"}"#, token: "operator-token-1-0123456789") == "refused")
        #expect(try await outcome(#"{"runbook": "svc", "confirm": false}"#, token: "admin-token-1-0123456789") == "refused")
        #expect(try await outcome(#"{"runbook": "svc", "confirm": true}"#, token: "operator-token-1-0123456789") == "mitigated")
    }

    // MARK: 3. Params are values

    @Test(arguments: ["shop\n", "shop\r\n", "shop\u{2028}", "shop\u{85}", "sh\u{0}op", "sh\u{1B}op", "shop "])
    func aHostileLabelNeverMatchesAWholeValuePattern(value: String) async throws {
        let s = try await Self.start()
        defer { s.stop() }
        let r = try Self.call(s, "POST", "/hooks/alertmanager", token: "alerts-token-1-0123456789",
                              body: Self.alert(["alertname": "SvcDown", "service": value], fingerprint: "hostile"))
        #expect(r.status == 202)
        #expect(r.body.contains(#""status":"refused""#) && r.body.contains(#""guard":"params""#), "\(r.body)")
    }

    @Test func patternsMatchTheWholeValueAndControlCharactersAreAlwaysRefused() async throws {
        let rb = try RunbookLoader.load(text: """
            runbook: p
            params:
              n: { default: "1", pattern: "[0-9]+" }
              free: { default: "x" }
            steps:
              - id: a
                phase: detect
                check: { command: ["true"] }
            """, file: "p.yaml")
        #expect(throws: ParamError.self) { try RunInputs.resolve(rb, given: ["n": "12a"]) }
        #expect(throws: ParamError.self) { try RunInputs.resolve(rb, given: ["n": "a12"]) }
        #expect(throws: ParamError.self) { try RunInputs.resolve(rb, given: ["n": "12\n"]) }
        #expect(throws: ParamError.self) { try RunInputs.resolve(rb, given: ["free": "a\u{7F}b"]) }
        #expect(throws: ParamError.self) { try RunInputs.resolve(rb, given: ["free": "a\u{2029}b"]) }
        #expect(try RunInputs.resolve(rb, given: ["n": "12"])["n"] == .string("12"))
    }

    @Test func pathParamsResolveDotDotAndSymlinksAndStayInside() async throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rb = try RunbookLoader.load(path: dir + "/rb/svc.yaml")
        try FileManager.default.createSymbolicLink(atPath: dir + "/data/escape", withDestinationPath: "/etc")
        #expect(throws: ParamError.self) { try RunInputs.resolve(rb, given: ["dir": dir + "/data/../rb"]) }
        #expect(throws: ParamError.self) { try RunInputs.resolve(rb, given: ["dir": dir + "/data/escape"]) }
        #expect(throws: ParamError.self) { try RunInputs.resolve(rb, given: ["dir": dir + "/data/escape/passwd"]) }
        #expect(throws: ParamError.self) { try RunInputs.resolve(rb, given: ["dir": "/"]) }
        let ok = try RunInputs.resolve(rb, given: ["dir": dir + "/data/inside/../inside/new"])
        #expect(ok["dir"] == .string(PathParam.canonical(dir) + "/data/inside/new"))
    }

    @Test func validateWarnsWhereAnUncheckedParamReachesAChange() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
        runbook: w
        params:
          target: { default: x }
        steps:
          - id: act
            phase: mitigate
            command: ["touch", "{{ params.target }}"]

        """.write(toFile: dir + "/w.yaml", atomically: true, encoding: .utf8)
        let r = try await offPool { try runCLI(["validate", dir + "/w.yaml"]) }
        #expect(r.status == 0)
        #expect(r.stderr.contains("w.yaml:7:"), "\(r.stderr)")
        #expect(r.stderr.contains("warning: param 'target' reaches change step 'act'"), "\(r.stderr)")
    }

    @Test func theBundledRunbooksValidateWithoutWarnings() async throws {
        let r = try await offPool { try runCLI(["validate", repoRoot + "/runbooks"]) }
        #expect(r.status == 0)
        #expect(!r.stderr.contains("warning:"), "\(r.stderr)")
    }

    // MARK: 4. Slow and many clients

    @Test func halfSentRequestsAreClosedAtTheHeadDeadlineAndHealthzStillAnswers() async throws {
        let s = try await Self.start(["--head-timeout", "2"])
        defer { s.stop() }
        // 400 connections that send half a request head and then nothing, held open by one process.
        let script = """
            import socket, sys, time, urllib.request
            port = int(sys.argv[1])
            conns = []
            for _ in range(400):
                c = socket.create_connection(("127.0.0.1", port))
                c.sendall(b"POST /hooks/alertmanager HTTP/1.1\\r\\nHost: x\\r\\n")
                conns.append(c)
            ok = urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=5).status == 200
            deadline, closed = time.time() + 20, 0
            for c in conns:
                c.settimeout(max(0.1, deadline - time.time()))
                try:
                    if c.recv(1) == b"": closed += 1
                except OSError:
                    closed += 1
            print(ok, closed)
            """
        let r = try await offPool { try Spawn.run(["python3", "-c", script, "\(s.port)"]) }
        let words = r.stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(words.first == "True", "healthz did not answer with 400 half-sent requests open: \(r.stdout)\(r.stderr)")
        #expect(words.last == "400", "connections not closed at the head deadline: \(r.stdout)\(r.stderr)")
        #expect(try Self.call(s, "GET", "/healthz", token: nil).status == 200)
    }

    // MARK: 5. Refusals are cheap

    @Test func thousandsOfRefusedAlertsAreRowsNotFiles() async throws {
        let s = try await Self.start()
        defer { s.stop() }
        let alerts = (0..<3000).map { i in
            ["status": "firing", "labels": ["alertname": "SvcDown", "service": "bad value \(i)"], "annotations": [:] as [String: String],
             "fingerprint": "fp\(i)", "startsAt": "2026-11-25T10:00:00Z"] as [String: Any]
        }
        let body = String(decoding: try JSONSerialization.data(withJSONObject: ["version": "4", "status": "firing", "alerts": alerts]), as: UTF8.self)
        let r = try await offPool { try Self.call(s, "POST", "/hooks/alertmanager", token: "alerts-token-1-0123456789", body: body) }
        #expect(r.status == 202)
        #expect(r.body.components(separatedBy: #""guard":"params""#).count - 1 == 3000)
        let files = (try? FileManager.default.contentsOfDirectory(atPath: s.dir + "/state/runs")) ?? []
        #expect(files.filter { $0.hasSuffix(".jsonl") }.isEmpty, "a refused alert wrote a timeline file")
        // Repeats of one refused alert count in its row.
        let again = try Self.call(s, "POST", "/hooks/alertmanager", token: "alerts-token-1-0123456789",
                                  body: Self.alert(["alertname": "SvcDown", "service": "bad value 7"], fingerprint: "fp7"))
        #expect(again.status == 202)
        let history = try await offPool { try runCLI(["history", "--json", "--limit", "10000", "--state-dir", s.dir + "/state"]) }
        #expect(jsonLines(history.stdout).count == 3000)
        let id = try #require(jsonRuns(again.body).first)
        let timeline = try await offPool { try runCLI(["timeline", id, "--json", "--state-dir", s.dir + "/state"]) }
        #expect(timeline.stdout.contains("(2 times)"), "\(timeline.stdout)")
    }

    // MARK: 6. Outside text is escaped

    @Test func terminalEscapesInOutputNeverReachTheTerminalOrThePostmortem() async throws {
        let s = try await Self.start()
        defer { s.stop() }
        let r = try Self.call(s, "POST", "/hooks/run", token: "operator-token-1-0123456789", body: #"{"runbook": "esc"}"#)
        let id = try #require(jsonRuns(r.body).first)
        _ = await waitUntil(20) { (try? Self.call(s, "GET", "/runs/\(id)", token: "reader-token-1-0123456789").body.contains("\"outcome\":\"not-confirmed\"")) ?? false }
        let timeline = try await offPool { try runCLI(["timeline", id, "--state-dir", s.dir + "/state"]) }
        #expect(!timeline.stdout.contains("\u{1B}"), "a raw escape reached the terminal timeline")
        #expect(timeline.stdout.contains("\\u{1B}"))
        let postmortem = try await offPool { try runCLI(["postmortem", id, "--state-dir", s.dir + "/state"]) }
        #expect(!postmortem.stdout.contains("\u{1B}") && !postmortem.stdout.contains("\u{07}"))
    }

    // MARK: 7. IPv6 and graceful shutdown with a deadline

    static let hasIPv6Loopback = ((try? String(contentsOfFile: "/proc/net/if_inet6", encoding: .utf8)) ?? "").contains("00000000000000000000000000000001")

    @Test(.enabled(if: SecurityTests.hasIPv6Loopback))
    func listensOnIPv6() async throws {
        let dir = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let child = try ChildServer([runbookBinary, "serve", "--listen", "[::1]:0", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--token-file", dir + "/tokens"])
        defer { child.stop() }
        let port = try await offPool { () -> Int? in
            while true {
                let line = child.readLine()
                if let r = line.range(of: "listening on http://[::1]:") { return Int(line[r.upperBound...]) }
                if line.isEmpty, !child.isOpen { return nil }
            }
        }
        child.drainOutput()
        let p = try #require(port)
        #expect(try http("GET", "http://[::1]:\(p)/healthz").status == 200)
    }

    @Test func sigtermInterruptsRunsLeftAfterTheGracePeriodListingChanges() async throws {
        let s = try await Self.start(["--shutdown-grace", "1"])
        defer { s.stop() }
        let r = try Self.call(s, "POST", "/hooks/run", token: "operator-token-1-0123456789", body: #"{"runbook": "slow"}"#)
        let id = try #require(jsonRuns(r.body).first)
        _ = await waitUntil(300) { ((try? String(contentsOfFile: "\(s.dir)/state/runs/\(id).jsonl", encoding: .utf8)) ?? "").contains(#""step":"hold""#) }
        kill(s.child.pid, SIGTERM)
        let exited = await waitUntil(300) { !EngineTrustTests.isAlive(s.child.pid) }
        #expect(exited)
        // Had the server waited out the hour-long step, the run would have passed it; the grace
        // period cut it instead, and says so.
        let timeline = try await offPool { try runCLI(["timeline", id, "--json", "--state-dir", s.dir + "/state"]) }
        let end = jsonLines(timeline.stdout).last
        #expect(end?["outcome"] as? String == "interrupted")
        #expect(jsonText(end, "message").contains("grace period"), "\(end ?? [:])")
        let hold = jsonLines(timeline.stdout).last { $0["step"] as? String == "hold" && $0["event"] as? String == "step.finished" }
        #expect(hold?["status"] as? String != "passed", "the step was waited out")
    }
}

/// Run ids in a hook's answer.
func jsonRuns(_ body: String) -> [String] {
    guard let obj = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
          let runs = obj["runs"] as? [[String: Any]] else { return [] }
    return runs.compactMap { $0["run"] as? String }
}
