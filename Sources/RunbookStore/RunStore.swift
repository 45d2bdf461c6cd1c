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
    /// On a refused run: the guard, its sentence, until when, and how many refusals this row counts
    /// (repeat refusals of one alert by one guard add to the count instead of adding rows).
    public var refusalGuard: String?
    public var refusalMessage: String?
    public var refusalUntil: Date?
    public var refusedCount: Int?

    enum CodingKeys: String, CodingKey {
        case id, runbook, trigger, fingerprint, outcome, started
        case durationMs = "duration_ms", dryRun = "dry_run", drill, lockKey = "lock_key"
        case refusalGuard = "refusal_guard", refusalMessage = "refusal_message", refusalUntil = "refusal_until", refusedCount = "refused_count"
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
        try StoreError.makeFolder(directory + "/runs")
        var config = Configuration()
        config.busyMode = .timeout(10)
        // Opening (WAL mode) and migrating happen under a file lock: ten processes opening a new
        // state folder at once must not race to create the same tables.
        let lockPath = directory + "/migrate.lock"
        let lockFD = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard lockFD >= 0 else { throw StoreError(path: lockPath, operation: "create", errno: errno) }
        defer { close(lockFD) }
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
        try migrator.migrate(pool)
    }

    /// Marks the runs of an alert resolved; returns their ids.
    public func resolve(fingerprint: String, at: Date) throws -> [String] {
        try pool.write { db in
            let ids = try String.fetchAll(db, sql: "SELECT id FROM runs WHERE fingerprint = ? AND resolved_at IS NULL", arguments: [fingerprint])
            try db.execute(sql: "UPDATE runs SET resolved_at = ? WHERE fingerprint = ? AND resolved_at IS NULL", arguments: [at, fingerprint])
            return ids
        }
    }

    /// Finalises runs whose owner died (no outcome, and their lease is free): each gets one closing
    /// `run.finished` `interrupted` naming the last completed step and the changes left in place (or,
    /// when the owner wrote its `run.finished` but died before closing the row, that outcome). A run
    /// whose owner is alive is left alone. Their changes are never repeated. Returns their ids.
    @discardableResult
    public func finalizeDeadRuns(now: Date) throws -> [String] {
        let open = try pool.read { db in try RunRecord.filter(Column("outcome") == nil).fetchAll(db) }
        var done: [String] = []
        let paused = Set(try pausedRunIDs(now: now))
        for r in open where !paused.contains(r.id) {
            guard let lease = RunLease.takeIfFree(path: leasePath(r.id)) else { continue }
            defer { lease.release(removing: true) }
            // The owner may have closed the row between the read and the lease.
            guard try pool.read({ db in try RunRecord.fetchOne(db, key: r.id) })?.outcome == nil else { continue }
            let events = timeline(r.id)
            if let end = events.last(where: { $0.event == "run.finished" }), let o = end.outcome.flatMap(RunOutcome.init(rawValue:)) {
                try finish(runID: r.id, outcome: o, durationMs: end.durationMs ?? 0)
                done.append(r.id)
                continue
            }
            try writeInterrupted(Self.interruptedEnd(runID: r.id, started: r.started, message: Self.cutOffMessage(events), events: events, now: now))
            done.append(r.id)
        }
        return done
    }

    /// Ends an open run `interrupted` with `message` (and the changes it left in place).
    public func finalize(runID: String, started: Date, message: String, now: Date) throws {
        try writeInterrupted(Self.interruptedEnd(runID: runID, started: started, message: message, events: timeline(runID), now: now))
    }

    /// Writes a run's closing `interrupted` event, closes its row and its open gates.
    func writeInterrupted(_ end: TimelineEvent) throws {
        try TimelineFileSink(path: timelinePath(end.run)).write(end)
        try finish(runID: end.run, outcome: .interrupted, durationMs: end.durationMs ?? 0)
        try pool.write { db in try db.execute(sql: "UPDATE gates SET status = 'closed' WHERE run = ? AND status = 'open'", arguments: [end.run]) }
    }

    /// The one `run.finished` `interrupted` of a run ended for it (its owner is gone): `message`, then
    /// the changes it left in place. Both stores write this.
    public static func interruptedEnd(runID: String, started: Date, message: String, events: [TimelineEvent], now: Date) -> TimelineEvent {
        var e = TimelineEvent(time: now, run: runID, event: "run.finished")
        e.outcome = RunOutcome.interrupted.rawValue
        e.durationMs = Int(now.timeIntervalSince(started) * 1000)
        let left = RunbookChangesLeft.texts(events)
        e.message = message + (left.isEmpty ? "" : "; left in place: " + left.joined(separator: "; "))
        return e
    }

    /// "cut off …; last completed step: X (passed); its changes are not repeated".
    public static func cutOffMessage(_ events: [TimelineEvent]) -> String {
        let last = events.last { $0.event == "step.finished" }
        return "cut off before it finished (its process died); last completed step: \(last?.step ?? "none")\(last?.status.map { " (\($0))" } ?? ""); its changes are not repeated"
    }

    /// The timeline of a refused run, told from its row (refusals are rows, never files); nil for any other run.
    public static func refusedTimeline(_ r: RunRecord) -> [TimelineEvent]? {
        guard r.outcome == RunOutcome.refused.rawValue, let g = r.refusalGuard else { return nil }
        var start = TimelineEvent(time: r.started, run: r.id, event: "run.started")
        start.runbook = r.runbook
        start.trigger = r.trigger
        start.dryRun = r.dryRun
        var events = refusalEvents(start: start, refusal: GuardCheck.Refusal(guardName: g, until: r.refusalUntil, message: r.refusalMessage ?? ""))
        if let n = r.refusedCount, n > 1 { events[2].message = (events[2].message ?? "") + " (\(n) times)" }
        return events
    }

    /// The one run `given` names among `ids` (whole, or a prefix of an id or of its final hex part).
    /// - Throws: `RunIDError` when none or several match.
    public static func uniqueRun(_ given: String, text: String, among ids: [String], location: String) throws -> String {
        if ids.contains(given) { return given }
        let unique = Array(Set(ids.filter { id in id.hasPrefix(given) || (id.split(separator: "-").last.map { $0.hasPrefix(given) } ?? false) })).sorted()
        guard unique.count == 1 else { throw RunIDError(given: text, matches: unique, directory: location) }
        return unique[0]
    }

    /// A run named on the command line: `last` (the newest run), a whole id, or a unique prefix of an
    /// id or of its final hexadecimal part (SPEC §6.6).
    /// - Throws: `RunIDError` when nothing or more than one run matches.
    public func resolveRunID(_ text: String) throws -> String {
        let given = text.trimmingCharacters(in: .whitespaces)
        return try pool.read { db in
            if given == "last" {
                guard let id = try String.fetchOne(db, sql: "SELECT id FROM runs ORDER BY started DESC, id DESC LIMIT 1") else {
                    throw RunIDError(given: text, matches: [], directory: directory)
                }
                return id
            }
            if try String.fetchOne(db, sql: "SELECT id FROM runs WHERE id = ?", arguments: [given]) != nil { return given }
            guard !given.isEmpty else { throw RunIDError(given: text, matches: [], directory: directory) }
            return try Self.uniqueRun(given, text: text, among: String.fetchAll(db, sql: "SELECT id FROM runs"), location: directory)
        }
    }

    /// Where a run's liveness lease lives: a file its owner holds an exclusive `flock` on.
    public func leasePath(_ runID: String) -> String { "\(directory)/runs/\(runID).lease" }

    /// Takes the run lock for a key, across processes (flock on a file in the state folder). The lock is
    /// released when the returned handle is closed or the process dies, so a crash never leaves it held.
    /// - Returns: nil when another run holds it.
    public func tryLock(runbook: String, key: String) throws -> RunLock? {
        let dir = directory + "/locks"
        try StoreError.makeFolder(dir)
        let safe = String((runbook + "--" + key).map { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "." ? $0 : "_" }.prefix(200))
        let fd = open(dir + "/" + safe + ".lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError(path: dir + "/" + safe + ".lock", operation: "create", errno: errno) }
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

    /// Records that a run applied a change (for the change breaker).
    public func recordChange(runID: String, at: Date) throws {
        try pool.write { db in
            try db.execute(sql: "INSERT INTO changes (run, at) VALUES (?, ?)", arguments: [runID, at])
        }
    }

    /// Changes applied by any run since `since`.
    public func changesApplied(since: Date) throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM changes WHERE at >= ?", arguments: [since]) ?? 0 }
    }

    public func finish(runID: String, outcome: RunOutcome, durationMs: Int) throws {
        try pool.write { db in
            try db.execute(sql: "UPDATE runs SET outcome = ?, duration_ms = ? WHERE id = ?", arguments: [outcome.rawValue, durationMs, runID])
        }
    }

    /// Runs, newest first.
    public func runs(limit: Int) throws -> [RunRecord] {
        try pool.read { db in try RunRecord.order(Column("started").desc).limit(limit).fetchAll(db) }
    }

    public func run(_ id: String) throws -> RunRecord? {
        try pool.read { db in try RunRecord.fetchOne(db, key: id) }
    }

    /// The events of a run's timeline file. Damaged lines (bad bytes, cut-off JSON) are skipped.
    public func timeline(_ runID: String) -> [TimelineEvent] { timelineReport(runID).events }

    /// A run's timeline, read line by line and lossily: a damaged line is skipped and its number
    /// reported, and the rest of the run is still there. A refused run has no file: its timeline
    /// is told from its row.
    public func timelineReport(_ runID: String) -> (events: [TimelineEvent], damagedLines: [Int]) {
        guard let data = FileManager.default.contents(atPath: timelinePath(runID)) else {
            return ((try? run(runID)).flatMap { $0.flatMap(Self.refusedTimeline) } ?? [], [])
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

/// Appends each event to a JSON Lines file with one `write(2)`, so a crash loses at most the event
/// being written. A write that fails (full disk, read-only folder) is reported to `health`, which
/// stops the run: a run that cannot be recorded changes nothing more.
public final class TimelineFileSink: TimelineSink, @unchecked Sendable {
    // The descriptor is only written through write(2) with O_APPEND, which is atomic per call.
    let fd: Int32
    let path: String
    let health: RecordHealth?

    public init(path: String, health: RecordHealth? = nil) throws {
        self.path = path
        self.health = health
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError(path: path, operation: "create", errno: errno) }
    }

    deinit { close(fd) }

    public func record(_ event: TimelineEvent) {
        do { try write(event) } catch { health?.report("\(error)") }
    }

    /// Appends one event, or throws where and why it could not (a short write is undone).
    public func write(_ event: TimelineEvent) throws {
        let bytes = Array((event.jsonLine() + "\n").utf8)
        let before = lseek(fd, 0, SEEK_END)
        let n = bytes.withUnsafeBufferPointer { Glibc.write(fd, $0.baseAddress!, $0.count) }
        if n != bytes.count {
            let code = n < 0 ? errno : ENOSPC
            // Never leave half a line: a later reader would see it as damaged.
            if n > 0, before >= 0 { _ = ftruncate(fd, before) }
            throw StoreError(path: path, operation: "write", errno: code)
        }
    }
}

/// Closes the history row when the run finishes (the row was written when the run was admitted).
public struct HistorySink: TimelineSink {
    let store: any RunDatabase
    let health: RecordHealth?

    public init(store: any RunDatabase, health: RecordHealth? = nil) {
        self.store = store
        self.health = health
    }

    public func record(_ event: TimelineEvent) {
        if event.event == "change.applied" {
            do { try store.recordChange(runID: event.run, at: event.time) } catch {
                health?.report("\(StoreError(path: store.location, error))")
            }
        }
        if event.event == "run.finished", let o = event.outcome.flatMap(RunOutcome.init(rawValue:)) {
            do { try store.finish(runID: event.run, outcome: o, durationMs: event.durationMs ?? 0) } catch {
                health?.report("\(StoreError(path: store.location, error))")
            }
        }
    }
}

/// A run's liveness lease: an exclusive `flock` on `runs/ID.lease`, held by the process that runs
/// it. The kernel drops it when that process dies, however it dies, so a free lease on an open run
/// means its owner is gone.
public final class RunLease: @unchecked Sendable {
    // The descriptor is closed once, guarded by `lock`.
    private let lock = NSLock()
    private var fd: Int32
    let path: String

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    /// Creates and takes the lease for a new run.
    static func take(path: String) throws -> RunLease {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError(path: path, operation: "create", errno: errno) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(fd)
            throw StoreError(path: path, operation: "lock", errno: code)
        }
        return RunLease(fd: fd, path: path)
    }

    /// The lease of an open run when nobody holds it (its owner died); nil while its owner lives.
    static func takeIfFree(path: String) -> RunLease? {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        // No lease file: the run predates leases, or its owner died before creating it.
        if fd < 0 { return errno == ENOENT ? RunLease(fd: -1, path: path) : nil }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            return nil
        }
        return RunLease(fd: fd, path: path)
    }

    /// True for a lease of a run that had no lease file (nothing is held).
    var isPlaceholder: Bool { lock.withLock { fd < 0 } }

    /// Gives the lease up; `removing` deletes the file first (the run is final).
    public func release(removing: Bool) {
        lock.withLock {
            if removing { unlink(path) }
            if fd >= 0 { close(fd); fd = -1 }
        }
    }

    deinit { if fd >= 0 { close(fd) } }
}
