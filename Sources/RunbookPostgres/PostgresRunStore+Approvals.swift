import Foundation
import Logging
import PostgresNIO
import RunbookCore
import RunbookStoreContract

/// Approval gates and the answers given at them (SPEC §6.9).
extension PostgresRunStore {
    public func openGate(runID: String, gate: GateRequest, startedBy: String?, resumable: Bool, now: Date) throws {
        let (id, n, deadline) = (gate.id, gate.gate.approvals, gate.deadline)
        try execute("""
            INSERT INTO gates (run, gate, approvals, deadline, started_by, resumable, status, opened)
            VALUES (\(runID), \(id), \(n), \(deadline), \(startedBy), \(resumable), 'open', \(now))
            ON CONFLICT (run, gate) DO UPDATE SET status = 'open', resumable = excluded.resumable
            """)
    }

    public func closeGate(runID: String, gate: String, status: String) throws {
        try execute("UPDATE gates SET status = \(status) WHERE run = \(runID) AND gate = \(gate)")
    }

    public func answers(runID: String, gate: String) throws -> [ApprovalRecord] {
        try sync { client in
            try await client.query("SELECT name, approve, at FROM approvals WHERE run = \(runID) AND gate = \(gate) ORDER BY at, name")
                .all((String, Bool, Date).self).map { ApprovalRecord(name: $0.0, approve: $0.1, at: $0.2) }
        }
    }

    public func openGates(runID: String) throws -> [String] {
        try sync { try await $0.query("SELECT gate FROM gates WHERE run = \(runID) AND status = 'open' ORDER BY gate").all(String.self) }
    }

    public func runsAwaitingApproval() throws -> Set<String> {
        Set(try sync { try await $0.query("SELECT DISTINCT run FROM gates WHERE status = 'open'").all(String.self) })
    }

    /// Answers every open gate of `runID` as `name`, in one transaction with the gates locked:
    /// `ApprovalRules` decides from the open gates and the answers given.
    public func answer(runID: String, approve: Bool, by name: String, via: String, now: Date) throws -> ApprovalReceipt {
        let log = logger
        let result: Result<ApprovalReceipt, ApprovalError> = try sync { client in
            try await client.withTransaction(logger: log) { conn in
                let gates = try await conn.query("SELECT gate, approvals, started_by FROM gates WHERE run = \(runID) AND status = 'open' ORDER BY gate FOR UPDATE",
                                                 logger: log).all((String, Int, String?).self)
                    .map { ApprovalRules.OpenGate(gate: $0.0, needed: $0.1, startedBy: $0.2) }
                let given = try await conn.query("""
                    SELECT a.gate, a.name, a.approve FROM approvals a JOIN gates g ON g.run = a.run AND g.gate = a.gate
                    WHERE a.run = \(runID) AND g.status = 'open'
                    """, logger: log).all((String, String, Bool).self).map { ApprovalRules.Given(gate: $0.0, name: $0.1, approve: $0.2) }
                let outcome = gates.isEmpty ? (try await conn.query("SELECT outcome FROM runs WHERE id = \(runID)", logger: log).all(String?.self).first ?? nil) : nil
                let receipt: ApprovalReceipt
                do {
                    receipt = try ApprovalRules.answer(runID: runID, gates: gates, given: given, approve: approve, by: name, outcome: outcome)
                } catch let e as ApprovalError {
                    return .failure(e)
                }
                for g in receipt.gates {
                    try await conn.query("INSERT INTO approvals (run, gate, name, approve, at, via) VALUES (\(runID), \(g.gate), \(name), \(approve), \(now), \(via))",
                                         logger: log).drain()
                }
                return .success(receipt)
            }
        }
        switch result {
        case .success(let receipt): return receipt
        case .failure(let e): throw e
        }
    }
}
