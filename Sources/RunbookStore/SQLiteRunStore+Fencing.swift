import Foundation
import GRDB
import RunbookCore
import RunbookStoreContract

/// Fenced writes on one machine: each run's row carries the epoch of its ownership (1 when admitted,
/// one more when a new server takes it), and its owner's writes are refused once the epoch moved on.
/// The kernel's file lease already keeps a live owner's run from being taken; the epoch makes the
/// rule the same as on PostgreSQL and refuses a stale writer whatever happens.
extension SQLiteRunStore {
    static func registerFencingMigration(_ migrator: inout DatabaseMigrator) {
        migrator.registerMigration("v9-lease-epochs") { db in
            try db.execute(sql: "ALTER TABLE runs ADD COLUMN epoch INTEGER NOT NULL DEFAULT 1")
        }
    }

    public func epoch(of runID: String) throws -> Int64? {
        try read { db in try Int64.fetchOne(db, sql: "SELECT epoch FROM runs WHERE id = ?", arguments: [runID]) }
    }

    /// Makes `lease` the run's owner under one more epoch; returns it.
    @discardableResult
    func bumpEpoch(_ lease: RunLease) throws -> Int64 {
        let id = lease.currentFence.runID
        let epoch = try write { db -> Int64 in
            try db.execute(sql: "UPDATE runs SET epoch = epoch + 1 WHERE id = ?", arguments: [id])
            return try Int64.fetchOne(db, sql: "SELECT epoch FROM runs WHERE id = ?", arguments: [id]) ?? 1
        }
        lease.takeOver(epoch: epoch)
        return epoch
    }

    public func timelineSink(fence: RunFence, health: RecordHealth?) throws -> any DurableTimeline {
        FencedFileTimeline(store: self, fence: fence, file: try TimelineFileSink(path: timelinePath(fence.runID), health: nil), health: health)
    }

    /// Closes the row while `fence` owns the run; finishing it again changes nothing.
    /// - Throws: `FencedError` when another owner holds the run (nothing is written).
    public func finish(_ fence: RunFence, outcome: RunOutcome, durationMs: Int) throws {
        let current = try write { db -> Int64? in
            try db.execute(sql: "UPDATE runs SET outcome = ?, duration_ms = ? WHERE id = ? AND epoch = ? AND outcome IS NULL",
                           arguments: [outcome.rawValue, durationMs, fence.runID, fence.epoch])
            if db.changesCount > 0 { return nil }
            return try Int64.fetchOne(db, sql: "SELECT epoch FROM runs WHERE id = ?", arguments: [fence.runID])
        }
        if let current, current != fence.epoch { throw FencedError(fence: fence, current: current, operation: "finish") }
    }
}

/// A run's timeline file, appended to only while the run's epoch is its owner's.
final class FencedFileTimeline: DurableTimeline, @unchecked Sendable {
    // Immutable.
    let store: SQLiteRunStore
    let fence: RunFence
    let file: TimelineFileSink
    let health: RecordHealth?

    init(store: SQLiteRunStore, fence: RunFence, file: TimelineFileSink, health: RecordHealth?) {
        self.store = store
        self.fence = fence
        self.file = file
        self.health = health
    }

    func write(_ event: TimelineEvent) throws {
        try write([event])
    }

    /// One check of the epoch for events written together.
    func write(_ events: [TimelineEvent]) throws {
        let current = try store.epoch(of: fence.runID)
        guard current == fence.epoch else { throw FencedError(fence: fence, current: current, operation: "append to the timeline") }
        try file.write(events)
    }

    func record(_ event: TimelineEvent) {
        record([event])
    }

    func record(_ events: [TimelineEvent]) {
        do { try write(events) } catch { health?.report(error, location: store.location) }
    }
}
