import Foundation
import RunbookCore

extension RunStore {
    /// The guards' verdict for a run about to start, and the lock it holds if admitted.
    public struct Admission {
        /// Held for the run when the runbook declares `guards.lock`; release it when the run ends.
        public var lock: RunLock?
        /// Why the run may not start, if it may not.
        public var refusal: GuardCheck.Refusal?
    }

    /// Checks `lock`, then `cooldown` and `max_runs`, against this store's history.
    /// A held lock is a refusal no one can override; the others the caller may override (`--force`).
    public func admit(_ runbook: Runbook, lockKey: String?, now: Date) -> Admission {
        var held: RunLock?
        if let key = lockKey {
            held = try? tryLock(runbook: runbook.name, key: key)
            if held == nil {
                return Admission(lock: nil, refusal: GuardCheck.Refusal(
                    guardName: "lock", until: nil, message: "another run of \(runbook.name) holds lock '\(key)'; a lock is never overridden"))
            }
        }
        let window = max(runbook.guards.cooldown ?? 0, runbook.guards.maxRuns?.per ?? 0)
        let earlier = window > 0 ? ((try? starts(runbook: runbook.name, lockKey: lockKey, since: now.addingTimeInterval(-window))) ?? []) : []
        return Admission(lock: held, refusal: GuardCheck.evaluate(runbook.guards, now: now, starts: earlier))
    }

    /// The events of a refused run: its start, the `guard.refused` with guard and until, and its end.
    public static func refusalEvents(start: TimelineEvent, refusal r: GuardCheck.Refusal) -> [TimelineEvent] {
        var e = TimelineEvent(time: start.time, run: start.run, event: "guard.refused")
        e.guardName = r.guardName
        e.until = r.until
        e.message = r.message
        var end = TimelineEvent(time: start.time, run: start.run, event: "run.finished")
        end.outcome = RunOutcome.refused.rawValue
        end.durationMs = 0
        end.message = "refused by guard \(r.guardName)"
        return [start, e, end]
    }
}
