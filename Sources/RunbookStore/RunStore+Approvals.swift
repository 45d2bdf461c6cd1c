import Foundation
import GRDB
import RunbookCore

/// Why an answer at a gate was not recorded.
public struct ApprovalError: Error, Sendable, CustomStringConvertible {
    public var description: String
    /// `approve` exits 1 for these (the answer is not taken); unknown runs are usage errors.
    public init(_ description: String) { self.description = description }

    public static func notWaiting(_ runID: String, outcome: String?) -> ApprovalError {
        ApprovalError("run \(runID) is not waiting for approval" + (outcome.map { " (it ended \($0))" } ?? " (see runbook timeline \(runID))"))
    }
    public static func ownRun(_ name: String, _ runID: String) -> ApprovalError {
        ApprovalError("\(name) started run \(runID) and cannot answer its own gate: another person must (runbook approve \(runID) --as THEIR-NAME)")
    }
    public static func answered(_ name: String, approved: Bool, gate: String, _ runID: String) -> ApprovalError {
        ApprovalError("\(name) already \(approved ? "approved" : "denied") gate \(gate) of run \(runID): one person counts once")
    }

    /// `name` trimmed when it may be recorded as an approver (1 to 100 characters, none a control
    /// character), else nil.
    public static func approverName(_ name: String) -> String? {
        let n = name.trimmingCharacters(in: .whitespaces)
        guard !n.isEmpty, n.count <= 100, !n.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else { return nil }
        return n
    }
}

/// What an answer did.
public struct ApprovalReceipt: Sendable {
    public var runID: String
    /// The gates answered, each with the approvals it has now and needs.
    public var gates: [(gate: String, approvals: Int, needed: Int)]

    public init(runID: String, gates: [(gate: String, approvals: Int, needed: Int)]) {
        self.runID = runID
        self.gates = gates
    }
}

extension RunStore {
    /// Records that a gate is open (or finds it open from before a restart, keeping its deadline).
    public func openGate(runID: String, gate: GateRequest, startedBy: String?, resumable: Bool, now: Date) throws {
        try pool.write { db in
            try db.execute(sql: """
                INSERT INTO gates (run, gate, approvals, deadline, started_by, resumable, status, opened) VALUES (?, ?, ?, ?, ?, ?, 'open', ?)
                ON CONFLICT (run, gate) DO UPDATE SET status = 'open', resumable = excluded.resumable
                """, arguments: [runID, gate.id, gate.gate.approvals, gate.deadline, startedBy, resumable, now])
        }
    }

    /// Closes a gate: `approved`, `declined` or `closed`.
    public func closeGate(runID: String, gate: String, status: String) throws {
        try pool.write { db in
            try db.execute(sql: "UPDATE gates SET status = ? WHERE run = ? AND gate = ?", arguments: [status, runID, gate])
        }
    }

    /// The answers recorded at a gate, oldest first.
    public func answers(runID: String, gate: String) throws -> [ApprovalRecord] {
        try pool.read { db in
            try Row.fetchAll(db.cachedStatement(sql: "SELECT name, approve, at FROM approvals WHERE run = ? AND gate = ? ORDER BY at, rowid"),
                             arguments: [runID, gate]).map { ApprovalRecord(name: $0["name"], approve: $0["approve"], at: $0["at"]) }
        }
    }

    /// Gate ids open for a run.
    public func openGates(runID: String) throws -> [String] {
        try pool.read { db in try String.fetchAll(db, sql: "SELECT gate FROM gates WHERE run = ? AND status = 'open' ORDER BY gate", arguments: [runID]) }
    }

    /// Runs waiting for approval now, for `/runs`.
    public func runsAwaitingApproval() throws -> Set<String> {
        try pool.read { db in Set(try String.fetchAll(db, sql: "SELECT DISTINCT run FROM gates WHERE status = 'open'")) }
    }

    /// Answers every open gate of `runID` as `name` (`runbook approve`, `POST /runs/ID/approve|deny`),
    /// in one transaction. Refused (`ApprovalError`) when the run waits at no gate, when `name`
    /// started the run, or when `name` already answered the gate.
    public func answer(runID: String, approve: Bool, by name: String, via: String, now: Date) throws -> ApprovalReceipt {
        do {
            return try pool.write { db -> ApprovalReceipt in
                let rows = try Row.fetchAll(db, sql: "SELECT gate, approvals, started_by FROM gates WHERE run = ? AND status = 'open' ORDER BY gate", arguments: [runID])
                guard !rows.isEmpty else {
                    let outcome = try String.fetchOne(db, sql: "SELECT outcome FROM runs WHERE id = ?", arguments: [runID])
                    throw ApprovalError.notWaiting(runID, outcome: outcome)
                }
                var receipt = ApprovalReceipt(runID: runID, gates: [])
                for row in rows {
                    let gate: String = row["gate"]
                    if let starter: String = row["started_by"], starter == name {
                        throw ApprovalError.ownRun(name, runID)
                    }
                    if let earlier = try Bool.fetchOne(db, sql: "SELECT approve FROM approvals WHERE run = ? AND gate = ? AND name = ?", arguments: [runID, gate, name]) {
                        throw ApprovalError.answered(name, approved: earlier, gate: gate, runID)
                    }
                    try db.execute(sql: "INSERT INTO approvals (run, gate, name, approve, at, via) VALUES (?, ?, ?, ?, ?, ?)",
                                   arguments: [runID, gate, name, approve, now, via])
                    let count = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM approvals WHERE run = ? AND gate = ? AND approve = 1", arguments: [runID, gate]) ?? 0
                    receipt.gates.append((gate, count, row["approvals"]))
                }
                return receipt
            }
        } catch let e as ApprovalError {
            throw e
        } catch {
            throw StoreError(path: directory + "/runbook.sqlite", error)
        }
    }

    /// Open runs that wait only for approval with their owner gone, for a server to resume: each
    /// has an open gate opened by a server (`resumable`) and no step started and not finished.
    /// A paused run whose deadline passed more than a day ago is left to be finalised.
    public func pausedRunIDs(now: Date = Date()) throws -> [String] {
        let candidates = try pool.read { db in
            try String.fetchAll(db, sql: """
                SELECT DISTINCT g.run FROM gates g JOIN runs r ON r.id = g.run
                WHERE g.status = 'open' AND g.resumable = 1 AND r.outcome IS NULL AND g.deadline > ?
                """, arguments: [now.addingTimeInterval(-86_400)])
        }
        return candidates.filter { id in
            let events = timeline(id)
            if events.contains(where: { $0.event == "run.finished" }) { return false }
            var inFlight = Set<String>()
            for e in events {
                if e.event == "step.started", let s = e.step { inFlight.insert(s) }
                if e.event == "step.finished", let s = e.step { inFlight.remove(s) }
            }
            return inFlight.isEmpty
        }
    }

    /// Takes over a paused run whose owner is gone: its lease, or nil while someone holds it.
    public func takePausedRun(_ runID: String) -> RunLease? {
        guard let lease = RunLease.takeIfFree(path: leasePath(runID)) else { return nil }
        if lease.isPlaceholder {
            lease.release(removing: false)
            return try? RunLease.take(path: leasePath(runID))
        }
        return lease
    }
}

/// Gates recorded in the store: `runbook approve` and the server answer them, the run polls.
public struct StoreApprovalDesk: ApprovalDesk {
    let store: any RunDatabase
    /// Who started the run: that name cannot answer its gates.
    let startedBy: String?
    /// A server's run (resumed by the next server if this one stops while it waits).
    let resumable: Bool

    public init(store: any RunDatabase, startedBy: String?, resumable: Bool) {
        self.store = store
        self.startedBy = startedBy
        self.resumable = resumable
    }

    public func open(runID: String, gate: GateRequest) throws {
        try store.openGate(runID: runID, gate: gate, startedBy: startedBy, resumable: resumable, now: Date())
    }

    public func watch(runID: String, gate: String, answers: @escaping @Sendable ([ApprovalRecord]) -> Void) -> any Cancellable {
        let store = self.store
        return ApprovalPoller(read: { try? store.answers(runID: runID, gate: gate) }, answers: answers)
    }

    public func close(runID: String, gate: String, status: String) {
        try? store.closeGate(runID: runID, gate: gate, status: status)
    }
}
