import Foundation
import Testing

/// `targets.NAME.prometheus` against a real Prometheus: the hosts are the label's values over the
/// query's result, asked before the run; a host outside `within`, an empty answer, a query error
/// or an unreachable server refuses the run (exit 2) before any step runs.
struct PrometheusTargetRunTests {
    static func write(_ name: String, url: String, query: String, in dir: String) throws {
        try """
            runbook: \(name)
            targets:
              web: { prometheus: { url: "\(url)", query: '\(query)', label: host }, within: inventory }
            steps:
              - id: restart-shop
                phase: mitigate
                across: { targets: web, concurrency: 2 }
                command: ["systemctl", "restart", "shop"]
            """.write(toFile: "\(dir)/rb/\(name).yaml", atomically: true, encoding: .utf8)
    }

    static func run(_ name: String, in dir: String, dryRun: Bool = false) throws -> (status: Int32, stdout: String, stderr: String) {
        try runCLI(["run", name, "--runbooks", dir + "/rb", "--state-dir", dir + "/st", "--json", "--yes"] + (dryRun ? ["--dry-run"] : []))
    }

    @Test func hostsComeFromARealPrometheusQueryAndStayWithinTheInventory() async throws {
        let (target, port) = try ChildServer.target()
        defer { target.stop() }
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/rb", withIntermediateDirectories: true)
        try "web-1\nweb-2\nweb-3\n".write(toFile: dir + "/rb/inventory", atomically: true, encoding: .utf8)
        // web-2 is up; web-9 (nothing listens there) is down and is not in the inventory.
        try """
        global: { scrape_interval: 1s, evaluation_interval: 1s }
        scrape_configs:
          - job_name: shop
            static_configs:
              - { targets: ["127.0.0.1:\(port)"], labels: { host: web-2 } }
              - { targets: ["127.0.0.1:\(freePort())"], labels: { host: web-9 } }

        """.write(toFile: dir + "/prometheus.yml", atomically: true, encoding: .utf8)
        let log = dir + "/prometheus.log"
        let prometheus = try ChildServer.daemon(["prometheus", "--config.file=\(dir)/prometheus.yml", "--storage.tsdb.path=\(dir)/data",
                                                 "--web.listen-address=127.0.0.1:0"], log: log)
        defer { prometheus.stop() }
        let promPort = try #require(await waitForListeningPort(under: prometheus.pid, log: log), "Prometheus did not listen: \(logTail(log))")
        let server = "http://127.0.0.1:\(promPort)"
        let scraped = await waitUntil(300) {
            let up = (try? fetch("\(server)/api/v1/query?query=up")) ?? ""
            return up.contains("web-2") && up.contains("web-9")
        }
        try #require(scraped, "Prometheus did not scrape both targets")

        try Self.write("live", url: server, query: "up{job=\"shop\"} == 1", in: dir)
        let live = try Self.run("live", in: dir, dryRun: true)
        #expect(live.status == 0, "\(live.stdout)\(live.stderr)")
        let planned = jsonLines(live.stdout).filter { $0["event"] as? String == "host.planned" }.compactMap { $0["target"] as? String }
        #expect(planned == ["web-2"], "only the host the query found up: \(live.stdout)")

        try Self.write("all", url: server, query: "up{job=\"shop\"}", in: dir)
        let all = try Self.run("all", in: dir)
        #expect(all.status == 2)
        #expect(all.stderr.contains("targets.web: host 'web-9' is not in"), "\(all.stderr)")
        #expect(!all.stdout.contains("step.started"), "no step ran")

        try Self.write("none", url: server, query: "up{job=\"nothing\"}", in: dir)
        let none = try Self.run("none", in: dir)
        #expect(none.status == 2)
        #expect(none.stderr.contains("targets.web: no hosts"), "\(none.stderr)")

        try Self.write("bad", url: server, query: "up{", in: dir)
        let bad = try Self.run("bad", in: dir)
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("Prometheus refused up{"), "\(bad.stderr)")
    }

    @Test func anUnreachablePrometheusRefusesTheRun() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/rb", withIntermediateDirectories: true)
        try "web-1\n".write(toFile: dir + "/rb/inventory", atomically: true, encoding: .utf8)
        let url = "http://127.0.0.1:\(freePort())"
        try Self.write("gone", url: url, query: "up == 1", in: dir)
        let r = try Self.run("gone", in: dir)
        #expect(r.status == 2)
        #expect(r.stderr.contains("targets.web: cannot ask Prometheus at \(url)"), "\(r.stderr)")
        #expect(!r.stdout.contains("step.started"))
    }
}
