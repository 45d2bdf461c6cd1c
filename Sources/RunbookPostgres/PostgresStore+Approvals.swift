import Foundation
import Logging
import PostgresNIO
import RunbookCore
import RunbookStore

/// Approval gates and the answers given at them (SPEC §6.9).
extension PostgresStore {
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

    public func answer(runID: String, approve: Bool, by name: String, via: String, now: Date) throws -> ApprovalReceipt {
        let log = logger
        let result: Result<[ApprovalReceiptGate], ApprovalError> = try sync { client in
            try await client.withTransaction(logger: log) { conn in
                let rows = try await conn.query("SELECT gate, approvals, started_by FROM gates WHERE run = \(runID) AND status = 'open' ORDER BY gate FOR UPDATE",
                                                logger: log).all((String, Int, String?).self)
                guard !rows.isEmpty else {
                    let outcome = try await conn.query("SELECT outcome FROM runs WHERE id = \(runID)", logger: log).all(String?.self).first ?? nil
                    return .failure(ApprovalError.notWaiting(runID, outcome: outcome))
                }
                var gates: [ApprovalReceiptGate] = []
                for (gate, needed, starter) in rows {
                    if starter == name { return .failure(ApprovalError.ownRun(name, runID)) }
                    if let earlier = try await conn.query("SELECT approve FROM approvals WHERE run = \(runID) AND gate = \(gate) AND name = \(name)",
                                                          logger: log).all(Bool.self).first {
                        return .failure(ApprovalError.answered(name, approved: earlier, gate: gate, runID))
                    }
                    try await conn.query("INSERT INTO approvals (run, gate, name, approve, at, via) VALUES (\(runID), \(gate), \(name), \(approve), \(now), \(via))",
                                         logger: log).drain()
                    let count = try await conn.query("SELECT count(*) FROM approvals WHERE run = \(runID) AND gate = \(gate) AND approve",
                                                     logger: log).all(Int.self).first ?? 0
                    gates.append(ApprovalReceiptGate(gate: gate, approvals: count, needed: needed))
                }
                return .success(gates)
            }
        }
        switch result {
        case .success(let gates): return ApprovalReceipt(runID: runID, gates: gates.map { ($0.gate, $0.approvals, $0.needed) })
        case .failure(let e): throw e
        }
    }
}
