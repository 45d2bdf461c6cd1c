import Dispatch
import Foundation
import RunbookActions
import RunbookCore
import RunbookStoreContract

/// What makes a server run wait for approval: `guards.auto: ask`, a freeze, the change breaker.
extension RunLauncher {
    /// Whether someone would hear of a paused run of `runbook`: it declares an `approvals_channel`, or
    /// asks before its changes (`guards.auto: ask`, so its team expects to approve).
    static func hasApprovalPath(_ runbook: Runbook) -> Bool {
        runbook.approvalsChannel != nil || runbook.guards.askBeforeChanges
    }

    /// Why a server run's changes must wait for approval when its first mitigate step is due:
    /// `guards.auto: ask` (alert runs), and, with an approval path, a freeze window. (The breaker is
    /// asked before each change step: `breakerCheck`.)
    func reasonsBeforeChanges(_ runbook: Runbook, alertRun: Bool) -> @Sendable (Date) -> [String] {
        let ask = alertRun && runbook.guards.askBeforeChanges
        let path = Self.hasApprovalPath(runbook)
        let freezes = self.freezes
        return { now in
            var reasons: [String] = []
            if ask { reasons.append("guards.auto: ask") }
            guard path else { return reasons }
            if let f = FreezeFile.refusal(freezes, at: now) { reasons.append("change freeze: \(f.message)") }
            return reasons
        }
    }

    /// `serve --max-changes N/PER`: why one more change would pass the cap now (nil: it may go on).
    func breakerCheck() -> (@Sendable (Date) -> String?)? {
        guard let b = maxChanges else { return nil }
        let store = self.store
        return { now in
            // A count that cannot be read is treated as over the cap: fail closed.
            let used = (try? store.changesApplied(since: now.addingTimeInterval(-b.per))) ?? b.count
            guard used >= b.count else { return nil }
            return "change breaker: \(used) change\(used == 1 ? "" : "s") in the last \(Quantity.formatDuration(b.per)) (cap \(b.count))"
        }
    }
}
