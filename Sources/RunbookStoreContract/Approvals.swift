import Foundation
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

/// The approvals transaction's decision, the same on both stores: a store reads the run's open
/// gates and their answers (locked), asks `answer`, and writes the answers it returns.
public enum ApprovalRules {
    /// An open gate as read.
    public struct OpenGate: Sendable {
        public var gate: String
        public var needed: Int
        public var startedBy: String?
        public init(gate: String, needed: Int, startedBy: String?) {
            self.gate = gate
            self.needed = needed
            self.startedBy = startedBy
        }
    }
    /// An answer already given at a gate.
    public struct Given: Sendable {
        public var gate: String
        public var name: String
        public var approve: Bool
        public init(gate: String, name: String, approve: Bool) {
            self.gate = gate
            self.name = name
            self.approve = approve
        }
    }

    /// How names compare: trimmed and case-folded (`Alice ` and `alice` are one person).
    public static func identity(_ name: String) -> String {
        name.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    }

    /// Decides an answer by `name` at every open gate of `runID`.
    /// - Returns: the receipt, and the gates to record the answer at (in order).
    /// - Throws: `ApprovalError` when the run waits at no gate (`outcome` is its row's), when `name`
    ///   started the run, or when `name` already answered one of the gates.
    public static func answer(runID: String, gates: [OpenGate], given: [Given], approve: Bool, by name: String,
                              outcome: String?) throws -> ApprovalReceipt {
        guard !gates.isEmpty else { throw ApprovalError.notWaiting(runID, outcome: outcome) }
        let who = identity(name)
        var receipt = ApprovalReceipt(runID: runID, gates: [])
        for g in gates {
            if let starter = g.startedBy, identity(starter) == who { throw ApprovalError.ownRun(name, runID) }
            let here = given.filter { $0.gate == g.gate }
            if let earlier = here.first(where: { identity($0.name) == who }) {
                throw ApprovalError.answered(name, approved: earlier.approve, gate: g.gate, runID)
            }
            let approvals = here.filter(\.approve).count + (approve ? 1 : 0)
            receipt.gates.append((g.gate, approvals, g.needed))
        }
        return receipt
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
