import CRunbookSys
import Foundation
import RunbookTestSupport
import Testing

/// Fenced leases across `runbook serve` replicas on a real PostgreSQL (issue 19, items 1 and 9):
/// a database outage never gives a run two owners or two ends, and a replica killed mid-command
/// leaves nothing running that its record does not tell.
/// Each test starts a cluster of its own (one of them stops it for 10 s).
@Suite(.serialized, .timeLimit(.minutes(8)),
       .enabled(if: TestPostgres.clusterDir != nil, "needs PostgreSQL (scripts/test.sh sets RUNBOOK_TEST_PG_DIR)"))
struct ReplicaFencingTests {
    static func replicas(_ n: Int, _ dir: String, _ db: String) async throws -> [(ChildServer, Int)] {
        var out: [(ChildServer, Int)] = []
        do {
            for i in 0..<n {
                out.append(try await ChildServer.serve(["--runbooks", dir + "/rb", "--state-dir", dir + "/state\(i)", "--token-file", dir + "/tokens", "--database", db]))
            }
        } catch {
            out.forEach { $0.0.stop() }
            throw error
        }
        return out
    }

    static let tokens = "am:alerts:am-token-1-0123456789\nops:operator:ops-token-1-0123456789\n"
    static let alerts = ["Authorization": "Bearer am-token-1-0123456789"]

    static func payload(_ svc: String) -> String {
        #"{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"OutAlert","svc":"\#(svc)"},"fingerprint":"fp-\#(svc)"}]}"#
    }

    /// Each command appends `WHAT PID-OF-ITS-ENGINE` to the run's own file, so the file tells what
    /// really happened to the world, and which replica did it; the long command adds its own pid.
    static let outage = """
        runbook: out
        triggers:
          - alert: { alertname: OutAlert }
            params: { svc: "{{ alert.labels.svc }}" }
        guards: { auto: true }
        params:
          svc: { default: x, pattern: "[a-z0-9-]+" }
        steps:
          - id: look
            phase: detect
            check: { command: ["true"] }
          - id: first
            phase: mitigate
            command: ["sh", "-c", "echo \\"applied $PPID\\" >> \\"$1\\"", "sh", "DIR/changes/{{ params.svc }}"]
            undo: { command: ["sh", "-c", "echo \\"undone $PPID\\" >> \\"$1\\"", "sh", "DIR/changes/{{ params.svc }}"] }
          - id: long
            phase: mitigate
            needs: [first]
            command: ["sh", "-c", "echo \\"long $PPID $$\\" >> \\"$1\\"; exec sleep 3600", "sh", "DIR/changes/{{ params.svc }}"]
            timeout: 2h
          - id: fine
            phase: verify
            check: { command: ["true"] }

        """

    /// Rows of `sql` on the test database (psql -At, columns split by `|`), or nothing while it is down.
    static func rows(_ db: String, _ sql: String) -> [String] { (try? TestPostgres.query(db, sql)) ?? [] }

    @Test func aDatabaseStoppedForTenSecondsUnderTwoReplicasLeavesEachRunOneOwnerOneEndAndATrueRecord() async throws {
        let cluster = try await offPool { try TestPostgres.OwnCluster() }
        let dir = try runbookSandbox(Self.outage, name: "out", tokens: Self.tokens)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/changes", withIntermediateDirectories: true)
        let db = cluster.url
        let servers = try await Self.replicas(2, dir, db)
        defer { servers.forEach { $0.0.stop() } }
        let svcs = (0..<20).map { "s\($0)" }
        for (i, svc) in svcs.enumerated() {
            let a = try await offPool { try http("POST", "http://127.0.0.1:\(servers[i % 2].1)/hooks/alertmanager", body: Self.payload(svc), headers: Self.alerts) }
            #expect(a.body.contains(#""status":"started""#), "\(a)")
        }
        // Every run has made its change and is in its long command.
        let inFlight = await waitUntil(120) {
            Self.rows(db, #"select count(distinct run) from events where line like '%"event":"step.started"%' and line like '%"step":"long"%'"#) == ["20"]
        }
        #expect(inFlight, "not every run reached its long command")
        // The outage: the database stopped for 10 s (the scenario, not a wait for something).
        try await offPool { try cluster.script("down") }
        try await Task.sleep(for: .seconds(10))
        try await offPool { try cluster.script("up") }
        let allEnded = await waitUntil(240) { Self.rows(db, "select count(*) from runs where outcome is null") == ["0"] }
        #expect(allEnded, "runs still open: \(Self.rows(db, "select id, owner, epoch from runs where outcome is null"))")
        let ids = Self.rows(db, "select id || '|' || outcome || '|' || (select count(*) from events e where e.run = runs.id and e.line like '%\"event\":\"run.taken_over\"%') from runs order by id")
        #expect(ids.count == 20)
        var takenOver = 0
        for row in ids {
            let parts = row.split(separator: "|").map(String.init)
            let (id, outcome) = (parts[0], parts[1])
            if parts[2] != "0" { takenOver += 1 }
            let events = Self.rows(db, "select line from events where run = '\(id)' order by seq").compactMap { jsonLines($0).first }
            let ends = events.filter { $0["event"] as? String == "run.finished" }
            #expect(ends.count == 1, "run \(id): \(ends.count) run.finished: \(events.map { "\($0["event"] ?? "") \($0["step"] ?? "") \($0["message"] ?? "")" })")
            #expect(ends.first?["outcome"] as? String == outcome, "run \(id): the row says \(outcome)")
            let svc = try #require((events.first?["params"] as? [String: Any])?["svc"] as? String)
            let lines = ((try? String(contentsOfFile: dir + "/changes/" + svc, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
            // Every change either recorded or undone: what the file says is what the timeline says.
            let applied = lines.filter { $0.hasPrefix("applied ") }.count, undone = lines.filter { $0.hasPrefix("undone ") }.count
            let recordedApplied = events.filter { $0["event"] as? String == "change.applied" && $0["step"] as? String == "first" }.count
            let recordedUndone = events.filter { $0["event"] as? String == "undo.finished" && $0["step"] as? String == "first" }.count
            // An undo whose owner lost the database before recording its end may or may not have
            // happened; the next owner does not repeat it and records it as unknown.
            let recordedUnknown = events.filter {
                $0["event"] as? String == "undo.failed" && $0["step"] as? String == "first" && ($0["message"] as? String)?.contains("unknown") == true
            }.count
            #expect(applied == recordedApplied && undone >= recordedUndone && undone <= recordedUndone + recordedUnknown, "run \(id): file \(lines), timeline \(Self.rows(db, "select line from events where run = '\(id)' order by seq"))")
            // The long command was running when its owner lost the database: it was killed, never left running.
            // `long ENGINE-PID COMMAND-PID`: read long after the command may have died, so the process now
            // at that pid must be that `sleep`, spawned by that engine (its step cookie starts with the
            // engine's pid), or the command has exited and the pid is someone else's.
            let longs = lines.filter { $0.hasPrefix("long ") }.map { $0.split(separator: " ").map(String.init) }.filter { $0.count == 3 }
            #expect(longs.count == 1, "run \(id): \(lines)")
            for fields in longs {
                guard let pid = Int32(fields[2]) else { continue }
                let command = PinnedProcess(pid) { argv, environment in
                    argv.first == "sleep" && environment.contains { $0.hasPrefix("RUNBOOK_STEP_COOKIE=\(fields[1])-") }
                }
                let died = try await offPool { EngineDeathTests.waitForExit(command) }
                if !died { command.signal(SIGKILL) }
                #expect(died, "run \(id): its long command outlived the owner that lost it")
            }
            // One owner at a time: once a replica acted after another, the first never acts again.
            var owners: [String] = []
            for l in lines {
                let fields = l.split(separator: " ").map(String.init)
                if fields.count > 1, owners.last != fields[1] { owners.append(fields[1]) }
            }
            #expect(Set(owners).count == owners.count, "run \(id): two owners interleaved: \(lines)")
        }
        // Every owner lost the database for longer than it may hold a lease: each run was given up and taken over.
        #expect(takenOver == 20, "taken over: \(takenOver) of 20 (\(ids))")
    }

    static let killed = """
        runbook: kill
        triggers:
          - alert: { alertname: OutAlert }
        guards: { auto: true }
        steps:
          - id: c1
            phase: mitigate
            command: ["sh", "-c", "echo applied >> DIR/c1"]
            undo: { command: ["sh", "-c", "echo undone >> DIR/c1"] }
          - id: c2
            phase: mitigate
            needs: [c1]
            command: ["sh", "-c", "(sleep 3600; touch DIR/c2-done) & echo $! > DIR/gc.pid; echo $$ > DIR/cmd.pid; wait"]
            timeout: 2h

        """

    @Test func killingAReplicaMidCommandKillsTheCommandAndWhatItLeftAndTheRecordSaysSo() async throws {
        let cluster = try await offPool { try TestPostgres.OwnCluster() }
        let dir = try runbookSandbox(Self.killed, name: "kill", tokens: Self.tokens)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = cluster.url
        let servers = try await Self.replicas(2, dir, db)
        defer { servers.forEach { $0.0.stop() } }
        let posted = try await offPool { try http("POST", "http://127.0.0.1:\(servers[0].1)/hooks/alertmanager", body: Self.payload("k"), headers: Self.alerts) }
        let id = try #require(jsonRuns(posted.body).first, "\(posted.body)")
        let pids = try await offPool { (EngineDeathTests.pid(in: dir + "/cmd.pid"), EngineDeathTests.pid(in: dir + "/gc.pid")) }
        // Pinned while their replica still runs them, so that nothing below reaches a later owner of their pids.
        let (command, grandchild) = (PinnedProcess(try #require(pids.0, "c2 never started")),
                                     PinnedProcess(try #require(pids.1, "c2 left no grandchild")))
        defer { grandchild.signal(SIGKILL) }
        let owner = try #require(Self.rows(db, "select owner from runs where id = '\(id)'").first)
        let ownerPID = try #require(Int32(owner.split(separator: ":").last ?? ""))
        let victim = try #require(servers.first { $0.0.pid == ownerPID }, "owner \(owner) is not one of the replicas")
        kill(victim.0.pid, SIGKILL)
        #expect(try await offPool { EngineDeathTests.waitForExit(command) }, "the command outlived its replica")
        let ended = await waitUntil(120) { Self.rows(db, "select outcome from runs where id = '\(id)'") == ["interrupted"] }
        #expect(ended, "\(Self.rows(db, "select outcome, owner from runs where id = '\(id)'"))")
        // The other replica took the run over and killed what c2 left before it wrote anything.
        #expect(try await offPool { EngineDeathTests.waitForExit(grandchild) }, "the taker left c2's grandchild running")
        #expect(!FileManager.default.fileExists(atPath: dir + "/c2-done"), "c2 went on after its owner died")
        let events = Self.rows(db, "select line from events where run = '\(id)' order by seq").compactMap { jsonLines($0).first }
        let end = try #require(events.last { $0["event"] as? String == "run.finished" })
        #expect((end["message"] as? String)?.contains("c2") == true, "\(end)")
        // c1 was undone by the taker, and the file agrees.
        #expect(events.contains { $0["event"] as? String == "undo.finished" && $0["step"] as? String == "c1" }, "\(events.map { $0["event"] ?? "" })")
        #expect(try String(contentsOfFile: dir + "/c1", encoding: .utf8) == "applied\nundone\n")
        #expect(events.filter { $0["event"] as? String == "run.finished" }.count == 1)
    }
}
