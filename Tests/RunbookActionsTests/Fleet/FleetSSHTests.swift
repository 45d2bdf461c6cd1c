import Foundation
import Testing
import RunbookTestSupport

/// `across:` steps against real sshd hosts (issue 22's Must-show list), through `runbook run`.
@Suite(.serialized) struct FleetSSHTests {
    static func restartYAML(across: String, failing: String = "", seconds: String = "0.3", timeout: String = "120s", hosts: String = "{ inventory: inventory }", extra: String = "") -> String {
        """
        \(header(hosts: hosts))
          - id: restart-shop
            phase: mitigate
            across: \(across)
            command: ["/bin/sh", "FLEET/probe.sh", "FLEET/state", "{{ target.host }}", "\(seconds)", "\(failing)"]
            timeout: \(timeout)
        \(extra)
        """
    }

    /// `runbook: fleet` with the set `web` (the inventory unless `hosts` says otherwise), up to
    /// `steps:`; the steps follow at column 0 of the caller's text.
    static func header(hosts: String = "{ inventory: inventory }", params: String? = nil) -> String {
        "runbook: fleet\n" + (params.map { "params:\n  \($0)\n" } ?? "") + "targets:\n  web: \(hosts)\nsteps:"
    }

    /// Step `mark` across `web`: `command` marks each host (by default it touches
    /// `FLEET/state/marked-HOST`); its undo removes that file.
    static func markStep(across: String, command: String = #"["touch", "FLEET/state/marked-{{ target.host }}"]"#) -> String {
        """
          - id: mark
            phase: mitigate
            across: \(across)
            command: \(command)
            undo: { command: ["rm", "FLEET/state/marked-{{ target.host }}"] }
            timeout: 120s
        """
    }

    @Test func twentyHostsAtConcurrencyFiveNeverRunMoreThanFiveAtOnce() async throws {
        let fleet = try await SSHFleet.ready(count: 20)
        defer { fleet.stop() }
        let rb = try fleet.runbooks(Self.restartYAML(across: "{ targets: web, concurrency: 5 }"))
        let r = try await fleet.run(runbooks: rb)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.events.outcome == "mitigated")
        #expect(Set(r.events.targets("host.finished", status: "passed")) == Set(fleet.hosts))
        #expect(r.events.targets("change.applied").count == 20)
        #expect(fleet.log.filter { $0.hasPrefix("end ") }.count == 20)
        #expect(fleet.maxRunning <= 5 && fleet.maxRunning >= 1, "max seen on the hosts: \(fleet.maxRunning)")
        let resolved = try #require(r.events.named("fleet.started").first?["message"] as? String)
        #expect(resolved.contains("20 hosts") && resolved.contains("web-20"))
    }

    @Test func rampStartsOneHostThenTwoThenFourEachAfterTheLastBatchEnded() async throws {
        let fleet = try await SSHFleet.ready(count: 7)
        defer { fleet.stop() }
        let rb = try fleet.runbooks(Self.restartYAML(across: "{ targets: web, concurrency: 4, ramp: true }", seconds: "0.2"))
        let r = try await fleet.run(runbooks: rb)
        #expect(r.status == 0, "\(r.stderr)")
        // Seen on the hosts: each batch starts after the last one ended.
        let log = fleet.log
        func index(_ line: String) -> Int { log.firstIndex(of: line) ?? -1 }
        #expect(index("end web-1") < index("start web-2") && index("end web-1") < index("start web-3"))
        for late in 4...7 {
            #expect(index("end web-2") < index("start web-\(late)") && index("end web-3") < index("start web-\(late)"), "\(log)")
        }
        #expect(fleet.maxRunning <= 4)
    }

    @Test func aFailedCanaryStopsAfterOneHost() async throws {
        let fleet = try await SSHFleet.ready(count: 8)
        defer { fleet.stop() }
        let rb = try fleet.runbooks(Self.restartYAML(across: "{ targets: web, concurrency: 5, max_errors: 5, canary: { hosts: 1 } }", failing: "web-1"))
        let r = try await fleet.run(runbooks: rb)
        #expect(r.status == 1)
        #expect(r.events.targets("host.started") == ["web-1"])
        #expect(r.events.targets("host.finished", status: "failed") == ["web-1"])
        let finished = r.events.named("step.finished").first { $0["step"] as? String == "restart-shop" }
        #expect((finished?["message"] as? String)?.contains("canary host failed") == true)
    }

    @Test func maxErrorsTwoStopsWithTheThirdFailureWhileHostsInFlightFinish() async throws {
        let fleet = try await SSHFleet.ready(count: 20)
        defer { fleet.stop() }
        // web-1..web-3 fail at once; the others take a while, so they are in flight at the third failure.
        let yaml = """
            \(Self.header())
              - id: restart-shop
                phase: mitigate
                across: { targets: web, concurrency: 5, max_errors: 2 }
                command: ["/bin/sh", "-c", "case $0 in web-1|web-2|web-3) exit 1;; esac; sh FLEET/probe.sh FLEET/state $0 1", "{{ target.host }}"]
                timeout: 120s
            """
        let r = try await fleet.run(runbooks: try fleet.runbooks(yaml))
        #expect(r.status == 1)
        let failed = r.events.targets("host.finished", status: "failed")
        #expect(failed.count == 3, "\(failed)")
        let started = r.events.targets("host.started")
        #expect(started.count < 20)
        // Every host that started finished on its own (none was cancelled): in flight hosts finish.
        #expect(Set(r.events.targets("host.finished")) == Set(started))
        #expect(!r.events.targets("host.finished", status: "passed").isEmpty)
        let message = r.events.named("step.finished").first { $0["step"] as? String == "restart-shop" }?["message"] as? String ?? ""
        #expect(message.contains("3 hosts failed, more than max_errors 2") && message.contains("not started"), "\(message)")
        #expect(r.events.targets("change.applied").count == started.count - 3)
    }

    @Test func refusedSilentAndHangingHostsFailAloneWhileTheRestGoOn() async throws {
        let fleet = try await SSHFleet.ready(count: 3)
        defer { fleet.stop() }
        let hangYAML = """
            \(Self.header(hosts: "{ hosts: [refused, blackhole, web-3, web-1] }"))
              - id: restart-shop
                phase: mitigate
                across: { targets: web, concurrency: 5, max_errors: 3 }
                command: ["/bin/sh", "-c", "if [ $0 = web-3 ]; then exec python3 -c 'import time; time.sleep(1000)' fleet-hang-marker-$1; fi; echo $0 ok", "{{ target.host }}", "\(fleet.dir.suffix(8))"]
                timeout: 40s
            """
        let r = try await fleet.run(runbooks: try fleet.runbooks(hangYAML))
        #expect(r.status == 0, "\(r.stderr)")
        func status(_ host: String) -> String? { r.events.named("host.finished").first { $0["target"] as? String == host }?["status"] as? String }
        #expect(status("refused") == "errored")
        #expect(status("blackhole") == "errored")
        #expect(status("web-3") == "timed-out")
        #expect(status("web-1") == "passed")
        // The hanging command was stopped there too (the remote watchdog at the same deadline).
        let marker = "fleet-hang-marker-\(fleet.dir.suffix(8))"
        #expect(await waitUntil(30) { !processAlive(matching: marker) })
    }

    @Test func anUnknownHostKeyIsRefusedWhateverTheSSHConfigSays() async throws {
        let fleet = try await SSHFleet.ready(count: 1)
        defer { fleet.stop() }
        let rb = try fleet.runbooks(Self.restartYAML(across: "{ targets: web }", hosts: "{ hosts: [stranger] }"))
        let r = try await fleet.run(runbooks: rb)
        #expect(r.status == 1)
        let host = r.events.named("host.finished").first
        #expect(host?["status"] as? String == "errored")
        #expect((host?["message"] as? String)?.contains("Host key verification failed") == true, "\(String(describing: host))")
        #expect(fleet.log.isEmpty)
    }

    @Test func hostileValuesReachTheRemoteArgvAsOneLiteralArgument() async throws {
        let fleet = try await SSHFleet.ready(count: 2)
        defer { fleet.stop() }
        let yaml = """
            \(Self.header(params: "label: { default: x }"))
              - id: tag
                phase: mitigate
                across: { targets: web, concurrency: 2 }
                command: ["/bin/sh", "FLEET/argv.sh", "FLEET/state/argv", "{{ target.host }}", "{{ params.label }}"]
                timeout: 120s
            """
        let rb = try fleet.runbooks(yaml)
        for hostile in ["; rm -rf / #", "$(touch \(fleet.dir)/pwned)", "`touch \(fleet.dir)/pwned` 'q\" \\"] {
            let r = try await fleet.run(runbooks: rb, ["--param", "label=\(hostile)"])
            #expect(r.status == 0, "\(r.stderr)")
            for host in fleet.hosts {
                let seen = try String(contentsOfFile: fleet.state + "/argv-\(host)", encoding: .utf8)
                #expect(seen == "1\n\(hostile)\n", "\(host): \(seen)")
            }
        }
        #expect(!FileManager.default.fileExists(atPath: fleet.dir + "/pwned"))
    }

    @Test func aFailedVerifyUndoesEachHostInReverse() async throws {
        let fleet = try await SSHFleet.ready(count: 3)
        defer { fleet.stop() }
        let yaml = """
            \(Self.header())
            \(Self.markStep(across: "{ targets: web }"))
              - id: healthy
                phase: verify
                check: { command: ["false"] }
            """
        let r = try await fleet.run(runbooks: try fleet.runbooks(yaml))
        #expect(r.status == 1)
        #expect(r.events.targets("change.applied") == ["web-1", "web-2", "web-3"])
        #expect(r.events.targets("undo.finished", status: "passed") == ["web-3", "web-2", "web-1"])
        for h in fleet.hosts { #expect(!FileManager.default.fileExists(atPath: fleet.state + "/marked-\(h)")) }
    }

    @Test func aCanaryWhoseCheckFailsIsUndoneAndTheRestNeverStart() async throws {
        let fleet = try await SSHFleet.ready(count: 5)
        defer { fleet.stop() }
        let yaml = """
            \(Self.header())
            \(Self.markStep(across: "{ targets: web, concurrency: 2, canary: { hosts: 2, verify: healthy } }"))
              - id: healthy
                phase: verify
                check: { command: ["test", "-e", "FLEET/state/healthy-{{ target.host }}"] }
            """
        let r = try await fleet.run(runbooks: try fleet.runbooks(yaml))
        #expect(r.status == 1)
        #expect(r.events.targets("host.started") == ["web-1", "web-2"])
        #expect(r.events.targets("canary.checked", status: "failed").sorted() == ["web-1", "web-2"])
        #expect(Set(r.events.targets("undo.finished", status: "passed")) == ["web-1", "web-2"])
        for h in fleet.hosts { #expect(!FileManager.default.fileExists(atPath: fleet.state + "/marked-\(h)")) }
    }

    @Test func anAlertLabelOrParamNamingAHostOutsideTheInventoryIsRefusedBeforeAnyStep() async throws {
        let fleet = try SSHFleet(count: 2)
        defer { fleet.stop() }
        let rb = try fleet.runbooks("""
            \(Self.header(hosts: "{ hosts: [\"{{ params.host }}\"], within: inventory }", params: "host: { required: true, pattern: \"[a-z0-9.-]+\" }"))
              - id: mark
                phase: mitigate
                across: { targets: web }
                command: ["touch", "FLEET/state/marked"]
            """)
        let r = try await fleet.run(runbooks: rb, ["--param", "host=db-9"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("host 'db-9' is not in"))
        #expect(r.events.named("step.started").isEmpty)
    }

    @Test func anEmptyInventoryIsRefusedNotAllHosts() async throws {
        let fleet = try SSHFleet(count: 1)
        defer { fleet.stop() }
        let rb = try fleet.runbooks(Self.restartYAML(across: "{ targets: web }"), inventory: "# nobody yet\n")
        let r = try await fleet.run(runbooks: rb)
        #expect(r.status == 2)
        #expect(r.stderr.contains("an empty target list is an error"))
        #expect(fleet.log.isEmpty)
    }

    @Test func aDryRunListsEveryHostAndContactsNone() async throws {
        let fleet = try SSHFleet(count: 20)
        defer { fleet.stop() }
        let rb = try fleet.runbooks(Self.restartYAML(across: "{ targets: web, concurrency: 10%, ramp: true }"))
        let r = try await fleet.run(runbooks: rb, ["--dry-run"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.events.targets("host.planned") == fleet.hosts)
        #expect((r.events.named("host.planned").first?["message"] as? String)?.contains("probe.sh") == true)
        #expect(r.events.outcome == "would-mitigate")
        #expect(fleet.log.isEmpty)
    }

    @Test func ctrlCMidFleetStopsNewHostsAndUndoesTheHostsDoneInReverse() async throws {
        let fleet = try await SSHFleet.ready(count: 10)
        defer { fleet.stop() }
        let yaml = """
            \(Self.header())
            \(Self.markStep(across: "{ targets: web, concurrency: 2 }", command: #"["/bin/sh", "-c", "touch FLEET/state/marked-$0 && sh FLEET/probe.sh FLEET/state $0 0.5", "{{ target.host }}"]"#))
            """
        let rb = try fleet.runbooks(yaml)
        let child = try Spawn.start([runbookBinary, "run", "fleet", "--runbooks", rb, "--state-dir", fleet.dir + "/st", "--json", "--yes",
                                     "--ssh-config", fleet.sshConfig], environment: ["NO_COLOR": "1"])
        // Interrupted once the run's own record shows three hosts changed.
        let runs = fleet.dir + "/st/runs"
        let ended = await waitUntil(240) {
            let files = (try? FileManager.default.contentsOfDirectory(atPath: runs))?.filter { $0.hasSuffix(".jsonl") } ?? []
            return files.contains { f in
                ((try? String(contentsOfFile: runs + "/" + f, encoding: .utf8)) ?? "").components(separatedBy: "\"event\":\"change.applied\"").count > 3
            }
        }
        kill(child.pid, SIGINT)
        let out = try await offPool { child.wait() }
        #expect(ended)
        #expect(out.status == 130, "\(out.stderr)")
        let events = jsonLines(out.stdout)
        let changed = events.targets("change.applied")
        #expect(changed.count >= 3 && changed.count < 10, "\(changed)")
        #expect(events.targets("undo.finished", status: "passed") == changed.reversed())
        for h in changed { #expect(!FileManager.default.fileExists(atPath: fleet.state + "/marked-\(h)")) }
        #expect(events.targets("host.started").count < 10)
    }
}
