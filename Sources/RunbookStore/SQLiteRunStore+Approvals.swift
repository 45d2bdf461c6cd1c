import Foundation
import GRDB
import RunbookCore
import RunbookStoreContract

/// Approval gates and the answers given at them (SPEC §6.9); the decision is `ApprovalRules`.
extension SQLiteRunStore {
    /// Records that a gate is open (or finds it open from before a restart, keeping its deadline).
    public func openGate(runID: String, gate: GateRequest, startedBy: String?, resumable: Bool, now: Date) throws {
        try write { db in
            try db.execute(sql: """
                INSERT INTO gates (run, gate, approvals, deadline, started_by, resumable, status, opened) VALUES (?, ?, ?, ?, ?, ?, 'open', ?)
                ON CONFLICT (run, gate) DO UPDATE SET status = 'open', resumable = excluded.resumable
                """, arguments: [runID, gate.id, gate.gate.approvals, gate.deadline, startedBy, resumable, now])
        }
    }

    /// Closes a gate: `approved`, `declined` or `closed`.
    public func closeGate(runID: String, gate: String, status: String) throws {
        try write { db in
            try db.execute(sql: "UPDATE gates SET status = ? WHERE run = ? AND gate = ?", arguments: [status, runID, gate])
        }
    }

    /// The answers recorded at a gate, oldest first.
    public func answers(runID: String, gate: String) throws -> [ApprovalRecord] {
        try read { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT name, approve, at FROM approvals WHERE run = ? AND gate = ? ORDER BY at, rowid"),
                             arguments: [runID, gate]).map { ApprovalRecord(name: $0["name"], approve: $0["approve"], at: $0["at"]) }
        }
    }

    /// Gate ids open for a run.
    public func openGates(runID: String) throws -> [String] {
        try read { db in try String.fetchAll(db, sql: "SELECT gate FROM gates WHERE run = ? AND status = 'open' ORDER BY gate", arguments: [runID]) }
    }

    /// Runs waiting for approval now, for `/runs`.
    public func runsAwaitingApproval() throws -> Set<String> {
        try read { db in Set(try String.fetchAll(db, sql: "SELECT DISTINCT run FROM gates WHERE status = 'open'")) }
    }

    /// Answers every open gate of `runID` as `name` (`runbook approve`, `POST /runs/ID/approve|deny`),
    /// in one transaction: `ApprovalRules` decides from the open gates and the answers given.
    /// - Throws: `ApprovalError` when the answer is not taken, `StoreError` when the store fails.
    public func answer(runID: String, approve: Bool, by name: String, via: String, now: Date) throws -> ApprovalReceipt {
        do {
            return try write { db -> ApprovalReceipt in
                let gates = try Row.fetchAll(db, sql: "SELECT gate, approvals, started_by FROM gates WHERE run = ? AND status = 'open' ORDER BY gate", arguments: [runID])
                    .map { ApprovalRules.OpenGate(gate: $0["gate"], needed: $0["approvals"], startedBy: $0["started_by"]) }
                let given = try Row.fetchAll(db, sql: """
                    SELECT a.gate, a.name, a.approve FROM approvals a JOIN gates g ON g.run = a.run AND g.gate = a.gate
                    WHERE a.run = ? AND g.status = 'open'
                    """, arguments: [runID]).map { ApprovalRules.Given(gate: $0["gate"], name: $0["name"], approve: $0["approve"]) }
                let outcome = gates.isEmpty ? try String.fetchOne(db, sql: "SELECT outcome FROM runs WHERE id = ?", arguments: [runID]) : nil
                let receipt = try ApprovalRules.answer(runID: runID, gates: gates, given: given, approve: approve, by: name, outcome: outcome)
                for g in receipt.gates {
                    try db.execute(sql: "INSERT INTO approvals (run, gate, name, approve, at, via) VALUES (?, ?, ?, ?, ?, ?)",
                                   arguments: [runID, g.gate, name, approve, now, via])
                }
                return receipt
            }
        } catch let e as ApprovalError {
            throw e
        } catch {
            throw StoreError(path: directory + "/runbook.sqlite", error)
        }
    }
}
