import Foundation
import Logging
import PostgresNIO
import RunbookCore
import RunbookStoreContract

/// Fenced writes: every write an owner makes for its run carries its epoch and is refused once
/// another owner holds the run (`FencedError`).
extension PostgresRunStore {
    /// The epoch column, added after the tables (a version of its own, apart from the others').
    static let fencingMigrations: [(Int, [String])] = [
        (11, ["ALTER TABLE runs ADD COLUMN IF NOT EXISTS epoch BIGINT NOT NULL DEFAULT 1"]),
    ]

    /// Appends events to the `events` table only while the run's epoch is the owner's. The row
    /// of the run is locked `FOR KEY SHARE` for the insert, so a claim (which locks it `FOR UPDATE`)
    /// waits for an append in progress, and an append waits for a claim in progress and is then
    /// refused: the new owner reads every event its predecessor wrote, and none arrives after. Lease
    /// renewals (updates of no key column) and appends never wait for each other.
    final class FencedTimeline: DurableTimeline, @unchecked Sendable {
        // Immutable.
        let store: PostgresRunStore
        let fence: RunFence
        let health: RecordHealth?
        init(store: PostgresRunStore, fence: RunFence, health: RecordHealth?) {
            self.store = store
            self.fence = fence
            self.health = health
        }

        func write(_ event: TimelineEvent) throws {
            try write([event])
        }

        /// `run.finished` closes the row in the statement that appends it.
        var closesRowAtRunFinished: Bool { true }

        /// Events written together go in one statement, in order (all or none). With `run.finished`
        /// among them, the same statement closes the row with its outcome (unless this owner closed
        /// it already), and the lease is given up with it, as `finish` does.
        func write(_ events: [TimelineEvent]) throws {
            guard !events.isEmpty else { return }
            guard store.holds(fence) else { throw FencedError(fence: fence, current: nil, operation: "append to the timeline") }
            let (id, epoch, lines) = (fence.runID, fence.epoch, events.map { $0.jsonLine() })
            let end = events.last { $0.event == "run.finished" }.flatMap { e in
                e.outcome.flatMap(RunOutcome.init(rawValue:)).map { (outcome: $0.rawValue, durationMs: e.durationMs ?? 0) }
            }
            let written = try store.sync { client in
                if let end {
                    // The row is locked here (the claim that would take it waits), then closed.
                    return try await client.rows(PreparedStatements.AppendEventsAndClose(
                        runID: id, epoch: epoch, outcome: end.outcome, durationMs: end.durationMs, lines: lines)).count
                }
                return try await client.rows(PreparedStatements.AppendEvents(runID: id, epoch: epoch, lines: lines)).count
            }
            if written == 0 { throw FencedError(fence: fence, current: try? store.epoch(of: id), operation: "append to the timeline") }
            if end != nil { store.lock.withLock { if store.held[id]?.epoch == epoch { store.held[id] = nil } } }
        }

        func record(_ event: TimelineEvent) {
            record([event])
        }

        func record(_ events: [TimelineEvent]) {
            do { try write(events) } catch { health?.report(error, location: store.location) }
        }
    }

    /// One statement for all the notes: each run's row is locked `FOR KEY SHARE` while its epoch is
    /// the fence's (as a single append does), and only those runs get their note. Rows are locked
    /// in id order (as lease renewals and claims lock them).
    public func appendNotes(_ notes: [(fence: RunFence, event: TimelineEvent)]) throws -> Set<String> {
        let mine = notes.filter { holds($0.fence) }
        guard !mine.isEmpty else { return [] }
        let ids = mine.map(\.fence.runID), epochs = mine.map(\.fence.epoch), lines = mine.map { $0.event.jsonLine() }
        let written = try sync { client in
            try await client.query("""
                WITH x AS (SELECT * FROM unnest(\(ids)::text[], \(epochs)::bigint[], \(lines)::text[]) WITH ORDINALITY AS x(id, epoch, line, n)),
                owned AS (SELECT r.id FROM runs r JOIN x ON r.id = x.id AND r.epoch = x.epoch ORDER BY r.id FOR KEY SHARE OF r)
                INSERT INTO events (run, line) SELECT x.id, x.line FROM x JOIN owned ON owned.id = x.id ORDER BY x.n RETURNING run
                """).all(String.self)
        }
        return Set(written)
    }

    public func timelineSink(fence: RunFence, health: RecordHealth?) throws -> any DurableTimeline {
        FencedTimeline(store: self, fence: fence, health: health)
    }

    /// Closes the row while `fence` owns the run; the lease is given up with it. Finishing a run
    /// this owner finished already changes nothing.
    /// - Throws: `FencedError` when another owner holds the run (nothing is written).
    public func finish(_ fence: RunFence, outcome: RunOutcome, durationMs: Int) throws {
        let (id, epoch, o) = (fence.runID, fence.epoch, outcome.rawValue)
        // The outer SELECT sees the row as it was before the UPDATE (one snapshot per statement).
        let rows = try sync { client in
            try await client.query("""
                WITH u AS (UPDATE runs SET outcome = \(o), duration_ms = \(durationMs)
                           WHERE id = \(id) AND epoch = \(epoch) AND outcome IS NULL RETURNING id)
                SELECT (SELECT count(*) FROM u), epoch, outcome FROM runs WHERE id = \(id)
                """).all((Int, Int64, String?).self)
        }
        lock.withLock { if held[id]?.epoch == epoch { held[id] = nil } }
        guard let (updated, current, before) = rows.first else { return }
        if updated > 0 || (before != nil && current == epoch) { return }
        throw FencedError(fence: fence, current: current == epoch ? nil : current, operation: "finish")
    }

    public func epoch(of runID: String) throws -> Int64? {
        try sync { try await $0.query("SELECT epoch FROM runs WHERE id = \(runID)").all(Int64.self).first }
    }
}
