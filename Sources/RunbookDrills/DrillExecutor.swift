import Foundation
import RunbookCore

/// Executes steps from a scenario: checks report their recorded outcome, changes are described and
/// never made, waits pass in simulated time. Nothing here starts a process, opens a socket or writes a file.
public final class DrillExecutor: StepExecutor, @unchecked Sendable {
    // `missing` is guarded by `lock`; everything else is immutable.
    let outcomes: [String: Scenario.Outcome]
    /// The scenario's starting flags (`state: { flags: ... }`); a flag not given is `?`.
    let flags: [String: String]
    /// Alarm ids: an alarm with no recorded outcome does not fire (it is not a missing check).
    let alarms: Set<String>
    private let lock = NSLock()
    private var missingSteps: [String] = []

    public init(outcomes: [String: Scenario.Outcome], flags: [String: String] = [:], alarms: Set<String> = []) {
        self.outcomes = outcomes
        self.flags = flags
        self.alarms = alarms
    }

    /// Checks the rehearsal reached that have no recorded outcome (the scenario is invalid).
    public var missing: [String] { lock.withLock { missingSteps } }

    public func execute(_ request: StepRequest, completion: @escaping @Sendable (StepResult) -> Void) -> any Cancellable {
        let step = request.step
        let recorded = outcomes[step.id]
        var duration = recorded?.duration ?? Self.naturalDuration(step.action)
        var result: StepResult
        if let recorded {
            // One host of an `across:` step gets its own recorded status (`{ web-3: failed, default: passed }`).
            let own = recorded.status(on: request.target?.host)
            let status: StepStatus = recorded.times.map { request.attempt <= $0 ? own : .passed } ?? own
            if status == .timedOut { duration = step.timeout + 1 }
            if step.action.isChange, status == .passed {
                result = wouldChange(step.action, request)
            } else {
                result = StepResult(status, recorded.message ?? "\(status.rawValue) (recorded outcome\(request.target.map { " on \($0.host)" } ?? ""), attempt \(request.attempt))", output: recorded.output)
            }
        } else if alarms.contains(step.id) {
            result = StepResult(.failed, "alarm quiet (no recorded outcome)")
        } else if step.action.kind == .check {
            lock.withLock { missingSteps.append(step.id) }
            result = StepResult(.failed, "no recorded outcome for check '\(step.id)'")
        } else if step.action.isChange {
            result = wouldChange(step.action, request)
        } else {
            result = StepResult(.passed, step.action.kind == .wait ? "waited \(Quantity.formatDuration(duration))" : "assumed passed (read-only, no recorded outcome)")
        }
        let final = result
        return request.scheduler.schedule(after: duration) { completion(final) }
    }

    public func undo(_ change: AppliedChange, action: Action?, request: StepRequest, completion: @escaping @Sendable (StepResult) -> Void) -> any Cancellable {
        let how = action.map { "would undo with \(ChangeText.describe($0, render: request.render))" } ?? "would restore \(change.what) to \(change.from)"
        return request.scheduler.schedule(after: 0) { completion(StepResult(.passed, how)) }
    }

    /// Time a step takes when the scenario does not say: its own wait or sampling window.
    static func naturalDuration(_ action: Action) -> Double {
        switch action.spec {
        case .wait(let seconds): return seconds
        case .check(.metricTrend(let trend)): return trend.window
        default: return 0
        }
    }

    /// The change a step would make, described without making it, in the live run's words. Nothing is
    /// read: a flag's current value comes from the scenario's `state`, else it is `?`.
    func wouldChange(_ action: Action, _ request: StepRequest) -> StepResult {
        let change = ChangeText.planned(action, render: request.render, flags: flags)
            ?? AppliedChange(what: GraphRenderer.summary(of: action), from: "", to: "", simulated: true)
        return StepResult(.wouldChange, "would change \(change.summary)", change: change)
    }
}
