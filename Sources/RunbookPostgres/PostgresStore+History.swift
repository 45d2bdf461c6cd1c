import Foundation
import Logging
import PostgresNIO
import RunbookCore
import RunbookStore

/// Runs, timelines (the `events` table), changes, run ids, and ending runs nobody took over.
extension PostgresStore {
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
        if events.isEmpty, let r = try? run(runID), let refused = RunStore.refusedTimeline(r) { return (refused, []) }
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
        return try RunStore.uniqueRun(given, text: text, among: ids, location: location)
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
        let e = RunStore.interruptedEnd(runID: runID, started: started, message: message, events: timeline(runID), now: now)
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
}
