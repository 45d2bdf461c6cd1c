import Foundation
import RunbookTestSupport
import Testing

/// The whole chain with real components: the leaky shop leaks, a real Prometheus sees memory grow and
/// fires AppMemoryHigh to a real Alertmanager, which calls `runbook serve`, which runs memory-leak
/// without a human; the flag goes off, the shop restarts, memory goes flat and the alert resolves.
@Suite(.timeLimit(.minutes(10)), .serialized)
struct AlertChainTests {
    @Test func alertmanagerTriggersTheMemoryLeakRunbookAndTheAlertResolves() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let binDir = (runbookBinary as NSString).deletingLastPathComponent
        // A workspace laid out like the repository, so the runbook's relative paths resolve in it.
        try FileManager.default.createDirectory(atPath: dir + "/examples/leaky-shop", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir + "/.run", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: repoRoot + "/examples/leaky-shop/flags.json", toPath: dir + "/.run/flags.json")
        try FileManager.default.createSymbolicLink(atPath: dir + "/examples/leaky-shop/restart.sh", withDestinationPath: repoRoot + "/examples/leaky-shop/restart.sh")
        // The shop keeps a fixed port: the runbook restarts it and Prometheus must find it again there.
        // Every other server binds port 0 and its port is read back.
        let shopPort = freePort()
        let env = ["SHOP_PORT": "\(shopPort)", "SHOP_FLAGS": dir + "/.run/flags.json", "SHOP_PIDFILE": dir + "/.run/shop.pid",
                   "SHOP_BIN": binDir + "/leaky-shop", "SHOP_LOG": dir + "/shop.log"]
        let envArgs = env.map { "\($0.key)=\($0.value)" }
        defer { if let pid = try? String(contentsOfFile: dir + "/.run/shop.pid", encoding: .utf8), let p = Int32(pid.trimmingCharacters(in: .whitespacesAndNewlines)) {
            PinnedProcess(p) { argv, _ in argv.first?.hasSuffix("leaky-shop") == true }.signal(SIGTERM)
        } }
        let started = try Spawn.run(["sh", "-c", "cd \"$0\" && exec examples/leaky-shop/restart.sh shop", dir], environment: env)
        try #require(started.status == 0, "shop did not start: \(started.stderr)")
        let firstPid = try String(contentsOfFile: dir + "/.run/shop.pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let traffic = try ChildServer(["python3", "-c", """
            import sys, threading, time, urllib.request
            def go():
                while True:
                    try: urllib.request.urlopen("http://127.0.0.1:\(shopPort)/products/mug/image", timeout=2).read()
                    except Exception: pass
                    time.sleep(0.05)
            threading.Thread(target=go, daemon=True).start()
            sys.stdin.read()
            """])
        defer { traffic.stop() }

        try writeTokenFile("t0ken-0123456789\n", to: dir + "/token")
        let serve = try ChildServer(["sh", "-c", "cd \"$0\" && exec env \"$@\"", dir] + envArgs + [runbookBinary, "serve", "--listen", "127.0.0.1:0",
                                     "--runbooks", repoRoot + "/runbooks", "--state-dir", dir + "/state", "--token-file", dir + "/token"])
        defer { serve.stop() }
        let servePort = try #require(try await serve.servePort(), "serve did not say its port")
        try """
        groups:
          - name: shop
            rules:
              - alert: AppMemoryHigh
                expr: deriv(process_resident_memory_bytes{job="shop"}[15s]) > 524288
                for: 0s
                labels: { severity: critical }
                annotations: { summary: "shop memory grows" }

        """.write(toFile: dir + "/rules.yml", atomically: true, encoding: .utf8)
        try """
        route:
          receiver: runbook
          group_wait: 0s
          group_interval: 1s
          repeat_interval: 1h
        receivers:
          - name: runbook
            webhook_configs:
              - url: http://127.0.0.1:\(servePort)/hooks/alertmanager
                send_resolved: true
                http_config: { authorization: { credentials: t0ken-0123456789 } }

        """.write(toFile: dir + "/alertmanager.yml", atomically: true, encoding: .utf8)
        let amLog = dir + "/alertmanager.log"
        let alertmanager = try ChildServer.daemon(["prometheus-alertmanager", "--config.file=\(dir)/alertmanager.yml", "--storage.path=\(dir)/am",
                                                   "--web.listen-address=127.0.0.1:0", "--cluster.listen-address="], log: amLog)
        defer { alertmanager.stop() }
        let amPort = try #require(await waitForListeningPort(under: alertmanager.pid, log: amLog), "Alertmanager did not listen: \(logTail(amLog))")
        try """
        global: { scrape_interval: 1s, evaluation_interval: 1s }
        alerting:
          alertmanagers: [{ static_configs: [{ targets: ["127.0.0.1:\(amPort)"] }] }]
        rule_files: ["\(dir)/rules.yml"]
        scrape_configs:
          - job_name: shop
            static_configs: [{ targets: ["127.0.0.1:\(shopPort)"], labels: { service: shop } }]

        """.write(toFile: dir + "/prometheus.yml", atomically: true, encoding: .utf8)
        let prometheus = try ChildServer.daemon(["prometheus", "--config.file=\(dir)/prometheus.yml", "--storage.tsdb.path=\(dir)/prom",
                                                 "--web.listen-address=127.0.0.1:0"], log: dir + "/prometheus.log")
        defer { prometheus.stop() }

        func runs() -> [[String: Any]] {
            ((try? JSONSerialization.jsonObject(with: Data(http("GET", "http://127.0.0.1:\(servePort)/runs", headers: ["Authorization": "Bearer t0ken-0123456789"]).body.utf8))) as? [[String: Any]]) ?? []
        }
        let mitigated = await waitUntil(120) { runs().contains { $0["outcome"] as? String == "mitigated" } }
        let all = runs()
        #expect(mitigated, "no mitigated run: \(all)\nPrometheus: \(logTail(dir + "/prometheus.log"))\nAlertmanager: \(logTail(amLog))")
        let run = try #require(all.first { $0["outcome"] as? String == "mitigated" })
        #expect(run["trigger"] as? String == "alert:AppMemoryHigh")
        #expect(all.filter { $0["outcome"] as? String != "refused" }.count == 1, "repeat notifications started more runs: \(all)")
        let newPid = try String(contentsOfFile: dir + "/.run/shop.pid", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(newPid != firstPid)
        let flags = try String(contentsOfFile: dir + "/.run/flags.json", encoding: .utf8)
        #expect(flags.contains("\"defaultVariant\": \"off\""))
        // Memory is flat now, so the rule stops firing and Alertmanager sends the resolve.
        let id = run["id"] as? String ?? ""
        let resolved = await waitUntil(90) { ((try? http("GET", "http://127.0.0.1:\(servePort)/runs/\(id)", headers: ["Authorization": "Bearer t0ken-0123456789"]).body) ?? "").contains("alert.resolved") }
        #expect(resolved, "the alert did not resolve on the run's timeline")
    }
}
