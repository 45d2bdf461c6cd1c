import Dispatch
import Foundation
import RunbookCore

/// The `restart` change: run the restart, prove the old process went and a new one came, then
/// retry the `ready` check until it passes. Not coming back ready is a failed step with the evidence.
enum RestartAction {
    /// How to restart and how to learn the pid, per provider.
    struct Plan: Sendable {
        var name: String
        var restart: [String]
        var env: [String: String] = [:]
        var cwd: String?
        var followUp: [String]?
        var pidfile: String?
        var pidQuery: [String]?
    }

    static func plan(_ c: RestartSpec, _ request: StepRequest) -> Plan {
        let pidfile = c.pidfile.map(request.render)
        switch c.provider {
        case .supervisor(let program, let config, let server):
            let name = request.render(program)
            var base = ["supervisorctl"]
            if let config { base += ["-c", request.render(config)] }
            if let server { base += ["-s", request.render(server)] }
            return Plan(name: name, restart: base + ["restart", name], pidfile: pidfile, pidQuery: base + ["pid", name])
        case .systemd(let unitTemplate):
            let unit = request.render(unitTemplate)
            return Plan(name: unit, restart: ["systemctl", "restart", unit], pidfile: pidfile,
                        pidQuery: ["systemctl", "show", "--property=MainPID", "--value", unit])
        case .kubernetes(let targetTemplate, let namespace):
            let target = request.render(targetTemplate)
            let ns = namespace.map { ["--namespace", request.render($0)] } ?? []
            let secs = max(1, Int(request.step.timeout - 1))
            return Plan(name: target, restart: ["kubectl", "rollout", "restart", target] + ns,
                        followUp: ["kubectl", "rollout", "status", target, "--timeout=\(secs)s"] + ns)
        case .command(let cmd):
            var env: [String: String] = [:]
            for e in cmd.env { env[e.name] = request.render(e.value) }
            let name = ChangeText.restartName(c, render: request.render)
            return Plan(name: name, restart: cmd.argv.map(request.render), env: env, cwd: cmd.cwd.map(request.render), pidfile: pidfile)
        }
    }

    static func run(_ c: RestartSpec, _ request: StepRequest, executor: LiveExecutor, queue: DispatchQueue,
                    completion: @escaping @Sendable (StepResult) -> Void) -> any Cancellable {
        let plan = plan(c, request)
        let what = "restart \(plan.name)"
        if request.dryRun {
            completion(StepResult(.wouldChange, "would run: \(plan.restart.joined(separator: " "))\(c.ready != nil ? ", then wait until ready" : "")",
                                  change: AppliedChange(what: what, from: "", to: "", simulated: true)))
            return NothingToCancel()
        }
        let op = StepOperation(completion: completion)
        let started = Date()
        // Finish a little before the step's timeout, so the evidence reaches the timeline rather than a bare "timed out".
        let deadline = started.addingTimeInterval(max(0.5, request.step.timeout - min(1, request.step.timeout * 0.1)))
        let ready = c.ready.map { Action(.check($0), readOnly: true) }

        // On a host of an `across:` step the pid is read there, and "still running" is not asked here.
        let remote = request.target != nil
        @Sendable func currentPid(_ then: @escaping @Sendable (Int32?) -> Void) {
            if let f = plan.pidfile, !remote { return then(ProcFS.pid(fromFile: f)) }
            guard let q = remote ? plan.pidfile.map({ ["cat", $0] }) ?? plan.pidQuery : plan.pidQuery else { return then(nil) }
            op.track(executor.spawn(q, request) { r in
                then(Int32(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)).flatMap { $0 > 0 ? $0 : nil })
            })
        }

        @Sendable func fail(_ message: String, _ output: [String: Value] = [:]) { op.finish(StepResult(.failed, "\(what): \(message)", output: output)) }

        currentPid { oldPid in
            op.track(executor.spawn(plan.restart, environment: plan.env, cwd: plan.cwd, request) { r in
                guard !op.isCancelled else { return }
                if let e = r.spawnError { return fail(e) }
                guard r.exitCode == 0 else {
                    let why = (r.stderr.isEmpty ? r.stdout : r.stderr).split(separator: "\n").last.map(String.init) ?? ""
                    return fail("\(plan.restart.first ?? "") exited \(r.exitCode.map(String.init) ?? "on signal \(r.signal ?? 0)")\(why.isEmpty ? "" : ": \(why)")")
                }
                afterRestart(oldPid)
            })
        }

        @Sendable func afterRestart(_ oldPid: Int32?) {
            if let follow = plan.followUp {
                op.track(executor.spawn(follow, request) { r in
                    guard r.exitCode == 0 else { return fail("rollout status: \(r.stderr.split(separator: "\n").last ?? "exit \(r.exitCode ?? -1)")") }
                    waitForNewPid(oldPid)
                })
            } else {
                waitForNewPid(oldPid)
            }
        }

        @Sendable func waitForNewPid(_ oldPid: Int32?) {
            // A service manager that reported no pid before (systemd's MainPID=0) gives no pid to follow.
            guard plan.pidfile != nil || (plan.pidQuery != nil && oldPid != nil) else { return waitReady(oldPid, nil) }
            currentPid { pid in
                if let pid, pid != oldPid, remote || ProcFS.isRunning(pid) {
                    if let oldPid, !remote, ProcFS.isRunning(oldPid) {
                        return retry(after: 0.1, "old pid \(oldPid) still running") { waitForNewPid(oldPid) }
                    }
                    return waitReady(oldPid, pid)
                }
                retry(after: 0.1, "no new pid (still \(pid.map(String.init) ?? "none"))") { waitForNewPid(oldPid) }
            }
        }

        @Sendable func waitReady(_ oldPid: Int32?, _ newPid: Int32?) {
            let pids = "pid \(oldPid.map(String.init) ?? "?") -> \(newPid.map(String.init) ?? "?")"
            guard let ready else { return succeed(oldPid, newPid, pids) }
            var readyRequest = request
            readyRequest.step.action = ready
            readyRequest.step.timeout = max(0.5, min(5, deadline.timeIntervalSinceNow))
            op.track(executor.perform(ready, readyRequest) { r in
                if r.status == .passed { return succeed(oldPid, newPid, pids) }
                retry(after: 0.25, "\(pids), not ready: \(r.message)") { waitReady(oldPid, newPid) }
            })
        }

        @Sendable func succeed(_ oldPid: Int32?, _ newPid: Int32?, _ pids: String) {
            let took = Date().timeIntervalSince(started)
            var output: [String: Value] = ["ready_ms": .number((took * 1000).rounded())]
            if let oldPid { output["old_pid"] = .number(Double(oldPid)) }
            if let newPid { output["new_pid"] = .number(Double(newPid)) }
            let change = oldPid != nil || newPid != nil
                ? AppliedChange(what: what, from: oldPid.map { "pid \($0)" } ?? "?", to: newPid.map { "pid \($0)" } ?? "?")
                : AppliedChange(what: what, from: "", to: "")
            op.finish(StepResult(.passed, "\(what): \(pids), ready in \(Quantity.formatDuration(took))", output: output, change: change))
        }

        @Sendable func retry(after delay: Double, _ problem: String, _ next: @escaping @Sendable () -> Void) {
            if Date().addingTimeInterval(delay) >= deadline {
                return fail("not back after \(Quantity.formatDuration(Date().timeIntervalSince(started))): \(problem)")
            }
            op.track(request.scheduler.schedule(after: delay, next))
        }
        return op
    }
}
