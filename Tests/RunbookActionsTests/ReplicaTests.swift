import Foundation
import RunbookCore
import RunbookTestSupport
import Testing

/// A throwaway PostgreSQL cluster started by scripts/test.sh (`RUNBOOK_TEST_DATABASE_URL`); each test
/// gets a database of its own.
enum TestPostgres {
    static let url = ProcessInfo.processInfo.environment["RUNBOOK_TEST_DATABASE_URL"]
    static let clusterDir = ProcessInfo.processInfo.environment["RUNBOOK_TEST_PG_DIR"]
    static var available: Bool { url != nil }

    /// A new, empty database on the cluster; its URL.
    static func freshDatabase() throws -> String {
        let base = try #require(url.flatMap(URLComponents.init(string:)))
        let name = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        let r = try Spawn.run(["psql", "-q", "-h", base.host ?? "127.0.0.1", "-p", "\(base.port ?? 5432)", "-U", base.user ?? "runbook",
                               "-d", "postgres", "-c", "create database \(name)"])
        #expect(r.status == 0, "\(r.stderr)")
        var c = base
        c.path = "/" + name
        return c.string!
    }

    /// Runs SQL on a test database and returns its rows, one line each, columns split by `|`.
    static func query(_ dbURL: String, _ sql: String) throws -> [String] {
        let c = try #require(URLComponents(string: dbURL))
        let r = try Spawn.run(["psql", "-At", "-h", c.host ?? "127.0.0.1", "-p", "\(c.port ?? 5432)", "-U", c.user ?? "runbook",
                               "-d", String(c.path.dropFirst()), "-c", sql])
        return r.stdout.split(separator: "\n").map(String.init)
    }

    /// A throwaway cluster of one test's own, stopped and removed at the end: a test that stops or
    /// restarts PostgreSQL does it to this one, never to the shared cluster other tests are using.
    final class OwnCluster: Sendable {
        let dir: String
        let url: String

        init() throws {
            let base = temporaryFolder()
            try? FileManager.default.removeItem(atPath: base)
            dir = base + "-pg"
            let r = try Spawn.run([repoRoot + "/scripts/pg-cluster.sh", "start", dir])
            guard r.status == 0, let line = r.stdout.split(separator: "\n").last else { throw CocoaError(.executableLoad) }
            url = String(line)
        }

        func script(_ command: String) throws {
            let r = try Spawn.run([repoRoot + "/scripts/pg-cluster.sh", command, dir])
            #expect(r.status == 0, "pg-cluster.sh \(command): \(r.stderr)")
        }

        deinit {
            _ = try? Spawn.run([repoRoot + "/scripts/pg-cluster.sh", "stop", dir])
            try? FileManager.default.removeItem(atPath: dir)
        }
    }
}

/// Replicas of `runbook serve` on one PostgreSQL (SPEC §6.8): one run per alert across replicas,
/// takeover of a dead owner's run, guards shared with the CLI, a database restart, migrations.
/// Serialized: replicas are heavy on a 2-core machine. The restart test restarts a cluster of its own.
@Suite(.serialized, .timeLimit(.minutes(10)), .enabled(if: TestPostgres.available, "needs RUNBOOK_TEST_DATABASE_URL (scripts/test.sh starts a cluster)"))
struct ReplicaTests {
    static func folder(_ yaml: String) throws -> String {
        try runbookSandbox(yaml, name: "rep", tokens: "am:alerts:am-token-1-0123456789\nops:operator:ops-token-1-0123456789\n")
    }

    static let quick = """
        runbook: rep
        triggers:
          - alert: { alertname: RepAlert }
        guards: { auto: true, cooldown: 10m, lock: "{{ params.svc }}" }
        params:
          svc: { default: shop, pattern: "[a-z0-9-]+" }
        steps:
          - id: look
            phase: detect
            check: { command: ["true"] }

        """

    static func payload(_ fingerprint: String, svc: String) -> String {
        #"{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"RepAlert","svc":"\#(svc)"},"fingerprint":"\#(fingerprint)"}]}"#
    }

    static let triggerWithParams = quick.replacingOccurrences(of: "  - alert: { alertname: RepAlert }\n", with: "  - alert: { alertname: RepAlert }\n    params: { svc: \"{{ alert.labels.svc }}\" }\n")

    func replicas(_ n: Int, _ dir: String, _ db: String) async throws -> [(ChildServer, Int)] {
        var out: [(ChildServer, Int)] = []
        do {
            for i in 0..<n {
                out.append(try await ChildServer.serve(["--runbooks", dir + "/rb", "--state-dir", dir + "/state\(i)", "--token-file", dir + "/tokens", "--database", db]))
            }
        } catch {
            // None is left running when one could not start.
            out.forEach { $0.0.stop() }
            throw error
        }
        return out
    }

    @Test func anAlertDeliveredToThreeReplicasStartsExactlyOneRunTwentyTimesOver() async throws {
        let dir = try Self.folder(Self.triggerWithParams)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = try TestPostgres.freshDatabase()
        let servers = try await replicas(3, dir, db)
        defer { servers.forEach { $0.0.stop() } }
        let auth = ["Authorization": "Bearer am-token-1-0123456789"]
        for i in 0..<20 {
            let body = Self.payload("fp-\(i)", svc: "svc\(i)")
            // All three at once, as Alertmanager in HA mode delivers it.
            let answers = try await withThrowingTaskGroup(of: (Int, String).self) { group in
                for (_, port) in servers { group.addTask { try await offPool { try http("POST", "http://127.0.0.1:\(port)/hooks/alertmanager", body: body, headers: auth) } } }
                var all: [(Int, String)] = []
                for try await a in group { all.append(a) }
                return all
            }
            #expect(answers.allSatisfy { $0.0 == 202 }, "\(answers)")
            #expect(answers.filter { $0.1.contains(#""status":"started""#) }.count == 1, "alert \(i): \(answers.map(\.1))")
        }
        let history = try await offPool { try runCLI(["history", "--json", "--limit", "100", "--database", db]) }
        let runs = jsonLines(history.stdout)
        #expect(runs.count == 20, "\(history.stdout)\(history.stderr)")
        let rows = try TestPostgres.query(db, "select fingerprint, count(*) from runs group by fingerprint having count(*) > 1")
        #expect(rows.isEmpty, "duplicates: \(rows)")
    }

    @Test func aKilledOwnersRunIsTakenOverWithoutRepeatingItsChange() async throws {
        let dir = try Self.folder("""
            runbook: rep
            triggers:
              - alert: { alertname: RepAlert }
            guards: { auto: true }
            steps:
              - id: look
                phase: detect
                check: { command: ["true"] }
              - id: off
                phase: mitigate
                flag: { file: "DIR/flags.json", key: image-resize, variant: "off" }
              - id: settle
                phase: mitigate
                needs: [off]
                wait: 5s
              - id: fine
                phase: verify
                check: { command: ["true"] }

            """)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = try TestPostgres.freshDatabase()
        let servers = try await replicas(3, dir, db)
        defer { servers.forEach { $0.0.stop() } }
        let posted = try http("POST", "http://127.0.0.1:\(servers[0].1)/hooks/alertmanager", body: Self.payload("fp-k", svc: "a"),
                              headers: ["Authorization": "Bearer am-token-1-0123456789"])
        let id = try #require(jsonRuns(posted.body).first, "\(posted.body)")
        // Wait for the change, then kill its owner outright.
        #expect(await waitUntil(20) { ((try? TestPostgres.query(db, "select line from events where run = '\(id)'")) ?? []).contains { $0.contains("change.applied") } })
        let owner = try #require(try TestPostgres.query(db, "select owner from runs where id = '\(id)'").first)
        let ownerPID = try #require(Int32(owner.split(separator: ":").last ?? ""))
        let victim = try #require(servers.first { $0.0.pid == ownerPID }, "owner \(owner) is not one of the replicas")
        let killedAt = Date()
        kill(victim.0.pid, SIGKILL)
        victim.0.stop()
        let other = try #require(servers.first { $0.0.pid != ownerPID })
        let ops = ["Authorization": "Bearer ops-token-1-0123456789"]
        let done = await waitUntil(40) { ((try? http("GET", "http://127.0.0.1:\(other.1)/runs/\(id)", headers: ops).body) ?? "").contains(#""outcome":"mitigated""#) }
        #expect(done)
        let run = try http("GET", "http://127.0.0.1:\(other.1)/runs/\(id)", headers: ops).body
        let events = try #require((try JSONSerialization.jsonObject(with: Data(run.utf8)) as? [String: Any])?["timeline"] as? [[String: Any]])
        let takeover = try #require(events.first { $0["event"] as? String == "run.taken_over" }, "\(run)")
        #expect(takeover["from"] as? String == owner)
        // How soon is measured by Benchmarks/replicas.sh, not asserted here.
        let takenAt = try #require((takeover["time"] as? String).flatMap(TimelineEvent.parseTimestamp))
        #expect(takenAt > killedAt)
        #expect(events.filter { $0["event"] as? String == "change.applied" }.count == 1, "the change was repeated")
        #expect(events.filter { $0["event"] as? String == "step.started" && $0["step"] as? String == "off" }.count == 1)
        #expect(try String(contentsOfFile: dir + "/flags.json", encoding: .utf8).contains(#""defaultVariant": "off""#))
        // The CLI reads the same run from the database.
        let timeline = try await offPool { try runCLI(["timeline", id, "--json", "--database", db]) }
        #expect(timeline.stdout.contains("run.taken_over"), "\(timeline.stderr)")
    }

    @Test func theCLIIsRefusedByACooldownTheServerSet() async throws {
        let dir = try Self.folder(Self.triggerWithParams)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = try TestPostgres.freshDatabase()
        let servers = try await replicas(1, dir, db)
        defer { servers.forEach { $0.0.stop() } }
        let posted = try http("POST", "http://127.0.0.1:\(servers[0].1)/hooks/alertmanager", body: Self.payload("fp-c", svc: "shop"),
                              headers: ["Authorization": "Bearer am-token-1-0123456789"])
        #expect(posted.body.contains(#""status":"started""#), "\(posted.body)")
        let cli = try await offPool { try runCLI(["run", "rep", "--runbooks", dir + "/rb", "--database", db, "--param", "svc=shop"]) }
        #expect(cli.status == 3, "\(cli.stderr)")
        #expect(cli.stderr.contains("guard cooldown") || cli.stderr.contains("guard lock"), "\(cli.stderr)")
        // Another key is not held back.
        let other = try await offPool { try runCLI(["run", "rep", "--runbooks", dir + "/rb", "--database", db, "--param", "svc=cart"]) }
        #expect(other.status == 0, "\(other.stderr)")
    }

    @Test func replicasRideOutADatabaseRestartAndNoAlertIsLost() async throws {
        // Its own cluster: restarting the shared one would cut every other test's connections.
        let cluster = try await offPool { try TestPostgres.OwnCluster() }
        let dir = try Self.folder(Self.triggerWithParams)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = cluster.url
        let servers = try await replicas(2, dir, db)
        defer { servers.forEach { $0.0.stop() } }
        let auth = ["Authorization": "Bearer am-token-1-0123456789"]
        // As Alertmanager does: send until accepted; a failure must be a 5xx (or no answer), never an accepted loss.
        func deliver(_ i: Int) async throws {
            let body = Self.payload("fp-r\(i)", svc: "r\(i)")
            for attempt in 0..<120 {
                let port = servers[attempt % servers.count].1
                if let a = try? await offPool({ try http("POST", "http://127.0.0.1:\(port)/hooks/alertmanager", body: body, headers: auth) }) {
                    if a.status == 202 { return }
                    #expect(a.status >= 500, "a failure that Alertmanager would not retry: \(a)")
                }
                try await Task.sleep(for: .milliseconds(250))
            }
            Issue.record("alert \(i) never accepted")
        }
        try await deliver(0)
        try await offPool { try cluster.script("restart") }
        for i in 1...5 { try await deliver(i) }
        let ids = try TestPostgres.query(db, "select fingerprint from runs where outcome is distinct from 'refused' order by fingerprint")
        #expect(ids == (0...5).map { "fp-r\($0)" }, "\(ids)")
    }

    @Test func migratesAnEmptyDatabaseOnceEvenWhenProcessesRace() async throws {
        let db = try TestPostgres.freshDatabase()
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let results = try await withThrowingTaskGroup(of: Int32.self) { group in
            for _ in 0..<5 { group.addTask { try await offPool { try runCLI(["history", "--database", db, "--state-dir", dir]).status } } }
            var all: [Int32] = []
            for try await s in group { all.append(s) }
            return all
        }
        #expect(results.allSatisfy { $0 == 0 }, "\(results)")
        #expect(try TestPostgres.query(db, "select version from runbook_migrations order by version") == ["1", "2", "3", "4", "5", "6", "7", "8", "11"])
        #expect(try TestPostgres.query(db, "select count(*) from pg_indexes where indexname = 'runs_by_fingerprint'") == ["0"], "migration 7 drops the index no query reads")
        #expect(try TestPostgres.query(db, "select count(*) from information_schema.tables where table_name in ('runs','events','changes','gates','approvals')") == ["5"])
    }
}
