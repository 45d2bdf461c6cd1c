import Foundation
import Logging
import PostgresNIO
import RunbookCore
import RunbookStoreContract

/// Runs, timelines (the `events` table), changes, run ids, and ending runs nobody took over.
extension PostgresRunStore {
    /// Inserts a row as it is (drills record themselves this way).
    public func insert(_ record: RunRecord) throws {
        let log = logger
        try sync { client in
            try await client.withConnection { conn in try await Self.insert(conn, [record], owner: nil, leaseSeconds: 0, log) }
        }
    }

    /// Appends events to the `events` table, one row an event.
    final class Timeline: DurableTimeline, @unchecked Sendable {
        let store: PostgresRunStore
        let runID: String
        let health: RecordHealth?
        init(store: PostgresRunStore, runID: String, health: RecordHealth?) {
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
        if events.isEmpty, let r = try? run(runID), let refused = RunEndings.refusedTimeline(r) { return (refused, []) }
        return (events, damaged)
    }

    public func finish(runID: String, outcome: RunOutcome, durationMs: Int) throws {
        let o = outcome.rawValue
        try execute("UPDATE runs SET outcome = \(o), duration_ms = \(durationMs) WHERE id = \(runID)")
        lock.withLock { _ = held.removeValue(forKey: runID) }
    }

    /// Records that a run applied a change: one of its reserved places becomes it (keeping the time
    /// it was reserved, so the window never shrinks), else a change is added.
    public func recordChange(runID: String, at: Date) throws {
        try execute("""
            WITH used AS (
                UPDATE changes SET state = NULL
                WHERE ctid = (SELECT ctid FROM changes WHERE run = \(runID) AND state = 'reserved' LIMIT 1 FOR UPDATE SKIP LOCKED)
                RETURNING 1)
            INSERT INTO changes (run, at) SELECT \(runID), \(at) WHERE NOT EXISTS (SELECT 1 FROM used)
            """)
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

    public func runs(limit: Int, kinds: Set<RunKind>) throws -> [RunRecord] {
        guard let condition = RunKind.sqlCondition(kinds) else { return try runs(limit: limit) }
        return try sync {
            try await Self.records(try await $0.query("SELECT \(unescaped: Self.runColumns) FROM runs WHERE \(unescaped: condition) ORDER BY started DESC, id DESC LIMIT \(limit)"))
        }
    }

    public func takeoverReads(_ runIDs: [String]) throws -> [String: (record: RunRecord, events: [TimelineEvent])] {
        guard !runIDs.isEmpty else { return [:] }
        let (records, lines) = try sync { client in
            let records = try await Self.records(try await client.query("SELECT \(unescaped: Self.runColumns) FROM runs WHERE id = ANY(\(runIDs))"))
            let lines = try await client.query("SELECT run, line FROM events WHERE run = ANY(\(runIDs)) ORDER BY run, seq").all((String, String).self)
            return (records, lines)
        }
        var events: [String: [TimelineEvent]] = [:]
        for (run, line) in lines {
            if let e = TimelineEvent.parse(jsonLine: line) { events[run, default: []].append(e) }
        }
        var out: [String: (record: RunRecord, events: [TimelineEvent])] = [:]
        for r in records { out[r.id] = (r, events[r.id] ?? []) }
        return out
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
        return try RunIDError.uniqueRun(given, text: text, among: ids, location: location)
    }

    public func resolve(fingerprint: String, at: Date) throws -> [String] {
        try sync { try await $0.query("UPDATE runs SET resolved_at = \(at) WHERE fingerprint = \(fingerprint) AND resolved_at IS NULL RETURNING id").all(String.self) }
    }

    /// Runs whose lease expired a minute ago are ones no replica took over (none is running): they
    /// are ended, as on one machine (their own `run.finished` adopted when written). A run paused at a
    /// resumable gate whose deadline is ahead is left for a server to resume. Replicas take over runs
    /// long before that.
    public func finalizeDeadRuns(now: Date) throws -> [String] {
        let stale = now.addingTimeInterval(-60)
        let open = try sync { try await Self.records(try await $0.query("""
            SELECT \(unescaped: Self.runColumns) FROM runs WHERE outcome IS NULL AND lease_until < \(stale)
            AND NOT EXISTS (SELECT 1 FROM gates g WHERE g.run = runs.id AND g.status = 'open' AND g.resumable AND g.deadline > \(now))
            """)) }
        guard !open.isEmpty else { return [] }
        let staleGates = try self.staleGates(now: now)
        var done: [String] = []
        for r in open {
            try closeAbandoned(r, staleDeadline: staleGates[r.id], note: "; no replica took it over", now: now)
            done.append(r.id)
        }
        return done
    }

    /// Writes a closing in one transaction, once: the row (only while it is open), the interrupted
    /// event when there is one, the gates closed.
    public func close(_ runID: String, _ closing: RunEndings.Closing) throws {
        let (outcome, ms, line): (String, Int, String?)
        switch closing {
        case .adopt(let o, let d): (outcome, ms, line) = (o.rawValue, d, nil)
        case .interrupt(let e): (outcome, ms, line) = (RunOutcome.interrupted.rawValue, e.durationMs ?? 0, e.jsonLine())
        }
        let log = logger
        _ = try sync { client in
            try await client.withTransaction(logger: log) { conn in
                let changed = try await conn.query("UPDATE runs SET outcome = \(outcome), duration_ms = \(ms) WHERE id = \(runID) AND outcome IS NULL RETURNING id",
                                                   logger: log).all(String.self)
                if !changed.isEmpty {
                    if let line { try await conn.query("INSERT INTO events (run, line) VALUES (\(runID), \(line))", logger: log).drain() }
                    try await conn.query("UPDATE gates SET status = 'closed' WHERE run = \(runID) AND status = 'open'", logger: log).drain()
                }
                return changed.count
            }
        }
        lock.withLock { _ = held.removeValue(forKey: runID) }
    }

    /// Open runs at a resumable gate whose deadline passed, with that deadline.
    func staleGates(now: Date) throws -> [String: Date] {
        let rows = try sync { try await $0.query("""
            SELECT g.run, min(g.deadline) FROM gates g JOIN runs r ON r.id = g.run
            WHERE g.status = 'open' AND g.resumable AND r.outcome IS NULL AND g.deadline <= \(now) GROUP BY g.run
            """).all((String, Date).self) }
        return Dictionary(rows.map { ($0.0, $0.1) }, uniquingKeysWith: { a, _ in a })
    }
}
