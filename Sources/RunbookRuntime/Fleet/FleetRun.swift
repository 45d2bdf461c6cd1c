import Foundation
import RunbookCore

/// One attempt of an `across:` step: carries out `FleetPlanner`'s actions, gives each host its own
/// timeout (the step's `timeout`, per host), reports every host's start, result and change, and
/// completes once with the step's result. Cancelling it (the run stopped) cancels the hosts in
/// flight and starts no more.
final class FleetRun: HaltableAttempt, @unchecked Sendable {
    // Everything mutable is guarded by `lock`; nothing is called out while holding it.
    private let lock = NSLock()
    let request: StepRequest
    let hosts: [String]
    let user: String?
    let verify: Step?
    let inner: any StepExecutor
    private var planner: FleetPlanner
    private var completion: (@Sendable (StepResult) -> Void)?
    private var inFlight: [Int: [any Cancellable]] = [:]
    private var startedAt: [Int: Date] = [:]
    private var pending: [any Cancellable] = []
    private var verifyLeft = 0
    private var verifyProblems: [String] = []
    private var cancelled = false
    private var statuses: [Int: StepStatus] = [:]

    init(request: StepRequest, hosts: [String], user: String?, across: AcrossSpec, verify: Step?, inner: any StepExecutor,
         completion: @escaping @Sendable (StepResult) -> Void) {
        self.request = request
        self.hosts = hosts
        self.user = user
        self.verify = verify
        self.inner = inner
        self.completion = completion
        self.planner = FleetPlanner(hosts: hosts.count, across: across)
    }

    func start() {
        var e = event("fleet.started")
        let p = planner
        e.message = "\(hosts.count) host\(hosts.count == 1 ? "" : "s") from targets.\(request.step.across?.targets ?? ""): \(hosts.joined(separator: ", ")) (concurrency \(p.concurrency), max_errors \(p.maxErrors))"
        e.output = ["hosts": .number(Double(hosts.count)), "concurrency": .number(Double(p.concurrency)), "max_errors": .number(Double(p.maxErrors))]
        request.report?(FleetProgress(event: e))
        perform(lock.withLock { planner.begin() })
    }

    func cancel() {
        let handles = lock.withLock { () -> [any Cancellable] in
            cancelled = true
            completion = nil
            _ = planner.halt("stopped")
            defer { inFlight.removeAll(); pending.removeAll() }
            return inFlight.values.flatMap { $0 } + pending
        }
        handles.forEach { $0.cancel() }
    }

    func halt(_ why: String) {
        perform(lock.withLock { cancelled ? [] : planner.halt(why) })
    }

    func event(_ name: String, target: String? = nil) -> TimelineEvent {
        var e = TimelineEvent(time: request.scheduler.now, run: request.runID, event: name)
        e.target = target
        return e
    }

    private func perform(_ actions: [FleetPlanner.Action]) {
        for action in actions {
            switch action {
            case .start(let i): startHost(i)
            case .verify(let list): startVerify(list)
            case .pause(let seconds):
                var e = event("fleet.paused")
                e.message = "pause \(Quantity.formatDuration(seconds)) before the next batch"
                request.report?(FleetProgress(event: e))
                let timer = request.scheduler.schedule(after: seconds) { [self] in
                    perform(lock.withLock { cancelled ? [] : planner.pauseEnded() })
                }
                lock.withLock { pending.append(timer) }
            case .finished(let passed, let message): finish(passed: passed, message: message)
            }
        }
    }

    private func startHost(_ i: Int) {
        let host = hosts[i]
        let hostRequest = FleetExecutor.on(host, user: user, request)
        let go = lock.withLock { () -> Bool in
            guard !cancelled else { return false }
            startedAt[i] = request.scheduler.now
            return true
        }
        guard go else { return }
        var e = event("host.started", target: host)
        e.output = counts()
        request.report?(FleetProgress(event: e))
        let timeout = request.step.timeout
        let timer = request.scheduler.schedule(after: timeout) { [self] in
            hostEnded(i, StepResult(.timedOut, "timed out after \(Quantity.formatDuration(timeout)) on \(host); its command was stopped"))
        }
        lock.withLock { inFlight[i] = [timer] }
        let handle = inner.execute(hostRequest) { [self] result in hostEnded(i, result) }
        let late = lock.withLock { () -> Bool in
            guard inFlight[i] != nil else { return true }
            inFlight[i]?.append(handle)
            return false
        }
        if late, cancelled { handle.cancel() }
    }

    /// A host's attempt ended (or its time ran out): its work is stopped, its result and change
    /// reported, and the planner told.
    private func hostEnded(_ i: Int, _ result: StepResult) {
        let handles = lock.withLock { () -> [any Cancellable]? in
            guard !cancelled else { return nil }
            statuses[i] = result.status
            return inFlight.removeValue(forKey: i)
        }
        guard let handles else { return }
        handles.forEach { $0.cancel() }
        let host = hosts[i]
        var e = event("host.finished", target: host)
        e.status = result.status.rawValue
        e.message = result.message
        e.exitCode = result.exitCode
        e.stdout = result.stdout
        e.stderr = result.stderr
        if let t = lock.withLock({ startedAt[i] }) { e.durationMs = Int((request.scheduler.now.timeIntervalSince(t) * 1000).rounded()) }
        var change = result.change
        change?.target = host
        let actions = lock.withLock { planner.hostFinished(i, succeeded: result.status.succeeded) }
        e.output = (result.output.isEmpty ? [:] : result.output).merging(counts()) { a, _ in a }
        request.report?(FleetProgress(event: e, change: result.status.succeeded ? change : nil))
        perform(actions)
    }

    /// `done`, `failed`, `running` and `total` for the progress line.
    private func counts() -> [String: Value] {
        lock.withLock {
            ["done": .number(Double(planner.succeeded.count + planner.failed.count)), "failed": .number(Double(planner.failed.count)),
             "running": .number(Double(planner.running.count)), "total": .number(Double(hosts.count))]
        }
    }

    /// The canary's check, on every canary host.
    private func startVerify(_ list: [Int]) {
        guard let verify else {
            return perform(lock.withLock { planner.verifyFinished(passed: true, message: "") })
        }
        lock.withLock { verifyLeft = list.count; verifyProblems = [] }
        for i in list {
            let host = hosts[i]
            var r = FleetExecutor.on(host, user: user, request)
            r.step = verify
            r.attempt = 1
            let once = CancelFlag()
            let report: @Sendable (StepResult) -> Void = { [self] result in
                guard !once.isCancelled else { return }
                once.cancel()
                var e = event("canary.checked", target: host)
                e.status = result.status.rawValue
                e.message = "\(verify.id) on \(host): \(result.message)"
                request.report?(FleetProgress(event: e))
                let actions = lock.withLock { () -> [FleetPlanner.Action] in
                    guard !cancelled else { return [] }
                    if result.status != .passed { verifyProblems.append("\(verify.id) \(result.status.rawValue) on \(host): \(result.message)") }
                    verifyLeft -= 1
                    guard verifyLeft == 0 else { return [] }
                    return planner.verifyFinished(passed: verifyProblems.isEmpty, message: verifyProblems.joined(separator: "; "))
                }
                perform(actions)
            }
            let timer = request.scheduler.schedule(after: verify.timeout) {
                report(StepResult(.timedOut, "timed out after \(Quantity.formatDuration(verify.timeout))"))
            }
            let handle = inner.execute(r) { report($0) }
            lock.withLock { pending += [timer, handle, once] }
        }
    }

    private func finish(passed: Bool, message: String) {
        let (done, failedHosts, notStarted, statuses) = lock.withLock { () -> ((@Sendable (StepResult) -> Void)?, [String], [String], [Int: StepStatus]) in
            defer { completion = nil }
            let pendingNow = pending
            pending.removeAll()
            pendingNow.forEach { $0.cancel() }
            return (completion, planner.failed.map { hosts[$0] }, planner.notStarted.map { hosts[$0] }, self.statuses)
        }
        guard let done else { return }
        var text = message
        if !failedHosts.isEmpty {
            text += "; failed: " + failedHosts.map { h in "\(h) (\(statuses[hosts.firstIndex(of: h)!]?.rawValue ?? "failed"))" }.joined(separator: ", ")
        }
        if !notStarted.isEmpty { text += "; not started: " + notStarted.joined(separator: ", ") }
        var output: [String: Value] = ["hosts": .number(Double(hosts.count)), "failed": .number(Double(failedHosts.count)),
                                       "not_started": .number(Double(notStarted.count))]
        if !failedHosts.isEmpty { output["failed_hosts"] = .string(failedHosts.joined(separator: ",")) }
        done(StepResult(passed ? .passed : .failed, text, output: output))
    }
}
