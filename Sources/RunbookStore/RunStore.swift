import Foundation
import GRDB
import RunbookCore

/// One run in the history.
public struct RunRecord: Sendable, Codable, FetchableRecord, PersistableRecord {
    public static let databaseTableName = "runs"
    public var id: String
    public var runbook: String
    public var trigger: String
    public var fingerprint: String?
    public var outcome: String?
    public var started: Date
    public var durationMs: Int?
    public var dryRun: Bool
    public var drill: Bool
    /// The rendered `guards.lock` key, if the runbook has one.
    public var lockKey: String?

    enum CodingKeys: String, CodingKey {
        case id, runbook, trigger, fingerprint, outcome, started
        case durationMs = "duration_ms", dryRun = "dry_run", drill, lockKey = "lock_key"
    }

    public init(id: String, runbook: String, trigger: String, fingerprint: String? = nil, started: Date, dryRun: Bool, drill: Bool) {
        self.id = id
        self.runbook = runbook
        self.trigger = trigger
        self.fingerprint = fingerprint
        self.started = started
        self.dryRun = dryRun
        self.drill = drill
    }
}

/// Run history in SQLite (WAL mode, so runs from two terminals do not corrupt or block each other),
/// and timelines as JSON Lines files beside it.
public final class RunStore: Sendable {
    public let directory: String
    let pool: DatabasePool

    /// Opens (and creates) the store in `directory`.
    /// - Throws: when the folder cannot be created or the database cannot be opened.
    public init(directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory + "/runs", withIntermediateDirectories: true)
        var config = Configuration()
        config.busyMode = .timeout(10)
        pool = try DatabasePool(path: directory + "/runbook.sqlite", configuration: config)
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
        try migrator.migrate(pool)
    }

    /// The run an alert already started and that is not resolved yet, if any (refused attempts do not count).
    public func unresolvedRun(runbook: String, fingerprint: String) throws -> String? {
        try pool.read { db in
            try String.fetchOne(db, sql: """
                SELECT id FROM runs WHERE runbook = ? AND fingerprint = ? AND resolved_at IS NULL
                AND (outcome IS NULL OR outcome != 'refused') ORDER BY started DESC LIMIT 1
                """, arguments: [runbook, fingerprint])
        }
    }

    /// Marks the runs of an alert resolved; returns their ids.
    public func resolve(fingerprint: String, at: Date) throws -> [String] {
        try pool.write { db in
            let ids = try String.fetchAll(db, sql: "SELECT id FROM runs WHERE fingerprint = ? AND resolved_at IS NULL", arguments: [fingerprint])
            try db.execute(sql: "UPDATE runs SET resolved_at = ? WHERE fingerprint = ? AND resolved_at IS NULL", arguments: [at, fingerprint])
            return ids
        }
    }

    /// Runs that were cut off (no outcome) by a crash or kill: marked `interrupted`, with a closing event
    /// naming the last completed step. Their changes are not repeated. Returns their ids.
    @discardableResult
    public func markCutOffRunsInterrupted(now: Date = Date()) throws -> [String] {
        let cut = try pool.read { db in try RunRecord.filter(Column("outcome") == nil).fetchAll(db) }
        for r in cut {
            let events = try timeline(r.id)
            let last = events.last { $0.event == "step.finished" }
            var e = TimelineEvent(time: now, run: r.id, event: "run.finished")
            e.outcome = RunOutcome.interrupted.rawValue
            e.durationMs = Int(now.timeIntervalSince(r.started) * 1000)
            e.message = "cut off before it finished (crash or kill); last completed step: \(last?.step ?? "none")\(last?.status.map { " (\($0))" } ?? ""); its changes are not repeated"
            try TimelineFileSink(path: timelinePath(r.id)).record(e)
            try finish(runID: r.id, outcome: .interrupted, durationMs: e.durationMs ?? 0)
        }
        return cut.map(\.id)
    }

    /// Start times of the counted runs (not refused, not dry runs, not drills) of a runbook and lock key since `since`.
    public func starts(runbook: String, lockKey: String?, since: Date) throws -> [Date] {
        try pool.read { db in
            try Date.fetchAll(db, sql: """
                SELECT started FROM runs WHERE runbook = ? AND lock_key IS ? AND dry_run = 0 AND drill = 0
                AND (outcome IS NULL OR outcome != 'refused') AND started >= ? ORDER BY started
                """, arguments: [runbook, lockKey, since])
        }
    }

    /// Takes the run lock for a key, across processes (flock on a file in the state folder). The lock is
    /// released when the returned handle is closed or the process dies, so a crash never leaves it held.
    /// - Returns: nil when another run holds it.
    public func tryLock(runbook: String, key: String) throws -> RunLock? {
        let dir = directory + "/locks"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let safe = String((runbook + "--" + key).map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." ? $0 : "_" }.prefix(200))
        let fd = open(dir + "/" + safe + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
        if flock(fd, LOCK_EX | LOCK_NB) != 0 {
            close(fd)
            return nil
        }
        return RunLock(fd: fd)
    }

    /// Where a run's timeline lives.
    public func timelinePath(_ runID: String) -> String { "\(directory)/runs/\(runID).jsonl" }

    public func insert(_ record: RunRecord) throws {
        try pool.write { db in try record.insert(db) }
    }

    public func finish(runID: String, outcome: RunOutcome, durationMs: Int) throws {
        try pool.write { db in
            try db.execute(sql: "UPDATE runs SET outcome = ?, duration_ms = ? WHERE id = ?", arguments: [outcome.rawValue, durationMs, runID])
        }
    }

    /// Runs, newest first.
    public func runs(limit: Int = 100) throws -> [RunRecord] {
        try pool.read { db in try RunRecord.order(Column("started").desc).limit(limit).fetchAll(db) }
    }

    public func run(_ id: String) throws -> RunRecord? {
        try pool.read { db in try RunRecord.fetchOne(db, key: id) }
    }

    /// The events of a run's timeline file.
    public func timeline(_ runID: String) throws -> [TimelineEvent] {
        guard let text = try? String(contentsOfFile: timelinePath(runID), encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { TimelineEvent.parse(jsonLine: String($0)) }
    }
}

/// A held run lock; released on `release()`, on deinit, or when the process ends.
public final class RunLock: @unchecked Sendable {
    // The descriptor is only closed once, guarded by `lock`.
    private let lock = NSLock()
    private var fd: Int32

    init(fd: Int32) { self.fd = fd }

    public func release() {
        lock.withLock {
            if fd >= 0 { close(fd); fd = -1 }
        }
    }

    deinit { release() }
}

/// Appends each event to a JSON Lines file with one `write(2)`, so a crash loses at most the event being written.
public final class TimelineFileSink: TimelineSink, @unchecked Sendable {
    // The descriptor is only written through write(2) with O_APPEND, which is atomic per call.
    let fd: Int32

    public init(path: String) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path]) }
    }

    deinit { close(fd) }

    public func record(_ event: TimelineEvent) {
        let line = event.jsonLine() + "\n"
        line.utf8CString.withUnsafeBufferPointer { buf in
            _ = write(fd, buf.baseAddress!, buf.count - 1)
        }
    }
}

/// Keeps the history row in step with the run: inserted at `run.started`, closed at `run.finished`.
public struct HistorySink: TimelineSink {
    let store: RunStore
    let record: RunRecord

    public init(store: RunStore, record: RunRecord) {
        self.store = store
        self.record = record
    }

    public func record(_ event: TimelineEvent) {
        if event.event == "run.started" { try? store.insert(record) }
        if event.event == "run.finished", let o = event.outcome.flatMap(RunOutcome.init(rawValue:)) {
            try? store.finish(runID: event.run, outcome: o, durationMs: event.durationMs ?? 0)
        }
    }
}
