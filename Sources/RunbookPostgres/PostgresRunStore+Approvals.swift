import Foundation
import Logging
import PostgresNIO
import RunbookCore
import RunbookStoreContract

/// Approval gates and the answers given at them (SPEC §6.9). A gate is decided once, in one
/// transaction holding the run's gate rows (`FOR UPDATE`), by the first decisive event: approvals
/// reaching the count, a denial, or the stored deadline (`ApprovalRules`).
extension PostgresRunStore {
    /// Records that a gate is open, or finds it from before a restart, keeping its deadline and any
    /// decision taken meanwhile.
    public func openGate(runID: String, gate: GateRequest, startedBy: String?, resumable: Bool, now: Date) throws {
        let (id, n, deadline) = (gate.id, gate.gate.approvals, gate.deadline)
        try execute("""
            INSERT INTO gates (run, gate, approvals, deadline, started_by, resumable, status, opened)
            VALUES (\(runID), \(id), \(n), \(deadline), \(startedBy), \(resumable), 'open', \(now))
            ON CONFLICT (run, gate) DO UPDATE SET resumable = excluded.resumable
            """)
    }

    /// Closes a gate the run is done with; a decision stays as stored.
    public func closeGate(runID: String, gate: String, status: String) throws {
        try execute("UPDATE gates SET status = \(status) WHERE run = \(runID) AND gate = \(gate) AND status = 'open'")
    }

    /// The answers taken at a gate, in the order they were taken.
    public func answers(runID: String, gate: String) throws -> [ApprovalRecord] {
        let log = logger
        return try sync { client in try await client.withConnection { try await Self.answers($0, runID: runID, gate: gate, log) } }
    }

    static func answers(_ conn: PostgresConnection, runID: String, gate: String, _ log: Logger) async throws -> [ApprovalRecord] {
        try await conn.query("SELECT name, approve, at FROM approvals WHERE run = \(runID) AND gate = \(gate) ORDER BY seq", logger: log)
            .all((String, Bool, Date).self).map { ApprovalRecord(name: $0.0, approve: $0.1, at: $0.2) }
    }

    /// Gate ids waiting for answers.
    public func openGates(runID: String) throws -> [String] {
        try sync { try await $0.query("SELECT gate FROM gates WHERE run = \(runID) AND status = 'open' AND decision IS NULL ORDER BY gate").all(String.self) }
    }

    public func runsAwaitingApproval() throws -> Set<String> {
        Set(try sync { try await $0.query("SELECT DISTINCT run FROM gates WHERE status = 'open' AND decision IS NULL").all(String.self) })
    }

    /// Answers every undecided gate of `runID` as `name`, in one transaction with the run's gates
    /// locked: `ApprovalRules` decides from the gates and the answers given.
    public func answer(runID: String, approve: Bool, by name: String, via: String, now: Date) throws -> ApprovalReceipt {
        let log = logger
        let outcome: ApprovalRules.Outcome = try sync { client in
            try await client.withTransaction(logger: log) { conn in
                let gates = try await Self.gateRows(conn, runID: runID, log)
                let given = try await conn.query("""
                    SELECT a.gate, a.name, a.approve FROM approvals a JOIN gates g ON g.run = a.run AND g.gate = a.gate
                    WHERE a.run = \(runID) AND g.status = 'open' AND g.decision IS NULL ORDER BY a.seq
                    """, logger: log).all((String, String, Bool).self).map { ApprovalRules.Given(gate: $0.0, name: $0.1, approve: $0.2) }
                let ended = try await conn.query("SELECT outcome FROM runs WHERE id = \(runID)", logger: log).all(String?.self).first ?? nil
                let out = ApprovalRules.answer(runID: runID, gates: gates, given: given, approve: approve, by: name, outcome: ended, now: now)
                for gate in out.answerAt {
                    try await conn.query("INSERT INTO approvals (run, gate, name, approve, at, via) VALUES (\(runID), \(gate), \(name), \(approve), \(now), \(via))",
                                         logger: log).drain()
                }
                for d in out.decided {
                    try await conn.query("UPDATE gates SET decision = \(d.decision), decided_by = \(d.by), decided_at = \(now) WHERE run = \(runID) AND gate = \(d.gate)",
                                         logger: log).drain()
                }
                return out
            }
        }
        return try outcome.result.get()
    }

    /// Decides a gate timed out at its deadline unless something decided it first, in one
    /// transaction with the gate rows locked (nil: the stored deadline is after `now`).
    public func decideDeadline(runID: String, gate: String, now: Date) throws -> GateState? {
        let log = logger
        return try sync { client in
            try await client.withTransaction(logger: log) { conn -> GateState? in
                guard let g = try await Self.gateRows(conn, runID: runID, log).first(where: { $0.gate == gate }) else {
                    return GateState(answers: [], timedOut: true)
                }
                guard let verdict = ApprovalRules.deadline(g, now: now) else { return nil }
                if verdict.write {
                    try await conn.query("UPDATE gates SET decision = 'timed_out', decided_at = \(now) WHERE run = \(runID) AND gate = \(gate)", logger: log).drain()
                }
                return GateState(answers: try await Self.answers(conn, runID: runID, gate: gate, log), timedOut: verdict.timedOut)
            }
        }
    }

    /// Every gate of a run, locked until the transaction ends: answers to one run are decided one at a time.
    static func gateRows(_ conn: PostgresConnection, runID: String, _ log: Logger) async throws -> [ApprovalRules.GateRow] {
        try await conn.query("""
            SELECT gate, approvals, started_by, deadline, status, decision, decided_by, decided_at FROM gates
            WHERE run = \(runID) ORDER BY gate FOR UPDATE
            """, logger: log).all((String, Int, String?, Date, String, String?, String?, Date?).self).map {
            ApprovalRules.GateRow(gate: $0.0, needed: $0.1, startedBy: $0.2, deadline: $0.3, status: $0.4, decision: $0.5, decidedBy: $0.6, decidedAt: $0.7)
        }
    }
}
