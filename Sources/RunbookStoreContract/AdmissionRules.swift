import Foundation
import RunbookCore

/// What admission knows about one request when deciding it: taken from the `AdmissionSnapshot` a
/// store read for the whole batch, plus the requests decided before it.
public struct AdmissionFacts: Sendable {
    /// Another open run holds the request's lock key (and which one, when known).
    public var lockBusy = false
    public var lockHolder: String?
    /// Changes applied by any run within the breaker's window, oldest first.
    public var recentChanges: [Date] = []
    /// Open runs of the runbook, whatever their lock keys.
    public var active = 0
    /// Starts of earlier runs with the same lock key within `startsWindow`, oldest first.
    public var earlierStarts: [Date] = []

    public init() {}
}

/// The admission rules both stores apply, in order: a refusal decided before (params, auto), lock,
/// the change breaker, max_active, cooldown and max_runs, a freeze; then `--force`, which sets aside
/// what a human may override (never lock, max_active, params, auto or the breaker).
public enum AdmissionRules {
    /// Guards `--force` never overrides.
    static let neverOverridden: Set<String> = ["lock", "max_active", "params", "auto", "breaker"]

    /// The refusal that holds, and the one `--force` set aside.
    public static func decide(_ request: AdmissionRequest, facts: AdmissionFacts, now: Date)
        -> (refusal: GuardCheck.Refusal?, overridden: GuardCheck.Refusal?) {
        let runbook = request.runbook
        var refusal = request.refusal
        if request.checksGuards {
            if facts.lockBusy, let key = request.record.lockKey {
                refusal = GuardCheck.Refusal(guardName: "lock", until: nil,
                    message: "another run of \(runbook.name)\(facts.lockHolder.map { " (\($0))" } ?? "") holds lock '\(key)'; a lock is never overridden")
            }
            if refusal == nil, let breaker = request.maxChanges, facts.recentChanges.count >= breaker.count, let oldest = facts.recentChanges.first {
                let until = oldest.addingTimeInterval(breaker.per)
                refusal = GuardCheck.Refusal(guardName: "breaker", until: until,
                    message: "change breaker: \(facts.recentChanges.count) changes in the last \(Quantity.formatDuration(breaker.per)) (cap \(breaker.count)); next run allowed at \(TimelineEvent.timestamp(until))")
            }
            if refusal == nil, let cap = runbook.guards.maxActive, facts.active >= cap {
                refusal = GuardCheck.Refusal(guardName: "max_active", until: nil,
                    message: "max_active \(cap): \(facts.active) run\(facts.active == 1 ? " is" : "s are") already active for \(runbook.name); wait for one to end")
            }
            if refusal == nil, request.startsWindow > 0 {
                refusal = GuardCheck.evaluate(runbook.guards, now: now, starts: facts.earlierStarts)
            }
            if refusal == nil, let f = request.freeze { refusal = f }
        }
        if let r = refusal, request.force, !neverOverridden.contains(r.guardName) { return (nil, r) }
        return (refusal, nil)
    }
}
