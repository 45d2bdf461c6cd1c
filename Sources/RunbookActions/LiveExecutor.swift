import Dispatch
import Foundation
import RunbookCore
import RunbookStoreContract

/// Performs steps for real (or, with `dryRun`, runs the read-only ones and describes the changes).
public struct LiveExecutor: StepExecutor {
    /// Where process and file work reports back; the driver hops onto its own queue after.
    let workQueue: DispatchQueue
    /// How `across:` steps reach their hosts.
    public var ssh: SSHSettings

    public init(workQueue: DispatchQueue = DispatchQueue(label: "runbook.work", attributes: .concurrent), ssh: SSHSettings = SSHSettings()) {
        self.workQueue = workQueue
        self.ssh = ssh
    }

    public func execute(_ request: StepRequest, completion: @escaping @Sendable (StepResult) -> Void) -> any Cancellable {
        perform(request.step.action, request, completion: completion)
    }

    public func undo(_ change: AppliedChange, action: Action?, request: StepRequest, completion: @escaping @Sendable (StepResult) -> Void) -> any Cancellable {
        if let action {
            if request.dryRun, action.isChange {
                completion(StepResult(.passed, "would undo with \(ChangeText.describe(action, render: request.render))"))
                return NothingToCancel()
            }
            return perform(action, request, completion: completion)
        }
        guard case .flagFile(let path, let key, let field, let previous) = change.automaticUndo else {
            completion(StepResult(.failed, "no way to undo \(change.summary)"))
            return NothingToCancel()
        }
        if request.dryRun || change.simulated {
            completion(StepResult(.passed, "would restore \(change.what) to \(change.from)"))
            return NothingToCancel()
        }
        workQueue.async {
            do {
                try FlagFile.set(path: path, key: key, field: field, newText: previous)
                var r = StepResult(.passed, "restored \(change.what): \(change.to) -> \(change.from) in \(path)")
                r.change = AppliedChange(what: change.what, from: change.to, to: change.from, location: path)
                completion(r)
            } catch {
                completion(StepResult(.failed, "undo of \(change.what) failed: \(error)"))
            }
        }
        return NothingToCancel()
    }

    func perform(_ action: Action, _ request: StepRequest, completion: @escaping @Sendable (StepResult) -> Void) -> any Cancellable {
        switch action.spec {
        case .wait(let seconds):
            // A dry run never sleeps.
            if request.dryRun {
                completion(StepResult(.wouldWait, "would wait \(Quantity.formatDuration(seconds))"))
                return NothingToCancel()
            }
            return request.scheduler.schedule(after: seconds) { completion(StepResult(.passed, "waited \(Quantity.formatDuration(seconds))")) }
        case .command(let c):
            return runCommand(c, request, isChange: action.isChange, completion: completion)
        case .check(let check):
            return perform(check, request, completion: completion)
        case .flag(let f):
            switch f.provider {
            case .file(let file): return setFlagFile(f, file: file, request, completion: completion)
            case .http(let h): return HTTPFlagAction.run(f, h, request, completion: completion)
            }
        case .restart(let r):
            return RestartAction.run(r, request, executor: self, queue: workQueue, completion: completion)
        case .notify(let n):
            return NotifyAction.run(n, request, completion: completion)
        }
    }

    /// Runs one check (a step's, or a restart's `ready`).
    func perform(_ check: CheckSpec, _ request: StepRequest, completion: @escaping @Sendable (StepResult) -> Void) -> any Cancellable {
        switch check {
        case .command(let c): return runCommand(c, request, isChange: false, completion: completion)
        case .http(let h): return HTTPCheck.run(h, request, completion: completion)
        case .tcp(let t): return TCPCheck.run(t, request, completion: completion)
        case .prometheus(let p): return PrometheusCheck.run(p, request, completion: completion)
        case .metricTrend(let m): return MetricTrendCheck.run(m, request, completion: completion)
        case .process(let p): return ProcessCheck.run(p, request, completion: completion)
        case .host(let h): return HostCheck.run(h, request, completion: completion)
        }
    }

    func runCommand(_ c: CommandSpec, _ request: StepRequest, isChange: Bool, completion: @escaping @Sendable (StepResult) -> Void) -> any Cancellable {
        let argv = c.argv.map(request.render)
        let shown = ChangeText.argv(argv)
        if request.dryRun, isChange {
            completion(StepResult(.wouldChange, "would run: \(shown)",
                                  change: AppliedChange(what: "command \(shown)", from: "", to: "", simulated: true)))
            return NothingToCancel()
        }
        var env: [String: String] = [:]
        for e in c.env { env[e.name] = request.render(e.value) }
        // Marks the run's processes, so whoever ends the run after its owner died kills what is left (`RunLeftovers`).
        env[RunLeftovers.variable] = RunLeftovers.mark(runID: request.runID, step: request.step.id)
        let cwd = c.cwd.map(request.render)
        let expected = c.exit
        let contains = c.stdoutContains.map(request.render)
        return spawn(argv, environment: env, cwd: cwd, request) { p in
            var output: [String: Value] = ["duration_ms": .number((p.duration * 1000).rounded())]
            if let code = p.exitCode { output["exit_code"] = .number(Double(code)) }
            output["stdout"] = .string(Self.excerpt(p.stdout, 1024).trimmingCharacters(in: .whitespacesAndNewlines))
            var r: StepResult
            if let why = p.spawnError {
                // A command that could not start measured nothing; a host never reached is errored.
                r = StepResult(isChange && request.target == nil ? .failed : .errored, why, output: output)
            } else if let sig = p.signal {
                r = StepResult(.failed, "killed by signal \(sig) after \(Quantity.formatDuration(p.duration))", output: output)
            } else if let code = p.exitCode, !expected.contains(Int(code)) {
                let last = p.stderr.split(separator: "\n").last.map { ": \($0)" } ?? ""
                r = StepResult(.failed, "exit \(code) (expected \(expected.map(String.init).joined(separator: " or ")))\(last)", output: output)
            } else if let contains, !p.stdout.contains(contains) {
                r = StepResult(.failed, "stdout does not contain '\(contains)'", output: output)
            } else {
                r = StepResult(.passed, "\(argv.first ?? ""): exit \(p.exitCode ?? 0) in \(Quantity.formatDuration(p.duration))", output: output)
                if isChange { r.change = AppliedChange(what: "command \(shown)", from: "", to: "") }
            }
            r.exitCode = p.exitCode.map(Int.init)
            r.stdout = p.stdout.isEmpty ? nil : Self.excerpt(p.stdout, 2048) + (p.truncated ? "\n[output truncated]" : "")
            r.stderr = p.stderr.isEmpty ? nil : Self.excerpt(p.stderr, 2048)
            completion(r)
        }
    }

    /// Keeps the head and tail of long text.
    static func excerpt(_ s: String, _ limit: Int) -> String {
        guard s.utf8.count > limit else { return s }
        let head = String(decoding: s.utf8.prefix(limit / 2), as: UTF8.self)
        let tail = String(decoding: s.utf8.suffix(limit / 2), as: UTF8.self)
        return head + "\n[… \(s.utf8.count - limit) bytes …]\n" + tail
    }

    func setFlagFile(_ f: FlagSpec, file: Template, _ request: StepRequest, completion: @escaping @Sendable (StepResult) -> Void) -> any Cancellable {
        let t = FlagFile.target(f, file: file, render: request.render)
        let (path, key, field, target, what) = (t.path, t.key, t.field, t.value, t.what)
        let dryRun = request.dryRun
        workQueue.async {
            guard let data = FileManager.default.contents(atPath: path) else {
                return completion(StepResult(.failed, "cannot read flag file \(path)"))
            }
            do {
                let (oldText, _) = try FlagFile.locate(in: data, key: key, field: field)
                let old = FlagFile.plain(oldText)
                if field == "defaultVariant", let variants = FlagFile.variants(in: data, key: key), !variants.contains(target) {
                    return completion(StepResult(.failed, "flag '\(key)' has no variant '\(target)' (it has: \(variants.joined(separator: ", ")))"))
                }
                let newText = String(decoding: try JSONEncoder().encode(target), as: UTF8.self)
                let output: [String: Value] = ["from": .string(old), "to": .string(target)]
                if dryRun {
                    let change = AppliedChange(what: what, from: old, to: target, location: path, simulated: true)
                    return completion(StepResult(.wouldChange, "would set \(change.summary)", output: output, change: change))
                }
                if old == target {
                    return completion(StepResult(.passed, "\(what) is already \(target) in \(path)", output: output))
                }
                try FlagFile.set(path: path, key: key, field: field, newText: newText)
                let change = AppliedChange(what: what, from: old, to: target, location: path,
                                           automaticUndo: .flagFile(path: path, key: key, field: field, previous: oldText))
                completion(StepResult(.passed, change.summary, output: output, change: change))
            } catch {
                completion(StepResult(.failed, "flag file \(path): \(error)"))
            }
        }
        return NothingToCancel()
    }
}
