import Foundation
import RunbookActions
import RunbookCore
import RunbookTestSupport
import Testing

/// The actions against the real components they drive: Prometheus, supervisord, an OpenFeature client.
@Suite(.timeLimit(.minutes(10)), .serialized)
struct RealComponentTests {
    @Test func prometheusCheckQueriesARealPrometheus() async throws {
        let (target, port) = try ChildServer.target()
        defer { target.stop() }
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try """
        global: { scrape_interval: 1s, evaluation_interval: 1s }
        scrape_configs:
          - job_name: shop
            static_configs: [{ targets: ["127.0.0.1:\(port)"] }]

        """.write(toFile: dir + "/prometheus.yml", atomically: true, encoding: .utf8)
        let log = dir + "/prometheus.log"
        let prometheus = try ChildServer.daemon(["prometheus", "--config.file=\(dir)/prometheus.yml", "--storage.tsdb.path=\(dir)/data",
                                                 "--web.listen-address=127.0.0.1:0"], log: log)
        defer { prometheus.stop() }
        let promPort = try #require(await waitForListeningPort(under: prometheus.pid, log: log), "Prometheus did not listen: \(logTail(log))")
        let server = "http://127.0.0.1:\(promPort)"
        let scraped = await waitUntil(30) { ((try? fetch("\(server)/api/v1/query?query=up")) ?? "").contains("\"value\"") }
        #expect(scraped, "Prometheus did not scrape the target")
        func step(_ body: String) async throws -> TimelineEvent? {
            let r = try await runRunbook("runbook: p\nsteps:\n  - id: q\n    phase: diagnose\n    check:\n      prometheus: { url: \"\(server)\", \(body) }\n", in: dir)
            return r.events.last { $0.event == "step.finished" }
        }
        let present = try await step("query: 'up{job=\"shop\"}'")
        #expect(present?.status == "passed", "\(present?.message ?? "")")
        #expect(present?.output?["value"] == .number(1))
        let above = try await step("query: 'up{job=\"shop\"} + 41', above: 40")
        #expect(above?.status == "passed", "\(above?.message ?? "")")
        let below = try await step("query: 'up{job=\"shop\"}', below: 0.5")
        #expect(below?.status == "failed")
        #expect(below?.message == "1 is not below 0.5")
        let empty = try await step("query: 'up{job=\"nothing\"}'")
        #expect(empty?.status == "failed")
        #expect(empty?.message == "query returned no data")
        let bad = try await step("query: 'up{'")
        #expect(bad?.status == "errored", "a query Prometheus cannot parse measures nothing")
        #expect(bad?.message?.contains("Prometheus: ") == true, "\(bad?.message ?? "")")
    }

    @Test func supervisorRestartChangesThePidAndProvesReadiness() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // A fixed port: a restarted service must come back where its readiness check looks.
        let port = freePort()
        try """
        [unix_http_server]
        file=\(dir)/supervisor.sock
        [supervisord]
        pidfile=\(dir)/supervisord.pid
        logfile=\(dir)/supervisord.log
        nodaemon=true
        [rpcinterface:supervisor]
        supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
        [supervisorctl]
        serverurl=unix://\(dir)/supervisor.sock
        [program:app]
        command=python3 -m http.server \(port) --bind 127.0.0.1 --directory \(dir)
        startsecs=1
        stopasgroup=true
        killasgroup=true

        """.write(toFile: dir + "/supervisord.conf", atomically: true, encoding: .utf8)
        let supervisord = try ChildServer.daemon(["supervisord", "-c", dir + "/supervisord.conf"])
        defer {
            // supervisord stops its programs on shutdown; a killed supervisord would orphan them.
            _ = try? Spawn.run(["supervisorctl", "-c", dir + "/supervisord.conf", "shutdown"])
            supervisord.stop()
        }
        func pid() -> Int32? {
            let out = (try? Spawn.run(["supervisorctl", "-c", dir + "/supervisord.conf", "pid", "app"]).stdout) ?? ""
            return Int32(out.trimmingCharacters(in: .whitespacesAndNewlines)).flatMap { $0 > 0 ? $0 : nil }
        }
        let up = await waitUntil(20) { pid() != nil && ((try? fetch("http://127.0.0.1:\(port)/")) ?? "").contains("supervisord") }
        #expect(up, "supervisord did not start the program")
        let before = try #require(pid())
        let yaml = """
        runbook: r
        steps:
          - id: restart-app
            phase: mitigate
            restart:
              supervisor: app
              config: \(dir)/supervisord.conf
              ready: { http: { url: "http://127.0.0.1:\(port)/", status: 200 } }
            timeout: 30s

        """
        let r = try await runRunbook(yaml, in: dir)
        let after = try #require(pid())
        #expect(r.outcome == .mitigated, "\(r.events.map { $0.message ?? "" })")
        #expect(after != before)
        #expect(!ProcFS.isRunning(before))
        let change = r.events.first { $0.event == "change.applied" }
        #expect(change?.what == "restart app")
        #expect(change?.from == "pid \(before)")
        #expect(change?.to == "pid \(after)")
        #expect(change?.message?.contains("ready in") == true || r.events.contains { $0.message?.contains("ready in") == true })
    }

    @Test func restartThatNeverComesBackReadyFailsWithTheEvidence() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let dead = freePort()
        try "#!/bin/sh\nsleep 60 >/dev/null 2>&1 &\necho $! > \(dir)/app.pid\n".write(toFile: dir + "/restart.sh", atomically: true, encoding: .utf8)
        chmod(dir + "/restart.sh", 0o755)
        let yaml = """
        runbook: r
        steps:
          - id: restart-app
            phase: mitigate
            restart:
              command: ["\(dir)/restart.sh"]
              pidfile: \(dir)/app.pid
              ready: { http: { url: "http://127.0.0.1:\(dead)/health" } }
            # The step gives up a second before its timeout, with the evidence; a longer timeout keeps
            # that second ahead of a loaded machine's late timers (4 s lost the race under a CPU hog).
            timeout: 20s

        """
        let r = try await runRunbook(yaml, in: dir)
        if let p = ProcFS.pid(fromFile: dir + "/app.pid") { PinnedProcess(p) { argv, _ in argv == ["sleep", "60"] }.signal(SIGKILL) }
        #expect(r.outcome == .failed)
        let finished = r.events.first { $0.event == "step.finished" && $0.step == "restart-app" }
        #expect(finished?.status == "failed")
        #expect(finished?.message?.contains("not back after") == true, "\(finished?.message ?? "")")
        #expect(finished?.message?.contains("not ready") == true, "\(finished?.message ?? "")")
    }

    @Test func systemdAndKubernetesRunTheExactArgv() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Argv-recording stand-ins: systemd and kubectl are not on these machines.
        for tool in ["systemctl", "kubectl"] {
            try "#!/bin/sh\nprintf '%s\\n' \"$0 $*\" >> \(dir)/argv.log\n[ \"$1\" = show ] && echo 0\nexit 0\n".write(toFile: "\(dir)/\(tool)", atomically: true, encoding: .utf8)
            chmod("\(dir)/\(tool)", 0o755)
        }
        let yaml = """
        runbook: r
        params:
          unit: { default: "shop.service" }
        steps:
          - id: systemd
            phase: mitigate
            restart: { systemd: "{{ params.unit }}" }
          - id: k8s
            phase: mitigate
            needs: [systemd]
            restart: { kubernetes: deployment/shop, namespace: web }
            timeout: 20s

        """
        // The stand-ins come first in the PATH of a `runbook run` of its own: this process's environment is left alone.
        try FileManager.default.createDirectory(atPath: dir + "/rb", withIntermediateDirectories: true)
        try yaml.write(toFile: dir + "/rb/r.yaml", atomically: true, encoding: .utf8)
        let path = "\(dir):\(ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin")"
        let r = try await offPool {
            try runCLI(["run", "r", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--json", "--yes"], environment: ["PATH": path])
        }
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let log = try String(contentsOfFile: dir + "/argv.log", encoding: .utf8).split(separator: "\n").map { $0.replacingOccurrences(of: dir + "/", with: "") }
        #expect(log == [
            "systemctl show --property=MainPID --value shop.service",
            "systemctl restart shop.service",
            "kubectl rollout restart deployment/shop --namespace web",
            "kubectl rollout status deployment/shop --timeout=19s --namespace web",
        ])
    }

    @Test func anOpenFeatureClientReadsTheFlagWeWroteAndTheUndo() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let venv = NSTemporaryDirectory() + "runbook-openfeature-venv"
        var ready = false
        if FileManager.default.fileExists(atPath: venv + "/bin/python") {
            ready = try runTool([venv + "/bin/python", "-c", "import openfeature.contrib.provider.flagd"]).status == 0
        }
        if !ready {
            let made = try runTool(["python3", "-m", "venv", venv])
            #expect(made.status == 0, "\(made.output)")
            let installed = try runTool([venv + "/bin/pip", "install", "--quiet", "openfeature-sdk", "openfeature-provider-flagd"])
            try #require(installed.status == 0, "pip install openfeature-provider-flagd failed: \(installed.output)")
        }
        try flagFileText.write(toFile: dir + "/flags.json", atomically: true, encoding: .utf8)
        let reader = """
        import sys, time
        from openfeature import api
        from openfeature.contrib.provider.flagd import FlagdProvider
        from openfeature.contrib.provider.flagd.config import ResolverType
        api.set_provider(FlagdProvider(resolver_type=ResolverType.FILE, offline_flag_source_path=sys.argv[1]))
        time.sleep(0.5)
        print(api.get_client().get_boolean_value("image-resize", None))
        """
        func read() throws -> String { try runTool([venv + "/bin/python", "-c", reader, dir + "/flags.json"]).output.trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(try read().hasSuffix("True"))
        let yaml = """
        runbook: f
        steps:
          - id: off
            phase: mitigate
            flag: { file: \(dir)/flags.json, key: image-resize, variant: "off" }
          - id: verify
            phase: verify
            check: { command: ["test", "-e", "\(dir)/undo-now"] }

        """
        try "x".write(toFile: dir + "/undo-now", atomically: true, encoding: .utf8)
        let applied = try await runRunbook(yaml, in: dir)
        #expect(applied.outcome == .mitigated)
        #expect(try read().hasSuffix("False"))
        try FileManager.default.removeItem(atPath: dir + "/undo-now")
        // Run again from "off": nothing to change, verify fails, nothing to undo; then restore via a failing run from "on".
        try flagFileText.write(toFile: dir + "/flags.json", atomically: true, encoding: .utf8)
        let undone = try await runRunbook(yaml, in: dir)
        #expect(undone.outcome == .failed)
        #expect(undone.events.contains { $0.event == "undo.finished" && $0.status == "passed" })
        #expect(try read().hasSuffix("True"))
    }
}

/// Runs a tool and returns its status and combined output.
func runTool(_ argv: [String]) throws -> (status: Int32, output: String) {
    let r = try Spawn.run(argv)
    return (r.status, r.output)
}
