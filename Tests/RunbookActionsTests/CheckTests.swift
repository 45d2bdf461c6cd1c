import Foundation
import RunbookActions
import RunbookCore
import Testing

/// Each check against a live target on 127.0.0.1 (a child process), passing and failing where it should.
@Suite(.timeLimit(.minutes(10)), .serialized)
struct CheckTests {
    /// Runs one diagnose step and returns its finished event.
    func check(_ body: String, timeout: String = "5s") async throws -> TimelineEvent? {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let yaml = "runbook: t\nsteps:\n  - id: c\n    phase: diagnose\n    timeout: \(timeout)\n    check:\n      \(body)\n"
        let r = try await runRunbook(yaml, in: dir)
        return r.events.last { $0.event == "step.finished" && $0.step == "c" }
    }

    @Test func httpStatusContainsJSONAndLatency() async throws {
        let (server, port) = try ChildServer.target()
        defer { server.stop() }
        let base = "http://127.0.0.1:\(port)"
        let ok = try await check("http: { url: \"\(base)/health\", status: 200, contains: ok, max_latency: 2s }")
        #expect(ok?.status == "passed", "\(ok?.message ?? "")")
        #expect(ok?.output?["status"] == .number(200))
        let json = try await check("http: { url: \"\(base)/health/db\", json: { \"db.up\": true, \"items.0.name\": a } }")
        #expect(json?.status == "passed", "\(json?.message ?? "")")
        let wrongJSON = try await check("http: { url: \"\(base)/health/db\", json: { \"db.up\": false } }")
        #expect(wrongJSON?.status == "failed")
        #expect(wrongJSON?.message?.contains("db.up is true, expected false") == true, "\(wrongJSON?.message ?? "")")
        let missing = try await check("http: { url: \"\(base)/nope\", status: [200, 204] }")
        #expect(missing?.status == "failed")
        #expect(missing?.message?.contains("status 404, expected 200 or 204") == true)
        let text = try await check("http: { url: \"\(base)/health\", contains: nope }")
        #expect(text?.message?.contains("body does not contain 'nope'") == true)
        let slow = try await check("http: { url: \"\(base)/slow\", max_latency: 200ms }")
        #expect(slow?.status == "failed")
        #expect(slow?.message?.contains("over 200ms") == true, "\(slow?.message ?? "")")
        try control(port, "/control/db-down")
        let down = try await check("http: { url: \"\(base)/health/db\", status: 200 }")
        #expect(down?.status == "failed")
    }

    @Test func httpTimesOutAtTheStepTimeoutAndReportsRefusedConnections() async throws {
        let (server, port) = try ChildServer.target()
        defer { server.stop() }
        let slow = try await check("http: { url: \"http://127.0.0.1:\(port)/slow\" }", timeout: "400ms")
        #expect(slow?.status == "timed-out", "\(slow?.message ?? "")")
        server.stop()
        let refused = try await check("http: { url: \"http://127.0.0.1:\(port)/health\" }")
        // A refused connection measured nothing: errored, with the OS's words.
        #expect(refused?.status == "errored")
        #expect(refused?.message?.contains("refused") == true, "\(refused?.message ?? "")")
    }

    @Test func tcpConnectsToAnOpenPortAndFailsOnAClosedOne() async throws {
        let (server, port) = try ChildServer.target()
        defer { server.stop() }
        let open = try await check("tcp: { host: 127.0.0.1, port: \(port), max_latency: 1s }")
        #expect(open?.status == "passed", "\(open?.message ?? "")")
        server.stop()
        let closed = try await check("tcp: { host: 127.0.0.1, port: \(port) }")
        #expect(closed?.status == "errored")
    }

    func trend(_ port: Int, _ limit: String) async throws -> TimelineEvent? {
        try await check("metric_trend: { url: \"http://127.0.0.1:\(port)/metrics\", metric: process_resident_memory_bytes, labels: { job: shop }, window: 2s, every: 200ms, \(limit) }", timeout: "10s")
    }

    @Test func metricTrendTellsSteadyGrowthFromFlatAndFromASpike() async throws {
        let (server, port) = try ChildServer.target()
        defer { server.stop() }
        try control(port, "/control/mode/grow")
        let growing = try await trend(port, "min_slope: 1MB/s")
        #expect(growing?.status == "passed", "\(growing?.message ?? "")")
        if case .number(let slope)? = growing?.output?["slope_bytes_per_s"] {
            #expect(abs(slope - 2 * 1_048_576) < 400_000, "slope \(slope)")
        } else { Issue.record("no slope output") }
        #expect(growing?.message?.hasPrefix("slope 2.") == true, "\(growing?.message ?? "")")

        try control(port, "/control/mode/flat")
        let flat = try await trend(port, "min_slope: 1MB/s")
        #expect(flat?.status == "failed")
        let flatVerify = try await trend(port, "max_slope: 100KB/s")
        #expect(flatVerify?.status == "passed", "\(flatVerify?.message ?? "")")

        try control(port, "/control/mode/spike")
        let spike = try await trend(port, "min_slope: 1MB/s")
        #expect(spike?.status == "failed", "a spike was taken for a leak: \(spike?.message ?? "")")
    }

    @Test func leastSquaresFit() {
        let line = TrendFit.fit((0..<10).map { (Double($0), 5 + 2 * Double($0)) })
        #expect(line?.slope == 2)
        #expect(line?.r2 == 1)
        #expect(TrendFit.fit([(0, 1)]) == nil)
        #expect(MetricsText.value(of: "m", labels: ["a": "x"], in: "m{a=\"y\"} 1\nm{a=\"x\",b=\"z\"} 2.5\nmm 9\n") == 2.5)
        #expect(MetricsText.value(of: "up", in: "# up 3\nup 1\n") == 1)
    }

    @Test func processByPidPidfileAndName() async throws {
        let (server, _) = try ChildServer.target()
        defer { server.stop() }
        let pid = server.pid
        let byPid = try await check("process: { pid: \(pid), max_rss: 2GB }")
        #expect(byPid?.status == "passed", "\(byPid?.message ?? "")")
        #expect(byPid?.message?.contains("RSS") == true)
        let tooBig = try await check("process: { pid: \(pid), max_rss: 1KB }")
        #expect(tooBig?.status == "failed")
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "\(pid)\n".write(toFile: dir + "/p.pid", atomically: true, encoding: .utf8)
        let byFile = try await check("process: { pidfile: \(dir)/p.pid, max_cpu: 90 }")
        #expect(byFile?.status == "passed", "\(byFile?.message ?? "")")
        #expect(byFile?.output?["cpu_percent"] != nil)
        let byName = try await check("process: { name: no-such-process-xyz }")
        #expect(byName?.status == "failed")
        let notRunning = try await check("process: { name: no-such-process-xyz, running: false }")
        #expect(notRunning?.status == "passed")
    }

    @Test func hostDiskMemoryAndLoad() async throws {
        let ok = try await check("host: { disk: { path: /, max_used: 100 }, memory: { max_used: 100 }, load: { max: 100000 } }")
        #expect(ok?.status == "passed", "\(ok?.message ?? "")")
        #expect(ok?.output?["disk_used_percent"] != nil)
        // 100% is the most a percentage can say; a disk with any space left is under it.
        let symptom = try await check("host: { disk: { path: /, min_used: 100 } }")
        #expect(symptom?.status == "failed")
    }

    @Test func commandCheckExitCodesAndStdout() async throws {
        let ok = try await check("command: { argv: [\"sh\", \"-c\", \"echo ready; exit 3\"], exit: [0, 3], stdout_contains: ready }")
        #expect(ok?.status == "passed", "\(ok?.message ?? "")")
        #expect(ok?.output?["exit_code"] == .number(3))
        let bad = try await check("command: [\"sh\", \"-c\", \"echo nope >&2; exit 1\"]")
        #expect(bad?.status == "failed")
        #expect(bad?.message == "exit 1 (expected 0): nope")
    }

    @Test func notifyPostsSlackCompatibleJSONAndFailuresAreOnTheTimeline() async throws {
        let (server, port) = try ChildServer.target()
        defer { server.stop() }
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let yaml = """
        runbook: tell
        steps:
          - id: page
            phase: mitigate
            notify: { url: "http://127.0.0.1:\(port)/hook", text: "run {{ run.id }} is on it", headers: { Authorization: "Bearer t0ken-0123456789" } }
          - id: broken
            phase: mitigate
            continue_on_failure: true
            notify: { url: "http://127.0.0.1:\(port)/fail-hook" }

        """
        let r = try await runRunbook(yaml, in: dir)
        #expect(r.status("page") == "passed")
        #expect(r.status("broken") == "failed")
        #expect(r.events.contains { $0.step == "broken" && $0.message?.contains("500") == true })
        let hooks = try JSONSerialization.jsonObject(with: Data(fetch("http://127.0.0.1:\(port)/hooks").utf8)) as? [[String: Any]]
        let body = try #require(hooks?.first?["body"] as? String)
        let payload = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        #expect((payload?["text"] as? String)?.hasPrefix("run r-") == true)
        #expect(payload?["runbook"] as? String == "tell")
        #expect(payload?["step"] as? String == "page")
        #expect(hooks?.first?["auth"] as? String == "Bearer t0ken-0123456789")
        #expect(!r.events.contains { ($0.message ?? "").contains("t0ken-0123456789") })
    }
}

/// A trend against an endpoint that does not answer says so after its first samples fail, not after
/// the whole window.
@Suite(.timeLimit(.minutes(5)))
struct TrendDeadEndpointTests {
    @Test func aTrendAgainstADeadEndpointErrorsAfterItsFirstThreeSamples() async throws {
        let port = freePort()
        let finished = try await CheckTests().check(
            "metric_trend: { url: \"http://127.0.0.1:\(port)/metrics\", metric: rss, window: 1h, every: 100ms, max_slope: 1KB/s }", timeout: "2h")
        #expect(finished?.status == "errored", "\(finished?.message ?? "")")
        #expect(finished?.message?.contains("the first 3 samples failed") == true, "\(finished?.message ?? "")")
        #expect(finished?.message?.contains("refused") == true, "\(finished?.message ?? "")")
    }
}
