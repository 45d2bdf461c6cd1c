import Foundation
import RunbookCore
import RunbookStoreContract

/// A run's `ChangeFacts` from its `ChangeApprovalRule`: `guards.auto: ask` and freeze windows say
/// why its changes wait; `serve --max-changes` reserves and gives back places in the store.
struct RuleChangeFacts: ChangeFacts {
    let reasons: @Sendable (Date) -> [String]
    let reserve: (@Sendable (Date) -> String?)?
    let release: (@Sendable () -> Void)?

    /// - Parameters:
    ///   - alertRun: an alert's run (`guards.auto: ask` applies to these only).
    ///   - store: where the breaker's window is kept (none: no breaker).
    init(_ rule: ChangeApprovalRule, runbook: Runbook, alertRun: Bool, store: (any RunDatabase)?, runID: String) {
        reasons = rule.reasonsBeforeChanges(runbook, alertRun: alertRun)
        reserve = rule.breakerCheck(store: store, runID: runID)
        release = rule.breakerRelease(store: store, runID: runID)
    }

    /// Whether the run has a breaker to reserve places in.
    var hasBreaker: Bool { reserve != nil }

    func reasonsBeforeChanges(now: Date) -> [String] { reasons(now) }

    func reserveChange(now: Date) -> String? { reserve?(now) }

    func releaseChange() { release?() }
}
