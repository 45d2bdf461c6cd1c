import Dispatch
import Foundation
import Logging
import PostgresNIO
import RunbookCore
import RunbookStore

/// Run history, timelines, guards, gates and leases in PostgreSQL, shared by any number of `serve`
/// replicas and the CLI (SPEC §6.8).
///
/// - Exactly one run per alert: admission (dedupe, lock, max_active, breaker, cooldown, max_runs
///   and the run's row) happens in one transaction that first takes a transaction-level advisory
///   lock, so admissions from all replicas are serialised; a unique index over open
///   (runbook, fingerprint) pairs backs it.
/// - Ownership: each open run names its owner and a lease time the owner renews every 2 s. A run
///   whose lease expired is claimed by another replica (`FOR UPDATE SKIP LOCKED`) and taken over.
/// - Timelines are rows of the `events` table, so every replica and the CLI read the same runs.
///
/// The engine's callers are Dispatch threads; each call here blocks its caller until PostgreSQL
/// answers (or 15 s pass), never a Swift concurrency thread.
public final class PostgresStore: ReplicatedRunDatabase, @unchecked Sendable {
    // `held` is guarded by `lock`; everything else is immutable after init.
    public let location: String
    /// This process, as recorded in `runs.owner`.
    public let owner: String
    let client: PostgresClient
    let logger: Logger
    private let lock = NSLock()
    private var held = Set<String>()
    private var renewal: (any DispatchSourceTimer)?
    private let runTask: Task<Void, Never>
    /// Seconds a lease lasts without renewal; renewed every `renewEvery`.
    public static let leaseSeconds = 6.0
    public static let renewEvery = 2.0
    /// Every query's longest wait.
    static let queryTimeout = 15.0
    /// Latency of the last queries, for /metrics.
    private var latencies: [Double] = []

    /// Connects to `url` (`postgres://USER[:PASSWORD]@HOST[:PORT]/DB`) and runs the migrations under
    /// an advisory lock.
    /// - Throws: `PostgresStoreError` for a bad URL, an unreachable server or a failed migration.
    public init(url: String, owner: String) throws {
        guard let c = URLComponents(string: url), ["postgres", "postgresql"].contains(c.scheme ?? ""),
              let host = c.host, !host.isEmpty, let user = c.user, !user.isEmpty else {
            throw PostgresStoreError("database URL \(Self.redacted(url)): expected postgres://USER[:PASSWORD]@HOST[:PORT]/DB")
        }
        let db = c.path.hasPrefix("/") ? String(c.path.dropFirst()) : c.path
        var config = PostgresClient.Configuration(host: host, port: c.port ?? 5432, username: user, password: c.password,
                                                  database: db.isEmpty ? user : db, tls: .disable)
        config.options.maximumConnections = 8
        config.options.connectionIdleTimeout = .seconds(60)
        var logger = Logger(label: "runbook.postgres")
        logger.logLevel = .critical
        self.logger = logger
        self.location = Self.redacted(url)
        self.owner = owner
        let client = PostgresClient(configuration: config, backgroundLogger: logger)
        self.client = client
        runTask = Task.detached { await client.run() }
        do {
            try migrate()
        } catch {
            runTask.cancel()
            throw PostgresStoreError("cannot open \(location): \(Self.describe(error))")
        }
        startRenewal()
    }

    deinit {
        renewal?.cancel()
        runTask.cancel()
    }

    static func redacted(_ url: String) -> String {
        guard var c = URLComponents(string: url) else { return "postgres://?" }
        if c.password != nil { c.password = "***" }
        return c.string ?? "postgres://?"
    }

    static func describe(_ error: any Error) -> String {
        if let p = error as? PSQLError {
            if let m = p.serverInfo?[.message] { return m }
            return "\(p.code)"
        }
        return "\(error)"
    }

    // MARK: Blocking bridge

    /// Runs `body` on the client and waits for it (at most `queryTimeout`).
    func sync<T: Sendable>(_ body: @escaping @Sendable (PostgresClient) async throws -> T) throws -> T {
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        let client = self.client
        let started = Date()
        Task.detached {
            do { box.set(.success(try await body(client))) } catch { box.set(.failure(error)) }
            done.signal()
        }
        guard done.wait(timeout: .now() + Self.queryTimeout) == .success, let result = box.get() else {
            throw PostgresStoreError("\(location): no answer within \(Int(Self.queryTimeout)) s")
        }
        record(latency: Date().timeIntervalSince(started))
        switch result {
        case .success(let v): return v
        case .failure(let e): throw PostgresStoreError("\(location): \(Self.describe(e))")
        }
    }

    func record(latency: Double) {
        lock.withLock {
            latencies.append(latency)
            if latencies.count > 1000 { latencies.removeFirst(latencies.count - 1000) }
        }
    }

    /// Median and worst of the last thousand queries, in seconds.
    public var latency: (p50: Double, max: Double)? {
        lock.withLock {
            guard !latencies.isEmpty else { return nil }
            let sorted = latencies.sorted()
            return (sorted[sorted.count / 2], sorted.last!)
        }
    }

    func execute(_ query: PostgresQuery) throws {
        _ = try sync { try await $0.query(query).drain() }
    }

    // MARK: Migrations

    static let migrationLock: Int64 = 0x7275_6e62_6f6f_6b01  // "runbook" + 1
    static let admissionLock: Int64 = 0x7275_6e62_6f6f_6b02

    /// Versioned migrations, each applied once, under a session advisory lock so that replicas
    /// starting together do not race.
    static let migrations: [(Int, [String])] = [
        (1, [
            """
            CREATE TABLE IF NOT EXISTS runs (
                id TEXT PRIMARY KEY, runbook TEXT NOT NULL, trigger TEXT NOT NULL, fingerprint TEXT, outcome TEXT,
                started TIMESTAMPTZ NOT NULL, duration_ms BIGINT, dry_run BOOLEAN NOT NULL, drill BOOLEAN NOT NULL,
                lock_key TEXT, resolved_at TIMESTAMPTZ, refusal_guard TEXT, refusal_message TEXT, refusal_until TIMESTAMPTZ,
                refused_count BIGINT, owner TEXT, lease_until TIMESTAMPTZ)
            """,
            "CREATE INDEX IF NOT EXISTS runs_started ON runs (started DESC)",
            "CREATE INDEX IF NOT EXISTS runs_open ON runs (lease_until) WHERE outcome IS NULL",
            "CREATE INDEX IF NOT EXISTS runs_by_fingerprint ON runs (runbook, fingerprint)",
            """
            CREATE UNIQUE INDEX IF NOT EXISTS runs_one_per_alert ON runs (runbook, fingerprint)
            WHERE fingerprint IS NOT NULL AND resolved_at IS NULL AND (outcome IS NULL OR outcome <> 'refused')
            """,
            "CREATE TABLE IF NOT EXISTS events (seq BIGSERIAL PRIMARY KEY, run TEXT NOT NULL, line TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS events_by_run ON events (run, seq)",
            "CREATE TABLE IF NOT EXISTS changes (run TEXT NOT NULL, at TIMESTAMPTZ NOT NULL)",
            "CREATE INDEX IF NOT EXISTS changes_at ON changes (at)",
            """
            CREATE TABLE IF NOT EXISTS gates (
                run TEXT NOT NULL, gate TEXT NOT NULL, approvals BIGINT NOT NULL, deadline TIMESTAMPTZ NOT NULL,
                started_by TEXT, resumable BOOLEAN NOT NULL, status TEXT NOT NULL, opened TIMESTAMPTZ NOT NULL,
                PRIMARY KEY (run, gate))
            """,
            """
            CREATE TABLE IF NOT EXISTS approvals (
                run TEXT NOT NULL, gate TEXT NOT NULL, name TEXT NOT NULL, approve BOOLEAN NOT NULL, at TIMESTAMPTZ NOT NULL,
                via TEXT, PRIMARY KEY (run, gate, name))
            """,
        ]),
    ]

    func migrate() throws {
        let lockKey = Self.migrationLock, log = logger
        _ = try sync { client in
            try await client.withConnection { conn in
                try await conn.query("SELECT pg_advisory_lock(\(lockKey))", logger: log).drain()
                do {
                    try await conn.query("CREATE TABLE IF NOT EXISTS runbook_migrations (version BIGINT PRIMARY KEY, applied TIMESTAMPTZ NOT NULL DEFAULT now())", logger: log).drain()
                    var applied = Set<Int>()
                    for try await v in try await conn.query("SELECT version FROM runbook_migrations", logger: log).decode(Int.self) { applied.insert(v) }
                    for (version, statements) in Self.migrations where !applied.contains(version) {
                        try await conn.query("BEGIN", logger: log).drain()
                        for s in statements { try await conn.query(PostgresQuery(unsafeSQL: s), logger: log).drain() }
                        try await conn.query("INSERT INTO runbook_migrations (version) VALUES (\(version))", logger: log).drain()
                        try await conn.query("COMMIT", logger: log).drain()
                    }
                } catch {
                    _ = try? await conn.query("ROLLBACK", logger: log).drain()
                    _ = try? await conn.query("SELECT pg_advisory_unlock(\(lockKey))", logger: log).drain()
                    throw error
                }
                try await conn.query("SELECT pg_advisory_unlock(\(lockKey))", logger: log).drain()
            }
            return 0
        }
    }

    /// The migration versions applied (for tests and `--version` output).
    public func migrationVersions() throws -> [Int] {
        try sync { try await $0.query("SELECT version FROM runbook_migrations ORDER BY version").all(Int.self) }
    }

    // MARK: Leases

    /// Renews the leases of the runs this process holds, every 2 s, on a Dispatch timer.
    func startRenewal() {
        let t = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "runbook.postgres.renew"))
        t.schedule(deadline: .now() + Self.renewEvery, repeating: Self.renewEvery, leeway: .milliseconds(100))
        t.setEventHandler { [weak self] in self?.renew() }
        t.resume()
        renewal = t
    }

    /// Runs this process held whose lease another process took (it was cut off from the database
    /// for longer than a lease): the launcher must stop driving them.
    public var onLost: (@Sendable ([String]) -> Void)? {
        get { lock.withLock { lostHandler } }
        set { lock.withLock { lostHandler = newValue } }
    }
    private var lostHandler: (@Sendable ([String]) -> Void)?

    func renew() {
        let ids = lock.withLock { Array(held) }
        guard !ids.isEmpty else { return }
        let owner = self.owner, secs = Self.leaseSeconds
        guard let kept = try? sync({ client in
            try await client.query("""
                UPDATE runs SET lease_until = now() + make_interval(secs => \(secs))
                WHERE id = ANY(\(ids)) AND owner = \(owner) AND outcome IS NULL RETURNING id
                """).all(String.self)
        }) else { return }
        let open = Set(kept)
        // Finished runs drop out quietly; runs another owner took are lost.
        let finishedIDs: [String] = (try? sync { client -> [String] in
            try await client.query("SELECT id FROM runs WHERE id = ANY(\(ids)) AND outcome IS NOT NULL").all(String.self)
        }) ?? []
        let finished = Set(finishedIDs)
        let lost = ids.filter { !open.contains($0) && !finished.contains($0) }
        lock.withLock { held.subtract(lost); held.subtract(finished) }
        if !lost.isEmpty, let handler = onLost { handler(lost) }
    }

    /// A run this process owns: renewed until released; released early (a paused run left at
    /// shutdown) it expires at once, so another replica takes it.
    final class Lease: RunHold, @unchecked Sendable {
        let store: PostgresStore
        let runID: String
        init(store: PostgresStore, runID: String) {
            self.store = store
            self.runID = runID
            store.lock.withLock { _ = store.held.insert(runID) }
        }
        func release() {
            let removed = store.lock.withLock { store.held.remove(runID) != nil }
            guard removed else { return }
            let (id, owner) = (runID, store.owner)
            try? store.execute("UPDATE runs SET lease_until = now() WHERE id = \(id) AND owner = \(owner) AND outcome IS NULL")
        }
    }

    /// Claims open runs whose lease expired (their owner died), at most `limit`, skipping rows another
    /// replica is claiming and runs this process owns (a late renewal of its own is not a death).
    /// Returns each run with its previous owner; the caller takes them over.
    public func claimExpiredRuns(limit: Int = 20) throws -> [(runID: String, previousOwner: String?, lease: any RunHold)] {
        let owner = self.owner, secs = Self.leaseSeconds, log = logger
        let rows = try sync { client in
            try await client.withTransaction(logger: log) { conn in
                let claimed = try await conn.query("""
                    SELECT id, owner FROM runs WHERE outcome IS NULL AND NOT dry_run AND NOT drill AND lease_until < now()
                    AND owner IS DISTINCT FROM \(owner)
                    ORDER BY started LIMIT \(limit) FOR UPDATE SKIP LOCKED
                    """, logger: log).all((String, String?).self)
                for (id, _) in claimed {
                    try await conn.query("UPDATE runs SET owner = \(owner), lease_until = now() + make_interval(secs => \(secs)) WHERE id = \(id)",
                                         logger: log).collect()
                }
                return claimed.map { ($0.0, $0.1) }
            }
        }
        return rows.map { ($0.0, $0.1, Lease(store: self, runID: $0.0)) }
    }

    // MARK: RunDatabase

    public func admitAll(_ requests: [RunStore.AdmissionRequest], now: Date) throws -> [RunStore.AdmissionDecision] {
        let owner = self.owner, secs = Self.leaseSeconds, lockKey = Self.admissionLock, log = logger
        let decided: [Admitted] = try sync { client in
            try await client.withTransaction(logger: log) { conn in
                // One admission at a time across every replica and the CLI: each sees the ones before it.
                try await conn.query("SELECT pg_advisory_xact_lock(\(lockKey))", logger: log).drain()
                var out: [Admitted] = []
                for r in requests { out.append(try await Self.decide(conn, r, now: now, owner: owner, leaseSeconds: secs)) }
                return out
            }
        }
        return decided.map { d in
            switch d {
            case .duplicate(let id): return .duplicate(runID: id)
            case .refused(let r, let id): return .refused(r, runID: id)
            case .admitted(let id, let overridden): return .admitted(lease: Lease(store: self, runID: id), lock: nil, overridden: overridden)
            }
        }
    }

    enum Admitted: Sendable {
        case admitted(String, GuardCheck.Refusal?)
        case refused(GuardCheck.Refusal, String)
        case duplicate(String)
    }

    static func decide(_ conn: PostgresConnection, _ request: RunStore.AdmissionRequest, now: Date, owner: String, leaseSeconds: Double) async throws -> Admitted {
        let log = Logger(label: "runbook.postgres.admit")
        let runbook = request.runbook
        var record = request.record
        let name = runbook.name
        if let fp = record.fingerprint {
            let existing = try await conn.query("""
                SELECT id FROM runs WHERE runbook = \(name) AND fingerprint = \(fp) AND resolved_at IS NULL
                AND (outcome IS NULL OR outcome <> 'refused') ORDER BY started DESC LIMIT 1
                """, logger: log).all(String.self)
            if let id = existing.first { return .duplicate(id) }
        }
        var refusal = request.refusal
        if refusal == nil, request.checkGuards {
            if let key = record.lockKey {
                let holder = try await conn.query("""
                    SELECT id FROM runs WHERE runbook = \(name) AND lock_key = \(key) AND outcome IS NULL AND NOT dry_run AND NOT drill
                    ORDER BY started DESC LIMIT 1
                    """, logger: log).all(String.self).first
                if let holder {
                    refusal = GuardCheck.Refusal(guardName: "lock", until: nil,
                        message: "another run of \(name) (\(holder)) holds lock '\(key)'; a lock is never overridden")
                }
            }
            if refusal == nil, let breaker = request.maxChanges {
                let since = now.addingTimeInterval(-breaker.per)
                let recent = try await conn.query("SELECT at FROM changes WHERE at >= \(since) ORDER BY at", logger: log).all(Date.self)
                if recent.count >= breaker.count, let oldest = recent.first {
                    let until = oldest.addingTimeInterval(breaker.per)
                    refusal = GuardCheck.Refusal(guardName: "breaker", until: until,
                        message: "change breaker: \(recent.count) changes in the last \(Quantity.formatDuration(breaker.per)) (cap \(breaker.count)); next run allowed at \(TimelineEvent.timestamp(until))")
                }
            }
            if refusal == nil, let cap = runbook.guards.maxActive {
                let active = try await conn.query("""
                    SELECT count(*) FROM runs WHERE runbook = \(name) AND outcome IS NULL AND NOT dry_run AND NOT drill
                    """, logger: log).all(Int.self).first ?? 0
                if active >= cap {
                    refusal = GuardCheck.Refusal(guardName: "max_active", until: nil,
                        message: "max_active \(cap): \(active) run\(active == 1 ? " is" : "s are") already active for \(name); wait for one to end")
                }
            }
            if refusal == nil {
                let window = max(runbook.guards.cooldown ?? 0, runbook.guards.maxRuns?.per ?? 0)
                if window > 0 {
                    let since = now.addingTimeInterval(-window)
                    let earlier = try await conn.query("""
                        SELECT started FROM runs WHERE runbook = \(name) AND lock_key IS NOT DISTINCT FROM \(record.lockKey)
                        AND NOT dry_run AND NOT drill AND (outcome IS NULL OR outcome <> 'refused') AND started >= \(since) ORDER BY started
                        """, logger: log).all(Date.self)
                    refusal = GuardCheck.evaluate(runbook.guards, now: now, starts: earlier)
                }
            }
        }
        if refusal == nil, request.checkGuards, let f = request.freeze { refusal = f }
        var overridden: GuardCheck.Refusal?
        if let r = refusal, !["lock", "max_active", "params", "auto", "breaker"].contains(r.guardName), request.force {
            overridden = r
            refusal = nil
        }
        if let r = refusal {
            if let fp = record.fingerprint, let existing = try await conn.query("""
                SELECT id FROM runs WHERE runbook = \(name) AND fingerprint = \(fp) AND outcome = 'refused' AND refusal_guard = \(r.guardName)
                AND resolved_at IS NULL ORDER BY started DESC LIMIT 1
                """, logger: log).all(String.self).first {
                try await conn.query("""
                    UPDATE runs SET refused_count = COALESCE(refused_count, 1) + 1, refusal_message = \(r.message), refusal_until = \(r.until)
                    WHERE id = \(existing)
                    """, logger: log).drain()
                return .refused(r, existing)
            }
            record.outcome = RunOutcome.refused.rawValue
            try await conn.query("""
                INSERT INTO runs (id, runbook, trigger, fingerprint, outcome, started, duration_ms, dry_run, drill, lock_key,
                    refusal_guard, refusal_message, refusal_until, refused_count)
                VALUES (\(record.id), \(name), \(record.trigger), \(record.fingerprint), 'refused', \(record.started), 0, \(record.dryRun),
                    \(record.drill), \(record.lockKey), \(r.guardName), \(r.message), \(r.until), 1)
                """, logger: log).drain()
            return .refused(r, record.id)
        }
        try await conn.query("""
            INSERT INTO runs (id, runbook, trigger, fingerprint, started, dry_run, drill, lock_key, owner, lease_until)
            VALUES (\(record.id), \(name), \(record.trigger), \(record.fingerprint), \(record.started), \(record.dryRun), \(record.drill),
                \(record.lockKey), \(owner), now() + make_interval(secs => \(leaseSeconds)))
            """, logger: log).drain()
        return .admitted(record.id, overridden)
    }

    /// Inserts a row as it is (drills record themselves this way).
    public func insert(_ record: RunRecord) throws {
        try execute("""
            INSERT INTO runs (id, runbook, trigger, fingerprint, outcome, started, duration_ms, dry_run, drill, lock_key)
            VALUES (\(record.id), \(record.runbook), \(record.trigger), \(record.fingerprint), \(record.outcome), \(record.started),
                \(record.durationMs), \(record.dryRun), \(record.drill), \(record.lockKey))
            """)
    }

    /// Appends events to the `events` table, one row an event.
    final class Timeline: DurableTimeline, @unchecked Sendable {
        let store: PostgresStore
        let runID: String
        let health: RecordHealth?
        init(store: PostgresStore, runID: String, health: RecordHealth?) {
            self.store = store
            self.runID = runID
            self.health = health
        }
        func write(_ event: TimelineEvent) throws {
            let (id, line) = (runID, event.jsonLine())
            try store.execute("INSERT INTO events (run, line) VALUES (\(id), \(line))")
        }
        func record(_ event: TimelineEvent) {
            do { try write(event) } catch { health?.report("\(error)") }
        }
    }

    public func timelineSink(runID: String, health: RecordHealth?) throws -> any DurableTimeline {
        Timeline(store: self, runID: runID, health: health)
    }

    public func timelineReport(_ runID: String) -> (events: [TimelineEvent], damagedLines: [Int]) {
        let lines = (try? sync { try await $0.query("SELECT line FROM events WHERE run = \(runID) ORDER BY seq").all(String.self) }) ?? []
        var events: [TimelineEvent] = []
        var damaged: [Int] = []
        for (i, l) in lines.enumerated() {
            if let e = TimelineEvent.parse(jsonLine: l) { events.append(e) } else { damaged.append(i + 1) }
        }
        if events.isEmpty, let r = try? run(runID), r.outcome == RunOutcome.refused.rawValue, let g = r.refusalGuard {
            var start = TimelineEvent(time: r.started, run: r.id, event: "run.started")
            start.runbook = r.runbook
            start.trigger = r.trigger
            start.dryRun = r.dryRun
            var refused = RunStore.refusalEvents(start: start, refusal: GuardCheck.Refusal(guardName: g, until: r.refusalUntil, message: r.refusalMessage ?? ""))
            if let n = r.refusedCount, n > 1 { refused[2].message = (refused[2].message ?? "") + " (\(n) times)" }
            return (refused, [])
        }
        return (events, damaged)
    }

    public func finish(runID: String, outcome: RunOutcome, durationMs: Int) throws {
        let o = outcome.rawValue
        try execute("UPDATE runs SET outcome = \(o), duration_ms = \(durationMs) WHERE id = \(runID)")
        lock.withLock { _ = held.remove(runID) }
    }

    public func recordChange(runID: String, at: Date) throws {
        try execute("INSERT INTO changes (run, at) VALUES (\(runID), \(at))")
    }

    public func changesApplied(since: Date) throws -> Int {
        try sync { try await $0.query("SELECT count(*) FROM changes WHERE at >= \(since)").all(Int.self).first ?? 0 }
    }

    static let runColumns = """
        id, runbook, trigger, fingerprint, outcome, started, duration_ms, dry_run, drill, lock_key, refusal_guard, refusal_message, refusal_until, refused_count
        """

    static func records(_ rows: PostgresRowSequence) async throws -> [RunRecord] {
        var out: [RunRecord] = []
        for try await row in rows {
            let (id, runbook, trigger, fp, outcome, started, duration, dry, drill, key, g, m, until, count) =
                try row.decode((String, String, String, String?, String?, Date, Int?, Bool, Bool, String?, String?, String?, Date?, Int?).self)
            var r = RunRecord(id: id, runbook: runbook, trigger: trigger, fingerprint: fp, started: started, dryRun: dry, drill: drill)
            r.outcome = outcome
            r.durationMs = duration
            r.lockKey = key
            r.refusalGuard = g
            r.refusalMessage = m
            r.refusalUntil = until
            r.refusedCount = count
            out.append(r)
        }
        return out
    }

    public func runs(limit: Int) throws -> [RunRecord] {
        try sync { try await Self.records(try await $0.query("SELECT \(unescaped: Self.runColumns) FROM runs ORDER BY started DESC, id DESC LIMIT \(limit)")) }
    }

    public func run(_ id: String) throws -> RunRecord? {
        try sync { try await Self.records(try await $0.query("SELECT \(unescaped: Self.runColumns) FROM runs WHERE id = \(id)")).first }
    }

    /// The run that owns `runID` now, and its lease.
    public func owner(of runID: String) throws -> (owner: String?, leaseUntil: Date?) {
        try sync { client in
            let rows = try await client.query("SELECT owner, lease_until FROM runs WHERE id = \(runID)").all((String?, Date?).self)
            return rows.first.map { ($0.0, $0.1) } ?? (nil, nil)
        }
    }

    public func resolveRunID(_ text: String) throws -> String {
        let given = text.trimmingCharacters(in: .whitespaces)
        let location = self.location
        if given == "last" {
            guard let id = try sync({ try await $0.query("SELECT id FROM runs ORDER BY started DESC, id DESC LIMIT 1").all(String.self).first }) else {
                throw RunIDError(given: text, matches: [], directory: location)
            }
            return id
        }
        guard !given.isEmpty else { throw RunIDError(given: text, matches: [], directory: location) }
        let pattern = given.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_") + "%"
        let suffix = "%-" + pattern
        let ids = try sync { try await $0.query("SELECT id FROM runs WHERE id = \(given) OR id LIKE \(pattern) OR id LIKE \(suffix) LIMIT 20").all(String.self) }
        if ids.contains(given) { return given }
        let unique = Array(Set(ids.filter { id in id.hasPrefix(given) || (id.split(separator: "-").last.map { $0.hasPrefix(given) } ?? false) })).sorted()
        guard unique.count == 1 else { throw RunIDError(given: text, matches: unique, directory: location) }
        return unique[0]
    }

    public func resolve(fingerprint: String, at: Date) throws -> [String] {
        try sync { try await $0.query("UPDATE runs SET resolved_at = \(at) WHERE fingerprint = \(fingerprint) AND resolved_at IS NULL RETURNING id").all(String.self) }
    }

    /// Runs whose lease expired a minute ago are ones no replica took over (none is running): they
    /// are ended `interrupted`, as on one machine. Replicas take over runs long before that.
    public func finalizeDeadRuns(now: Date) throws -> [String] {
        let stale = now.addingTimeInterval(-60)
        let open = try sync { try await Self.records(try await $0.query("""
            SELECT \(unescaped: Self.runColumns) FROM runs WHERE outcome IS NULL AND lease_until < \(stale)
            AND NOT EXISTS (SELECT 1 FROM gates g WHERE g.run = runs.id AND g.status = 'open' AND g.resumable AND g.deadline > \(now))
            """)) }
        var done: [String] = []
        for r in open {
            try finalize(runID: r.id, started: r.started, message: RunStore.cutOffMessage(timeline(r.id)) + "; no replica took it over", now: now)
            done.append(r.id)
        }
        return done
    }

    public func finalize(runID: String, started: Date, message: String, now: Date) throws {
        var e = TimelineEvent(time: now, run: runID, event: "run.finished")
        e.outcome = RunOutcome.interrupted.rawValue
        e.durationMs = Int(now.timeIntervalSince(started) * 1000)
        let left = RunbookChangesLeft.texts(timeline(runID))
        e.message = message.contains("left in place") || left.isEmpty ? message : message + "; left in place: " + left.joined(separator: "; ")
        let line = e.jsonLine(), ms = e.durationMs ?? 0, log = logger
        _ = try sync { client in
            try await client.withTransaction(logger: log) { conn in
                let changed = try await conn.query("UPDATE runs SET outcome = 'interrupted', duration_ms = \(ms) WHERE id = \(runID) AND outcome IS NULL RETURNING id",
                                                   logger: log).all(String.self)
                if !changed.isEmpty {
                    try await conn.query("INSERT INTO events (run, line) VALUES (\(runID), \(line))", logger: log).drain()
                    try await conn.query("UPDATE gates SET status = 'closed' WHERE run = \(runID) AND status = 'open'", logger: log).drain()
                }
                return changed.count
            }
        }
    }

    // MARK: Gates

    public func openGate(runID: String, gate: GateRequest, startedBy: String?, resumable: Bool, now: Date) throws {
        let (id, n, deadline) = (gate.id, gate.gate.approvals, gate.deadline)
        try execute("""
            INSERT INTO gates (run, gate, approvals, deadline, started_by, resumable, status, opened)
            VALUES (\(runID), \(id), \(n), \(deadline), \(startedBy), \(resumable), 'open', \(now))
            ON CONFLICT (run, gate) DO UPDATE SET status = 'open', resumable = excluded.resumable
            """)
    }

    public func closeGate(runID: String, gate: String, status: String) throws {
        try execute("UPDATE gates SET status = \(status) WHERE run = \(runID) AND gate = \(gate)")
    }

    public func answers(runID: String, gate: String) throws -> [ApprovalRecord] {
        try sync { client in
            try await client.query("SELECT name, approve, at FROM approvals WHERE run = \(runID) AND gate = \(gate) ORDER BY at, name")
                .all((String, Bool, Date).self).map { ApprovalRecord(name: $0.0, approve: $0.1, at: $0.2) }
        }
    }

    public func openGates(runID: String) throws -> [String] {
        try sync { try await $0.query("SELECT gate FROM gates WHERE run = \(runID) AND status = 'open' ORDER BY gate").all(String.self) }
    }

    public func runsAwaitingApproval() throws -> Set<String> {
        Set(try sync { try await $0.query("SELECT DISTINCT run FROM gates WHERE status = 'open'").all(String.self) })
    }

    public func answer(runID: String, approve: Bool, by name: String, via: String, now: Date) throws -> ApprovalReceipt {
        let log = logger
        let result: Result<[ApprovalReceiptGate], ApprovalError> = try sync { client in
            try await client.withTransaction(logger: log) { conn in
                let rows = try await conn.query("SELECT gate, approvals, started_by FROM gates WHERE run = \(runID) AND status = 'open' ORDER BY gate FOR UPDATE",
                                                logger: log).all((String, Int, String?).self)
                guard !rows.isEmpty else {
                    let outcome = try await conn.query("SELECT outcome FROM runs WHERE id = \(runID)", logger: log).all(String?.self).first ?? nil
                    return .failure(ApprovalError("run \(runID) is not waiting for approval" + (outcome.map { " (it ended \($0))" } ?? "")))
                }
                var gates: [ApprovalReceiptGate] = []
                for (gate, needed, starter) in rows {
                    if starter == name { return .failure(ApprovalError("\(name) started run \(runID) and cannot answer its own gate: another person must")) }
                    if let earlier = try await conn.query("SELECT approve FROM approvals WHERE run = \(runID) AND gate = \(gate) AND name = \(name)",
                                                          logger: log).all(Bool.self).first {
                        return .failure(ApprovalError("\(name) already \(earlier ? "approved" : "denied") gate \(gate) of run \(runID): one person counts once"))
                    }
                    try await conn.query("INSERT INTO approvals (run, gate, name, approve, at, via) VALUES (\(runID), \(gate), \(name), \(approve), \(now), \(via))",
                                         logger: log).drain()
                    let count = try await conn.query("SELECT count(*) FROM approvals WHERE run = \(runID) AND gate = \(gate) AND approve",
                                                     logger: log).all(Int.self).first ?? 0
                    gates.append(ApprovalReceiptGate(gate: gate, approvals: count, needed: needed))
                }
                return .success(gates)
            }
        }
        switch result {
        case .success(let gates): return ApprovalReceipt(runID: runID, gates: gates.map { ($0.gate, $0.approvals, $0.needed) })
        case .failure(let e): throw e
        }
    }
}

struct ApprovalReceiptGate: Sendable {
    var gate: String
    var approvals: Int
    var needed: Int
}

/// A PostgreSQL store that cannot do what was asked: the URL, the server, a query.
public struct PostgresStoreError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

/// Carries a result from a task to the thread waiting for it.
final class ResultBox<T: Sendable>: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var value: Result<T, any Error>?
    func set(_ v: Result<T, any Error>) { lock.withLock { value = v } }
    func get() -> Result<T, any Error>? { lock.withLock { value } }
}

extension PostgresRowSequence {
    /// Every row, decoded.
    func all<each Column: PostgresDecodable>(_ type: (repeat each Column).Type) async throws -> [(repeat each Column)] {
        var out: [(repeat each Column)] = []
        for try await row in self { out.append(try row.decode(type)) }
        return out
    }

    /// Reads and drops every row; the statement is done when this returns.
    @discardableResult
    func drain() async throws -> Int {
        var n = 0
        for try await _ in self { n += 1 }
        return n
    }
}
