import Foundation

/// Decides whether `cooldown` and `max_runs` let a run start now, from the start times of earlier runs
/// of the same runbook and lock key. (`lock` is a held lock, checked by the store, never here.)
public enum GuardCheck {
    /// A refusal: which guard, until when, and a sentence for the responder.
    public struct Refusal: Sendable, Equatable {
        public var guardName: String
        public var until: Date?
        public var message: String

        public init(guardName: String, until: Date?, message: String) {
            self.guardName = guardName
            self.until = until
            self.message = message
        }
    }

    /// - Parameter starts: start times of earlier counted runs (not refused, not dry runs, not drills).
    public static func evaluate(_ guards: Guards, now: Date, starts: [Date]) -> Refusal? {
        let sorted = starts.sorted()
        if let cooldown = guards.cooldown, let last = sorted.last, last.addingTimeInterval(cooldown) > now {
            let until = last.addingTimeInterval(cooldown)
            return Refusal(guardName: "cooldown", until: until,
                           message: "cooldown \(Quantity.formatDuration(cooldown)): the last run started \(Quantity.formatDuration(now.timeIntervalSince(last))) ago; next run allowed at \(TimelineEvent.timestamp(until))")
        }
        if let (count, per) = guards.maxRuns {
            let inWindow = sorted.filter { $0 > now.addingTimeInterval(-per) }
            if inWindow.count >= count, let oldest = inWindow.first {
                let until = oldest.addingTimeInterval(per)
                return Refusal(guardName: "max_runs", until: until,
                               message: "max_runs \(count) per \(Quantity.formatDuration(per)) reached (\(inWindow.count) runs); next run allowed at \(TimelineEvent.timestamp(until))")
            }
        }
        return nil
    }

    /// The lock key of a run: the rendered `guards.lock`, or nil when the runbook declares none.
    public static func lockKey(_ guards: Guards, params: [String: Value], runID: String) -> String? {
        guard let t = guards.lock else { return nil }
        return t.render(TemplateValues(params: params, runID: runID).lookup)
    }
}
