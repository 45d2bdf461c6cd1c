import Foundation
import RunbookCore
import RunbookStoreContract

/// When a run's changes wait for approval instead of being refused: one rule for the server (alert
/// runs and `/hooks/run`), resume and takeover, and drills (which rehearse the server's path).
public struct ChangeApprovalRule: Sendable {
    /// Whether a paused run may wait for someone (the server, drills) or must be refused at once (`runbook run`).
    public var mayPause: Bool
    /// Change freeze windows in force at a time, as a refusal (`--freeze FILE`, a drill scenario's `freeze`).
    public var freeze: @Sendable (Date) -> GuardCheck.Refusal?
    /// `serve --max-changes N/PER`.
    public var maxChanges: (count: Int, per: Double)?

    /// - Parameters:
    ///   - mayPause: true where someone can answer a paused run (a server, a drill's approvers).
    public init(mayPause: Bool, freeze: @escaping @Sendable (Date) -> GuardCheck.Refusal? = { _ in nil }, maxChanges: (count: Int, per: Double)? = nil) {
        self.mayPause = mayPause
        self.freeze = freeze
        self.maxChanges = maxChanges
    }

    /// A rule over freeze windows read from a file.
    public static func windows(_ windows: [FreezeWindow], mayPause: Bool, maxChanges: (count: Int, per: Double)? = nil) -> ChangeApprovalRule {
        ChangeApprovalRule(mayPause: mayPause, freeze: { windows.isEmpty ? nil : FreezeFile.refusal(windows, at: $0) }, maxChanges: maxChanges)
    }

    /// Whether someone would hear of a paused run of `runbook`: it declares an `approvals_channel`, or
    /// asks before its changes (`guards.auto: ask`, so its team expects to approve).
    public static func hasApprovalPath(_ runbook: Runbook) -> Bool {
        runbook.approvalsChannel != nil || runbook.guards.askBeforeChanges
    }

    /// Whether runs of `runbook` pause for approval (breaker, freeze) rather than being refused.
    public func pauses(_ runbook: Runbook) -> Bool { mayPause && Self.hasApprovalPath(runbook) }

    /// What admission checks besides the runbook's guards: a freeze and the breaker refuse a run
    /// that cannot pause for them (a freeze only holds runbooks with a change step).
    public func admissionChecks(_ runbook: Runbook, now: Date) -> (freeze: GuardCheck.Refusal?, maxChanges: (count: Int, per: Double)?) {
        guard !pauses(runbook) else { return (nil, nil) }
        let freeze = runbook.steps.contains(where: { $0.action.isChange }) ? self.freeze(now) : nil
        return (freeze, maxChanges)
    }

    /// Why the run's changes must wait for approval when its first mitigate step is due:
    /// `guards.auto: ask` (alert runs), and, for runs that may pause, a freeze window.
    public func reasonsBeforeChanges(_ runbook: Runbook, alertRun: Bool) -> @Sendable (Date) -> [String] {
        let ask = alertRun && runbook.guards.askBeforeChanges
        let pauses = pauses(runbook)
        let freeze = self.freeze
        return { now in
            var reasons: [String] = []
            if ask { reasons.append("guards.auto: ask") }
            guard pauses else { return reasons }
            if let f = freeze(now) { reasons.append("change freeze: \(f.message)") }
            return reasons
        }
    }

    /// `serve --max-changes N/PER`, for run `runID`: before each change step, reserve its place in
    /// the window (in the store, in one transaction with the count, so that no two runs on any
    /// replica take the last place); nil when reserved, else why the change would pass the cap.
    public func breakerCheck(store: (any RunDatabase)?, runID: String) -> (@Sendable (Date) -> String?)? {
        guard let b = maxChanges, let store else { return nil }
        return { now in
            // A reservation that cannot be made is treated as over the cap: fail closed.
            switch (try? store.reserveChange(runID: runID, cap: b.count, per: b.per, now: now)) ?? .full(used: b.count) {
            case .reserved: return nil
            case .full(let used):
                return "change breaker: \(used) change\(used == 1 ? "" : "s") in the last \(Quantity.formatDuration(b.per)) (cap \(b.count))"
            }
        }
    }

    /// Gives back a place `breakerCheck` reserved for a change that was not applied.
    public func breakerRelease(store: (any RunDatabase)?, runID: String) -> (@Sendable () -> Void)? {
        guard maxChanges != nil, let store else { return nil }
        return { try? store.releaseChange(runID: runID) }
    }
}
