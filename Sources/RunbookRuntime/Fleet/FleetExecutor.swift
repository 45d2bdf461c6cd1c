import Foundation
import RunbookCore

/// Runs `across:` steps: each host is one attempt of the inner executor with `request.target` set
/// (the live executor runs it there over SSH; a drill looks up the host's recorded outcome), under
/// the rate control of `FleetPlanner`. Every other step goes straight to the inner executor.
public struct FleetExecutor: StepExecutor {
    let inner: any StepExecutor
    let runbook: Runbook
    /// `runbook run --dry-run`: hosts are listed with what would run there; none is contacted.
    let describeOnly: Bool

    /// - Parameters:
    ///   - describeOnly: true for a dry run (a drill rehearses hosts through `inner` instead).
    public init(inner: any StepExecutor, runbook: Runbook, describeOnly: Bool) {
        self.inner = inner
        self.runbook = runbook
        self.describeOnly = describeOnly
    }

    public func execute(_ request: StepRequest, completion: @escaping @Sendable (StepResult) -> Void) -> any Cancellable {
        guard let across = request.step.across else { return inner.execute(request, completion: completion) }
        let hosts = request.values.targets[across.targets] ?? []
        guard !hosts.isEmpty else {
            completion(StepResult(.errored, "targets.\(across.targets) resolved to no hosts"))
            return NothingToCancel()
        }
        let user = runbook.targetSet(across.targets)?.user
        if describeOnly {
            describe(request, hosts: hosts, across: across, user: user, completion: completion)
            return NothingToCancel()
        }
        let verify = across.canary?.verify.flatMap { runbook.step($0) }
        let run = FleetRun(request: request, hosts: hosts, user: user, across: across, verify: verify, inner: inner, completion: completion)
        run.start()
        return run
    }

    public func undo(_ change: AppliedChange, action: Action?, request: StepRequest, completion: @escaping @Sendable (StepResult) -> Void) -> any Cancellable {
        guard let host = change.target else { return inner.undo(change, action: action, request: request, completion: completion) }
        let user = request.step.across.flatMap { runbook.targetSet($0.targets)?.user }
        return inner.undo(change, action: action, request: Self.on(host, user: user, request), completion: completion)
    }

    /// The request for one host: its target, `{{ target.host }}`, no progress channel of its own.
    static func on(_ host: String, user: String?, _ request: StepRequest) -> StepRequest {
        var r = request
        r.target = FleetTarget(host: host, user: user)
        r.values.target = host
        r.report = nil
        return r
    }

    /// A dry run: every host, and what would run there; no host is contacted.
    func describe(_ request: StepRequest, hosts: [String], across: AcrossSpec, user: String?, completion: @escaping @Sendable (StepResult) -> Void) {
        let planner = FleetPlanner(hosts: hosts.count, across: across)
        let isChange = request.step.action.isChange
        for host in hosts {
            let r = Self.on(host, user: user, request)
            var e = TimelineEvent(time: request.scheduler.now, run: request.runID, event: "host.planned")
            e.target = host
            e.status = StepStatus.wouldChange.rawValue
            e.message = "would \(isChange ? "run" : "check") on \(host): \(ChangeText.describe(request.step.action, render: r.render))"
            request.report?(FleetProgress(event: e))
        }
        let how = "concurrency \(planner.concurrency), max_errors \(planner.maxErrors)\(across.ramp ? ", ramp" : "")"
            + (across.canary.map { ", canary \($0.hosts)\($0.verify.map { " then \($0)" } ?? "")" } ?? "")
        let message = "would \(isChange ? "run" : "check") on \(hosts.count) host\(hosts.count == 1 ? "" : "s") (\(how)): \(hosts.joined(separator: ", "))"
        let change = isChange ? AppliedChange(what: "\(GraphRenderer.summary(of: request.step.action)) on \(hosts.count) hosts", from: "", to: "", simulated: true) : nil
        completion(StepResult(.wouldChange, message, output: ["hosts": .number(Double(hosts.count))], change: change))
    }
}
