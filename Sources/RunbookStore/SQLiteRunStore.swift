import Foundation
import GRDB
import RunbookCore
import RunbookStoreContract

/// Run history in SQLite (WAL mode, so runs from two terminals do not corrupt or block each other),
/// and timelines as JSON Lines files beside it.
public final class SQLiteRunStore: RunDatabase, Sendable {
    public let directory: String
    let pool: DatabasePool

    /// Opens (and creates) the store in `directory`.
    /// - Throws: when the folder cannot be created or the database cannot be opened.
    public init(directory: String) throws {
        self.directory = directory
        try StoreError.makeFolder(directory + "/runs")
        var config = Configuration()
        config.busyMode = .timeout(10)
        // Opening (WAL mode) and migrating happen under a file lock: ten processes opening a new
        // state folder at once must not race to create the same tables.
        let lockPath = directory + "/migrate.lock"
        let lockFD = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lockFD >= 0 else { throw StoreError(path: lockPath, operation: "create", errno: errno) }
        defer { Glibc.close(lockFD) }
        while flock(lockFD, LOCK_EX) != 0 {
            guard errno == EINTR else { throw StoreError(path: lockPath, operation: "lock", errno: errno) }
        }
        do {
            pool = try DatabasePool(path: directory + "/runbook.sqlite", configuration: config)
        } catch {
            throw StoreError(path: directory + "/runbook.sqlite", error)
        }
        do { try Self.migrate(pool) } catch { throw StoreError(path: directory + "/runbook.sqlite", error) }
    }

    /// Where it is, for messages: its folder.
    public var location: String { directory }

    /// A read, on the caller's thread (never a task's: see `StoreThreads`).
    func read<T>(_ body: (Database) throws -> T) throws -> T {
        StoreThreads.assertNotInTask("SQLite read in \(directory)")
        return try pool.read(body)
    }

    /// A write transaction, on the caller's thread (never a task's: see `StoreThreads`).
    func write<T>(_ body: (Database) throws -> T) throws -> T {
        StoreThreads.assertNotInTask("SQLite write in \(directory)")
        return try pool.write(body)
    }

    static func migrate(_ pool: DatabasePool) throws {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "runs", ifNotExists: true) { t in
                t.primaryKey("id", .text)
                t.column("runbook", .text).notNull().indexed()
                t.column("trigger", .text).notNull()
                t.column("fingerprint", .text)
                t.column("outcome", .text)
                t.column("started", .datetime).notNull().indexed()
                t.column("duration_ms", .integer)
                t.column("dry_run", .boolean).notNull()
                t.column("drill", .boolean).notNull()
            }
        }
        migrator.registerMigration("v2-lock-key") { db in
            try db.alter(table: "runs") { t in t.add(column: "lock_key", .text) }
        }
        migrator.registerMigration("v3-alert-resolution") { db in
            try db.alter(table: "runs") { t in t.add(column: "resolved_at", .datetime) }
            try db.create(index: "runs_by_fingerprint", on: "runs", columns: ["runbook", "fingerprint"], ifNotExists: true)
        }
        migrator.registerMigration("v4-counted-refusals") { db in
            try db.alter(table: "runs") { t in
                t.add(column: "refusal_guard", .text)
                t.add(column: "refusal_message", .text)
                t.add(column: "refusal_until", .datetime)
                t.add(column: "refused_count", .integer)
            }
            // Open runs only (a partial index): finding them stays cheap however many rows history holds,
            // and lookups by fingerprint keep using runs_by_fingerprint.
            try db.execute(sql: "CREATE INDEX IF NOT EXISTS runs_open ON runs(started) WHERE outcome IS NULL")
        }
        migrator.registerMigration("v5-changes") { db in
            // Every change applied, by any run: the change breaker counts them.
            try db.create(table: "changes", ifNotExists: true) { t in
                t.column("run", .text).notNull()
                t.column("at", .datetime).notNull().indexed()
            }
        }
        migrator.registerMigration("v6-approvals") { db in
            // Open and closed approval gates, and every answer given at one (SPEC §6.9).
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS gates (
                    run TEXT NOT NULL, gate TEXT NOT NULL, approvals INTEGER NOT NULL, deadline DATETIME NOT NULL,
                    started_by TEXT, resumable BOOLEAN NOT NULL, status TEXT NOT NULL, opened DATETIME NOT NULL,
                    PRIMARY KEY (run, gate))
                """)
            try db.execute(sql: "CREATE INDEX IF NOT EXISTS gates_open ON gates(run) WHERE status = 'open'")
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS approvals (
                    run TEXT NOT NULL, gate TEXT NOT NULL, name TEXT NOT NULL, approve BOOLEAN NOT NULL, at DATETIME NOT NULL, via TEXT,
                    PRIMARY KEY (run, gate, name))
                """)
        }
        migrator.registerMigration("v7-alert-index") { db in
            // Admission looks up a whole payload's fingerprints at once, across runbooks.
            try db.execute(sql: "CREATE INDEX IF NOT EXISTS runs_unresolved_fingerprint ON runs(fingerprint) WHERE resolved_at IS NULL")
            try db.execute(sql: "CREATE INDEX IF NOT EXISTS runs_open_lock ON runs(lock_key) WHERE outcome IS NULL")
        }
        migrator.registerMigration("v8-decided-gates") { db in
            // A gate is decided once, by the first decisive event, and the decision is kept
            // (SPEC §6.9); a change reserves its place in the breaker's window before it is applied.
            try db.execute(sql: "ALTER TABLE gates ADD COLUMN decision TEXT")
            try db.execute(sql: "ALTER TABLE gates ADD COLUMN decided_by TEXT")
            try db.execute(sql: "ALTER TABLE gates ADD COLUMN decided_at DATETIME")
            try db.execute(sql: "ALTER TABLE changes ADD COLUMN state TEXT")
            try db.execute(sql: "CREATE INDEX IF NOT EXISTS changes_reserved ON changes(run) WHERE state = 'reserved'")
        }
        registerFencingMigration(&migrator)
        migrator.registerMigration("v10-run-list") { db in
            // The console's run list: newest first within one runbook or one outcome.
            try db.execute(sql: "CREATE INDEX IF NOT EXISTS runs_by_runbook_started ON runs(runbook, started)")
            try db.execute(sql: "CREATE INDEX IF NOT EXISTS runs_by_outcome_started ON runs(outcome, started)")
        }
        migrator.registerMigration("v11-admission-starts") { db in
            // Cooldown and max_runs read the starts of runs that were not refused: without this, each
            // admission read every refusal in the window too (a storm leaves thousands).
            try db.execute(sql: "CREATE INDEX IF NOT EXISTS runs_live_starts ON runs(runbook, started) WHERE outcome IS NULL OR outcome != 'refused'")
            // Every query by runbook has a longer index starting with it (runs_by_fingerprint,
            // runs_by_runbook_started): one index fewer to write for each row a storm adds.
            try db.execute(sql: "DROP INDEX IF EXISTS runs_on_runbook")
        }
        try migrator.migrate(pool)
    }

    /// Marks the runs of an alert resolved; returns their ids.
    public func resolve(fingerprint: String, at: Date) throws -> [String] {
        try write { db in
            let ids = try String.fetchAll(db, sql: "SELECT id FROM runs WHERE fingerprint = ? AND resolved_at IS NULL", arguments: [fingerprint])
            try db.execute(sql: "UPDATE runs SET resolved_at = ? WHERE fingerprint = ? AND resolved_at IS NULL", arguments: [at, fingerprint])
            return ids
        }
    }

    /// A run named on the command line: `last` (the newest run), a whole id, or a unique prefix of an
    /// id or of its final hexadecimal part (SPEC §6.6).
    /// - Throws: `RunIDError` when nothing or more than one run matches.
    public func resolveRunID(_ text: String) throws -> String {
        let given = text.trimmingCharacters(in: .whitespaces)
        return try read { db in
            if given == "last" {
                guard let id = try String.fetchOne(db, sql: "SELECT id FROM runs ORDER BY started DESC, id DESC LIMIT 1") else {
                    throw RunIDError(given: text, matches: [], directory: directory)
                }
                return id
            }
            if try String.fetchOne(db, sql: "SELECT id FROM runs WHERE id = ?", arguments: [given]) != nil { return given }
            guard !given.isEmpty else { throw RunIDError(given: text, matches: [], directory: directory) }
            return try RunIDError.uniqueRun(given, text: text, among: String.fetchAll(db, sql: "SELECT id FROM runs"), location: directory)
        }
    }

    /// Where a run's liveness lease lives: a file its owner holds an exclusive `flock` on.
    public func leasePath(_ runID: String) -> String { "\(directory)/runs/\(runID).lease" }

    /// Where a run's timeline lives.
    public func timelinePath(_ runID: String) -> String { "\(directory)/runs/\(runID).jsonl" }

    /// The timeline file a run appends to.
    public func timelineSink(runID: String, health: RecordHealth?) throws -> any DurableTimeline {
        try TimelineFileSink(path: timelinePath(runID), health: health)
    }

    public func insert(_ record: RunRecord) throws {
        try write { db in try record.insert(db) }
    }

    /// Records that a run applied a change: one of its reserved places becomes it (keeping the time
    /// it was reserved, so the window never shrinks), else a change is added.
    public func recordChange(runID: String, at: Date) throws {
        try write { db in
            try db.execute(sql: """
                UPDATE changes SET state = NULL WHERE rowid = (SELECT rowid FROM changes WHERE run = ? AND state = 'reserved' ORDER BY rowid LIMIT 1)
                """, arguments: [runID])
            if db.changesCount == 0 {
                try db.execute(sql: "INSERT INTO changes (run, at) VALUES (?, ?)", arguments: [runID, at])
            }
        }
    }

    /// Changes applied by any run since `since`.
    public func changesApplied(since: Date) throws -> Int {
        try read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM changes WHERE at >= ?", arguments: [since]) ?? 0 }
    }

    public func finish(runID: String, outcome: RunOutcome, durationMs: Int) throws {
        try write { db in
            try db.execute(sql: "UPDATE runs SET outcome = ?, duration_ms = ? WHERE id = ?", arguments: [outcome.rawValue, durationMs, runID])
        }
    }

    /// Runs, newest first.
    public func runs(limit: Int) throws -> [RunRecord] {
        try read { db in try RunRecord.order(Column("started").desc, Column("id").desc).limit(limit).fetchAll(db) }
    }

    public func runs(limit: Int, kinds: Set<RunKind>) throws -> [RunRecord] {
        guard let condition = RunKind.sqlCondition(kinds) else { return try runs(limit: limit) }
        return try read { db in
            try RunRecord.filter(sql: condition).order(Column("started").desc, Column("id").desc).limit(limit).fetchAll(db)
        }
    }

    public func run(_ id: String) throws -> RunRecord? {
        try read { db in try RunRecord.fetchOne(db, key: id) }
    }

    /// The events of a run's timeline file. Damaged lines (bad bytes, cut-off JSON) are skipped.
    public func timeline(_ runID: String) -> [TimelineEvent] { timelineReport(runID).events }

    /// A run's timeline, read line by line and lossily: a damaged line is skipped and its number
    /// reported, and the rest of the run is still there. A refused run has no file: its timeline
    /// is told from its row.
    public func timelineReport(_ runID: String) -> (events: [TimelineEvent], damagedLines: [Int]) {
        guard let data = FileManager.default.contents(atPath: timelinePath(runID)) else {
            return ((try? run(runID)).flatMap { $0.flatMap(RunEndings.refusedTimeline) } ?? [], [])
        }
        var events: [TimelineEvent] = []
        var damaged: [Int] = []
        var lineNumber = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.isEmpty { continue }
            let text = String(decoding: line, as: UTF8.self)
            if let e = TimelineEvent.parse(jsonLine: text) { events.append(e) } else { damaged.append(lineNumber) }
        }
        return (events, damaged)
    }
}
