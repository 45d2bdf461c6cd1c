import Foundation
import GRDB
import RunbookCore
import RunbookStoreContract

/// Approval gates and the answers given at them (SPEC §6.9). A gate is decided once, in one
/// `BEGIN IMMEDIATE` transaction, by the first decisive event: approvals reaching the count, a
/// denial, or the stored deadline (`ApprovalRules`).
extension SQLiteRunStore {
    /// Records that a gate is open, or finds it from before a restart, keeping its deadline and any
    /// decision taken meanwhile.
    public func openGate(runID: String, gate: GateRequest, startedBy: String?, resumable: Bool, now: Date) throws {
        try write { db in
            try db.execute(sql: """
                INSERT INTO gates (run, gate, approvals, deadline, started_by, resumable, status, opened) VALUES (?, ?, ?, ?, ?, ?, 'open', ?)
                ON CONFLICT (run, gate) DO UPDATE SET resumable = excluded.resumable
                """, arguments: [runID, gate.id, gate.gate.approvals, gate.deadline, startedBy, resumable, now])
        }
    }

    /// Closes a gate the run is done with: `approved`, `declined` or `closed`. A decision stays as stored.
    public func closeGate(runID: String, gate: String, status: String) throws {
        try write { db in
            try db.execute(sql: "UPDATE gates SET status = ? WHERE run = ? AND gate = ? AND status = 'open'", arguments: [status, runID, gate])
        }
    }

    /// The answers taken at a gate, in the order they were taken.
    public func answers(runID: String, gate: String) throws -> [ApprovalRecord] {
        try read { db in try Self.answers(db, runID: runID, gate: gate) }
    }

    static func answers(_ db: Database, runID: String, gate: String) throws -> [ApprovalRecord] {
        try Row.fetchAll(db.cachedStatement(sql: "SELECT name, approve, at FROM approvals WHERE run = ? AND gate = ? ORDER BY rowid"),
                         arguments: [runID, gate]).map { ApprovalRecord(name: $0["name"], approve: $0["approve"], at: $0["at"]) }
    }

    /// Gate ids waiting for answers.
    public func openGates(runID: String) throws -> [String] {
        try read { db in
            try String.fetchAll(db, sql: "SELECT gate FROM gates WHERE run = ? AND status = 'open' AND decision IS NULL ORDER BY gate", arguments: [runID])
        }
    }

    /// Runs waiting for approval now, for `/runs`.
    public func runsAwaitingApproval() throws -> Set<String> {
        try read { db in Set(try String.fetchAll(db, sql: "SELECT DISTINCT run FROM gates WHERE status = 'open' AND decision IS NULL")) }
    }

    /// Answers every undecided gate of `runID` as `name` (`runbook approve`, `POST /runs/ID/approve|deny`)
    /// in one `BEGIN IMMEDIATE` transaction: `ApprovalRules` decides from the gates and the answers given.
    /// - Throws: `ApprovalError` when the answer is not taken, `StoreError` when the store fails.
    public func answer(runID: String, approve: Bool, by name: String, via: String, now: Date) throws -> ApprovalReceipt {
        let outcome: ApprovalRules.Outcome = try immediate { db in
            let gates = try Self.gateRows(db, runID: runID)
            let given = try Row.fetchAll(db, sql: """
                SELECT a.gate, a.name, a.approve FROM approvals a JOIN gates g ON g.run = a.run AND g.gate = a.gate
                WHERE a.run = ? AND g.status = 'open' AND g.decision IS NULL ORDER BY a.rowid
                """, arguments: [runID]).map { ApprovalRules.Given(gate: $0["gate"], name: $0["name"], approve: $0["approve"]) }
            let ended = try String.fetchOne(db, sql: "SELECT outcome FROM runs WHERE id = ?", arguments: [runID])
            let out = ApprovalRules.answer(runID: runID, gates: gates, given: given, approve: approve, by: name, outcome: ended, now: now)
            for gate in out.answerAt {
                try db.execute(sql: "INSERT INTO approvals (run, gate, name, approve, at, via) VALUES (?, ?, ?, ?, ?, ?)",
                               arguments: [runID, gate, name, approve, now, via])
            }
            for d in out.decided {
                try db.execute(sql: "UPDATE gates SET decision = ?, decided_by = ?, decided_at = ? WHERE run = ? AND gate = ?",
                               arguments: [d.decision, d.by, now, runID, d.gate])
            }
            return out
        }
        return try outcome.result.get()
    }

    /// Decides a gate timed out at its deadline unless something decided it first, in one
    /// `BEGIN IMMEDIATE` transaction with the answers (nil: the stored deadline is after `now`).
    public func decideDeadline(runID: String, gate: String, now: Date) throws -> GateState? {
        try immediate { db -> GateState? in
            guard let g = try Self.gateRows(db, runID: runID).first(where: { $0.gate == gate }) else {
                return GateState(answers: [], timedOut: true)
            }
            guard let verdict = ApprovalRules.deadline(g, now: now) else { return nil }
            if verdict.write {
                try db.execute(sql: "UPDATE gates SET decision = 'timed_out', decided_at = ? WHERE run = ? AND gate = ?", arguments: [now, runID, gate])
            }
            return GateState(answers: try Self.answers(db, runID: runID, gate: gate), timedOut: verdict.timedOut)
        }
    }

    static func gateRows(_ db: Database, runID: String) throws -> [ApprovalRules.GateRow] {
        try Row.fetchAll(db, sql: """
            SELECT gate, approvals, started_by, deadline, status, decision, decided_by, decided_at FROM gates WHERE run = ? ORDER BY gate
            """, arguments: [runID]).map {
            ApprovalRules.GateRow(gate: $0["gate"], needed: $0["approvals"], startedBy: $0["started_by"], deadline: $0["deadline"],
                                  status: $0["status"], decision: $0["decision"], decidedBy: $0["decided_by"], decidedAt: $0["decided_at"])
        }
    }

    /// A `BEGIN IMMEDIATE` transaction: it takes the write lock first, so two processes deciding
    /// on the same rows run one after the other and the second sees what the first wrote.
    func immediate<T>(_ body: (Database) throws -> T) throws -> T {
        StoreThreads.assertNotInTask("SQLite write in \(directory)")
        do {
            return try pool.writeWithoutTransaction { db in
                var value: T?
                try db.inTransaction(.immediate) {
                    value = try body(db)
                    return .commit
                }
                return value!
            }
        } catch {
            throw StoreError(path: directory + "/runbook.sqlite", error)
        }
    }
}
