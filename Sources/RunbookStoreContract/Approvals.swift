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
        ApprovalError("\(name) started run \(runID) and cannot answer its own gate: another person must (runbook approve \(runID) from their own account, or POST /runs/\(runID)/approve with their token)")
    }
    public static func answered(_ name: String, approved: Bool, gate: String, _ runID: String) -> ApprovalError {
        ApprovalError("\(name) already \(approved ? "approved" : "denied") gate \(gate) of run \(runID): one person counts once")
    }
    /// Every gate of the run is decided: names the decision and who made it.
    public static func decided(_ g: ApprovalRules.GateRow, _ runID: String) -> ApprovalError {
        let at = g.decidedAt.map { " at \(TimelineEvent.timestamp($0))" } ?? ""
        let what: String = switch g.decision ?? g.status {
        case "approved": "was already approved by \(g.decidedBy ?? "its approvers")\(at)"
        case "denied", "declined": "was already denied\(g.decidedBy.map { " by \($0)" } ?? "")\(at)"
        case "timed_out": "timed out at its deadline \(TimelineEvent.timestamp(g.deadline)) before it had its approvals"
        default: "was closed: the run stopped"
        }
        return ApprovalError("run \(runID) is not waiting for approval: gate \(g.gate) \(what)")
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

/// The approvals transaction's decision, the same on both stores: a store reads the run's gates
/// and the answers at its undecided ones (locked), asks `answer`, and writes what it returns.
public enum ApprovalRules {
    /// A gate as read: open (`status` `open`) and undecided (`decision` nil) gates take answers.
    public struct GateRow: Sendable {
        public var gate: String
        public var needed: Int
        public var startedBy: String?
        public var deadline: Date
        /// `open`, or how the run closed it: `approved`, `declined`, `closed`.
        public var status: String
        /// How the store decided it (`approved`, `denied`, `timed_out`), by whom, when.
        public var decision: String?
        public var decidedBy: String?
        public var decidedAt: Date?

        public init(gate: String, needed: Int, startedBy: String?, deadline: Date, status: String,
                    decision: String? = nil, decidedBy: String? = nil, decidedAt: Date? = nil) {
            self.gate = gate
            self.needed = needed
            self.startedBy = startedBy
            self.deadline = deadline
            self.status = status
            self.decision = decision
            self.decidedBy = decidedBy
            self.decidedAt = decidedAt
        }

        /// Takes answers: open and not decided.
        public var undecided: Bool { status == "open" && decision == nil }
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
    /// A gate decided by this transaction.
    public struct Decided: Sendable, Equatable {
        public var gate: String
        /// `approved`, `denied` or `timed_out`.
        public var decision: String
        public var by: String?
    }
    /// What the transaction writes, and what the caller is told.
    public struct Outcome: Sendable {
        /// The gates to record the answer at (none when it is refused).
        public var answerAt: [String] = []
        /// Gates this transaction decided (a deadline passed is recorded even when the answer is refused).
        public var decided: [Decided] = []
        public var result: Result<ApprovalReceipt, ApprovalError>
    }

    /// How names compare: trimmed and case-folded the Unicode way (`Alice `, `ALICE` and `alice` are
    /// one person; so are `STRASSE` and `straße`, `ΣΊΣΥΦΟΣ` and `σίσυφος`).
    public static func identity(_ name: String) -> String {
        name.trimmingCharacters(in: .whitespacesAndNewlines).folding(options: [.caseInsensitive], locale: nil)
    }

    /// Decides an answer by `name` at every undecided gate of `runID`, at `now`. A gate whose stored
    /// deadline is at or before `now` is decided timed out first (the deadline came first).
    /// Refused (in `result`): the run waits at no gate (`outcome` is its row's), every gate is
    /// decided (named with who decided it), `name` started the run, or `name` already answered.
    public static func answer(runID: String, gates: [GateRow], given: [Given], approve: Bool, by name: String,
                              outcome: String?, now: Date) -> Outcome {
        var out = Outcome(result: .failure(.notWaiting(runID, outcome: outcome)))
        let expired = gates.filter { $0.undecided && $0.deadline <= now }
        out.decided = expired.map { Decided(gate: $0.gate, decision: "timed_out", by: nil) }
        let live = gates.filter { $0.undecided && $0.deadline > now }
        guard !live.isEmpty else {
            var last = gates.filter { $0.decision != nil || $0.status != "open" }
                .max { ($0.decidedAt ?? .distantPast, $0.gate) < ($1.decidedAt ?? .distantPast, $1.gate) }
            if let e = expired.last { last = e; last?.decision = "timed_out" }
            if let g = last, outcome == nil || g.decision != nil { out.result = .failure(.decided(g, runID)) }
            return out
        }
        let who = identity(name)
        var receipt = ApprovalReceipt(runID: runID, gates: [])
        var decided: [Decided] = []
        for g in live {
            if let starter = g.startedBy, identity(starter) == who {
                out.result = .failure(.ownRun(name, runID))
                return out
            }
            let here = given.filter { $0.gate == g.gate }
            if let earlier = here.first(where: { identity($0.name) == who }) {
                out.result = .failure(.answered(name, approved: earlier.approve, gate: g.gate, runID))
                return out
            }
            let approvers = here.filter(\.approve).map(\.name) + (approve ? [name] : [])
            receipt.gates.append((g.gate, approvers.count, g.needed))
            if !approve {
                decided.append(Decided(gate: g.gate, decision: "denied", by: name))
            } else if approvers.count >= g.needed {
                decided.append(Decided(gate: g.gate, decision: "approved", by: approvers.joined(separator: ", ")))
            }
        }
        out.answerAt = live.map(\.gate)
        out.decided += decided
        out.result = .success(receipt)
        return out
    }

    /// What the deadline transaction decides for a gate as read: nil while its deadline is after
    /// `now`; else whether the deadline decided it (now, or before), and the decision to write.
    public static func deadline(_ g: GateRow, now: Date) -> (timedOut: Bool, write: Bool)? {
        if let d = g.decision { return (d == "timed_out", false) }
        guard g.status == "open" else { return (true, false) }
        guard g.deadline <= now else { return nil }
        return (true, true)
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

    /// The store decides, in one transaction with the answers: see `RunDatabase.decideDeadline`.
    public func deadlinePassed(runID: String, gate: String, now: Date) throws -> GateState? {
        try store.decideDeadline(runID: runID, gate: gate, now: now)
    }
}
