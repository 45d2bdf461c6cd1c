import Dispatch
import Foundation
import RunbookActions
import RunbookCore
import RunbookStore

/// Starts runs for the server: checks params and guards, records each run durably before it starts,
/// runs it on its own queue, and keeps counts for /metrics.
public final class RunLauncher: @unchecked Sendable {
    // `drivers`, `locks` and the counters are guarded by `lock`; everything else is immutable.
    let store: any RunDatabase
    let executor = LiveExecutor()
    private let lock = NSLock()
    private var drivers: [String: RunDriver] = [:]
    private var locks: [String: any RunHold] = [:]
    private var outcomes: [String: Int] = [:]
    private var refusals: [String: Int] = [:]
    private var alertsReceived = 0
    private var stepDurations: [Double] = []
    private var takeovers = 0

    /// `serve --max-changes N/PER`.
    public let maxChanges: (count: Int, per: Double)?
    /// `serve --freeze FILE`.
    public let freezes: [FreezeWindow]

    public init(store: any RunDatabase, maxChanges: (count: Int, per: Double)? = nil, freezes: [FreezeWindow] = []) {
        self.store = store
        self.maxChanges = maxChanges
        self.freezes = freezes
    }

    /// What happened to one request to start a run.
    public enum Decision: Sendable {
        case started(runID: String)
        case refused(runID: String, guardName: String, until: Date?, message: String)
        case duplicate(runID: String)

        /// Why the run could not be recorded at all (the store failed), if that is what happened.
        public var storeFailure: String? {
            if case .refused(_, "store", _, let m) = self { return m }
            return nil
        }

        var json: String {
            switch self {
            case .started(let id): "{\"run\":\(JSONText.string(id)),\"status\":\"started\"}"
            case .duplicate(let id): "{\"run\":\(JSONText.string(id)),\"status\":\"duplicate\"}"
            case .refused(let id, let g, let until, let m):
                "{\"run\":\(JSONText.string(id)),\"status\":\"refused\",\"guard\":\(JSONText.string(g)),\"until\":\(until.map { "\"\(TimelineEvent.timestamp($0))\"" } ?? "null"),\"message\":\(JSONText.string(m))}"
            }
        }
    }

    func countAlerts(_ n: Int) { lock.withLock { alertsReceived += n } }

    /// One request to start a run.
    public struct LaunchRequest: Sendable {
        public var runbook: Runbook
        public var given: [String: String]
        public var trigger: String
        public var fingerprint: String?
        /// Alert runs need `guards.auto: true`.
        public var requireAuto: Bool
        /// `confirm: true` steps proceed (an alert run's standing approval, or an operator's `"confirm": true`).
        public var autoConfirm: Bool
        /// Who asked: the token's name, recorded as `by` on `run.started`.
        public var by: String?

        public init(runbook: Runbook, given: [String: String], trigger: String, fingerprint: String?, requireAuto: Bool, autoConfirm: Bool, by: String?) {
            self.runbook = runbook
            self.given = given
            self.trigger = trigger
            self.fingerprint = fingerprint
            self.requireAuto = requireAuto
            self.autoConfirm = autoConfirm
            self.by = by
        }
    }

    /// A request ready for admission: its run id, params (when they are good), first event and row.
    struct Prepared {
        var request: LaunchRequest
        var runID: String
        var values: [String: Value]
        var start: TimelineEvent
        var admission: RunStore.AdmissionRequest
    }

    /// Starts `runbook` with `given` params, unless a param or a guard refuses it.
    public func launch(_ runbook: Runbook, given: [String: String], trigger: String, fingerprint: String?, requireAuto: Bool,
                       autoConfirm: Bool = true, by: String? = nil) -> Decision {
        launchAll([LaunchRequest(runbook: runbook, given: given, trigger: trigger, fingerprint: fingerprint,
                                 requireAuto: requireAuto, autoConfirm: autoConfirm, by: by)])[0]
    }

    /// Starts many runs (one alert payload): all are decided and recorded in one transaction, then the
    /// admitted ones start. Thousands of refusals cost rows, not files.
    public func launchAll(_ requests: [LaunchRequest]) -> [Decision] {
        let now = Date()
        let prepared = requests.map { prepare($0, now: now) }
        let decisions: [RunStore.AdmissionDecision]
        do { decisions = try store.admitAll(prepared.map(\.admission), now: now) } catch {
            return prepared.map { .refused(runID: $0.runID, guardName: "store", until: nil, message: "could not record the run: \(error)") }
        }
        return zip(prepared, decisions).map { p, d in
            switch d {
            case .duplicate(let existing):
                return .duplicate(runID: existing)
            case .refused(let r, let id):
                lock.withLock {
                    refusals["\(p.request.runbook.name)|\(r.guardName)", default: 0] += 1
                    outcomes["\(p.request.runbook.name)|refused", default: 0] += 1
                }
                return .refused(runID: id, guardName: r.guardName, until: r.until, message: r.message)
            case .admitted(let lease, let held, _):
                return start(p, lease: lease, runLock: held)
            }
        }
    }

    func prepare(_ request: LaunchRequest, now: Date) -> Prepared {
        let runbook = request.runbook
        let runID = RunInputs.newRunID(now)
        var values: [String: Value] = [:]
        var start: TimelineEvent
        var refusal: GuardCheck.Refusal?
        do {
            values = try RunInputs.resolve(runbook, given: request.given)
            start = RunInputs.startEvent(runbook: runbook, runID: runID, trigger: request.trigger, params: values, dryRun: false, drill: false, now: now)
        } catch {
            // A hostile or malformed label: recorded (counted), nothing runs.
            start = TimelineEvent(time: now, run: runID, event: "run.started")
            start.runbook = runbook.name
            start.trigger = request.trigger
            start.dryRun = false
            refusal = GuardCheck.Refusal(guardName: "params", until: nil, message: "\(error)")
        }
        start.by = request.by
        let lockKey = refusal == nil ? GuardCheck.lockKey(runbook.guards, params: values, runID: runID) : nil
        if refusal == nil, request.requireAuto, !runbook.guards.auto {
            refusal = GuardCheck.Refusal(guardName: "auto", until: nil, message: "guards.auto is false: this runbook needs a human (runbook run \(runbook.name))")
        }
        var record = RunRecord(id: runID, runbook: runbook.name, trigger: request.trigger, fingerprint: request.fingerprint, started: now, dryRun: false, drill: false)
        record.lockKey = lockKey
        var admission = RunStore.AdmissionRequest(runbook: runbook, record: record)
        admission.refusal = refusal
        // With an approval path (an approvals channel, or guards.auto: ask) the breaker and a freeze
        // make the run pause before its first change; without one, they refuse it here.
        if !Self.hasApprovalPath(runbook) {
            admission.maxChanges = maxChanges
            if runbook.steps.contains(where: { $0.action.isChange }) { admission.freeze = FreezeFile.refusal(freezes, at: now) }
        }
        return Prepared(request: request, runID: runID, values: values, start: start, admission: admission)
    }

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

    /// An admitted run: its first event on disk, then its driver on a queue of its own.
    func start(_ p: Prepared, lease: any RunHold, runLock: (any RunHold)?) -> Decision {
        let runbook = p.request.runbook
        let runID = p.runID
        let health = RecordHealth()
        let file: any DurableTimeline
        do {
            file = try store.timelineSink(runID: runID, health: health)
            try file.write(SecretRedactor.redact(p.start, RunInputs.secrets(runbook, p.values)))
        } catch {
            try? store.finish(runID: runID, outcome: .failed, durationMs: 0)
            lease.release()
            runLock?.release()
            return .refused(runID: runID, guardName: "store", until: nil, message: "could not record the run: \(error)")
        }
        var options = RunStateMachine.Options(runID: runID, params: p.values)
        options.autoConfirm = p.request.autoConfirm
        options.beforeChanges = reasonsBeforeChanges(runbook, alertRun: p.request.requireAuto)
        options.breakerBeforeChange = breakerCheck()
        options.breakerMayAsk = Self.hasApprovalPath(runbook)
        run(runbook, options: options, file: file, health: health, by: p.request.by, lease: lease, runLock: runLock, resuming: nil)
        return .started(runID: runID)
    }

    /// Drives one run (new, or resumed from its timeline) until it ends, or is left paused at shutdown.
    func run(_ runbook: Runbook, options: RunStateMachine.Options, file: any DurableTimeline, health: RecordHealth, by: String?,
             lease: any RunHold, runLock: (any RunHold)?, resuming events: [TimelineEvent]?) {
        let runID = options.runID
        let queue = DispatchQueue(label: "runbook.serve.\(runID)")
        let sink = SecretRedactor(secrets: RunInputs.secrets(runbook, options.params),
                                  next: TimelineFanOut([file, HistorySink(store: store, health: health), MetricsSink(launcher: self)]))
        // Whoever started the run may not approve it; with --no-auth nobody is known.
        let desk = StoreApprovalDesk(store: store, startedBy: by == "anonymous" ? nil : by, resumable: true)
        let driver = RunDriver(runbook: runbook, options: options, dryRun: false, queue: queue, executor: executor,
                               scheduler: DispatchScheduler(queue: queue), sink: sink, prompter: DeclineAll(), health: health,
                               desk: desk, resuming: events, inFlight: Self.readBack)
        lock.withLock {
            drivers[runID] = driver
            if let runLock { locks[runID] = runLock }
        }
        driver.start(startEvent: nil) { [self] outcome in
            lease.release()
            lock.withLock {
                drivers[runID] = nil
                locks.removeValue(forKey: runID)?.release()
                outcomes["\(runbook.name)|\(outcome.rawValue)", default: 0] += 1
            }
        }
    }

    /// What a change step that was running when its owner died did: a flag file is read back (at
    /// its target: it happened, from an unknown value, so it cannot be undone; not: run it again);
    /// anything else cannot be told.
    static func readBack(_ step: Step, _ values: TemplateValues) -> InFlightVerdict {
        let c = step.action.config
        guard step.action.kind == .flag, let fileT = c["file"]?.template, let keyT = c["key"]?.template else {
            return .unknown("a \(step.action.kind.rawValue) cannot be read back")
        }
        let path = fileT.render(values.lookup), key = keyT.render(values.lookup)
        let (field, target): (String, String) = c["variant"]?.template.map { ("defaultVariant", $0.render(values.lookup)) }
            ?? ("state", c["state"]?.template?.render(values.lookup) ?? "")
        guard let data = FileManager.default.contents(atPath: path), let (text, _) = try? FlagFile.locate(in: data, key: key, field: field) else {
            return .unknown("flag file \(path) cannot be read")
        }
        let current = (try? JSONDecoder().decode(String.self, from: Data(text.utf8))) ?? text
        guard current == target else { return .rerun }
        return .applied(AppliedChange(what: field == "state" ? "flag \(key) state" : "flag \(key)", from: "?", to: target, location: path))
    }

    /// Shutdown: runs that only wait for approval are left paused, for the next server to resume
    /// (their gates and deadlines are in the store); in the others running steps finish or time out,
    /// nothing new starts, and the runs end `interrupted`. Returns how many were drained and left paused.
    public func drainAll() -> (drained: Int, paused: Int) {
        let all = lock.withLock { drivers }
        var paused = 0
        for (id, d) in all {
            if d.detachIfPaused() {
                paused += 1
                lock.withLock {
                    drivers[id] = nil
                    locks.removeValue(forKey: id)?.release()
                }
            } else {
                d.drain()
            }
        }
        return (all.count - paused, paused)
    }

    /// Resumes runs left paused for approval by a server that stopped (or died): each goes on from
    /// its timeline, still paused, its gates' deadlines and approvals kept. A run that can no longer
    /// go on (its runbook is gone, its params no longer pass, its lock is taken) ends `interrupted`.
    /// Returns the ids resumed.
    @discardableResult
    public func resumePaused(runbooks: [Runbook], now: Date = Date()) -> [String] {
        guard let store = store as? RunStore else { return [] }
        var resumed: [String] = []
        for id in (try? store.pausedRunIDs(now: now)) ?? [] {
            guard let lease = store.takePausedRun(id) else { continue }
            var held: (any RunHold)?
            if let key = (try? store.run(id))?.lockKey, let name = (try? store.run(id))?.runbook {
                held = try? store.tryLock(runbook: name, key: key)
                if held == nil {
                    try? store.finalize(runID: id, started: (try? store.run(id))?.started ?? now,
                                        message: "could not be resumed after a restart: its lock '\(key)' was taken while it was paused", now: now)
                    lease.release()
                    continue
                }
            }
            let note = "resumed by a new server process: still waiting for approval; finished steps are not run again"
            if resume(id, lease: lease, runLock: held, runbooks: runbooks, event: "run.resumed", message: note, now: now) { resumed.append(id) }
        }
        return resumed
    }

    /// Goes on with an open run from its timeline, under `lease`: finished steps keep their results,
    /// a read-only step that was running runs again, a change that was running is read back where it
    /// can be (a flag file) and otherwise stops the run there. Returns false when it could not go on
    /// (it is then ended `interrupted`, saying why).
    func resume(_ id: String, lease: any RunHold, runLock: (any RunHold)?, runbooks: [Runbook],
                event name: String, message: String, from previousOwner: String? = nil, now: Date) -> Bool {
        guard let record = try? store.run(id), record.outcome == nil else {
            lease.release()
            runLock?.release()
            return false
        }
        let events = store.timeline(id)
        let start = events.first { $0.event == "run.started" }
        func giveUp(_ why: String) -> Bool {
            try? store.finalize(runID: id, started: record.started, message: "could not go on after its owner stopped: \(why)", now: now)
            lease.release()
            runLock?.release()
            return false
        }
        // The owner wrote its end but died before closing the row.
        if let end = events.last(where: { $0.event == "run.finished" }), let o = end.outcome.flatMap(RunOutcome.init(rawValue:)) {
            try? store.finish(runID: id, outcome: o, durationMs: end.durationMs ?? 0)
            lease.release()
            runLock?.release()
            return false
        }
        guard let runbook = runbooks.first(where: { $0.name == record.runbook }) else { return giveUp("runbook \(record.runbook) is not loaded here") }
        if runbook.params.contains(where: \.secret) { return giveUp("its secret params are not kept") }
        let values: [String: Value]
        do { values = try RunInputs.resolve(runbook, given: start?.params ?? [:]) } catch { return giveUp("\(error)") }
        let health = RecordHealth()
        guard let file = try? store.timelineSink(runID: id, health: health) else { return giveUp("its timeline cannot be written") }
        var e = TimelineEvent(time: now, run: id, event: name)
        e.message = message
        e.from = previousOwner
        if let replicated = store as? any ReplicatedRunDatabase { e.to = replicated.owner }
        file.record(e)
        var options = RunStateMachine.Options(runID: id, params: values)
        options.autoConfirm = record.trigger.hasPrefix("alert:")
        options.beforeChanges = reasonsBeforeChanges(runbook, alertRun: record.trigger.hasPrefix("alert:"))
        options.breakerBeforeChange = breakerCheck()
        options.breakerMayAsk = Self.hasApprovalPath(runbook)
        run(runbook, options: options, file: file, health: health, by: start?.by, lease: lease, runLock: runLock, resuming: events)
        return true
    }

    /// With a database replicas share: every 2 s, claims runs whose owner stopped renewing its lease
    /// (it died, or lost the database) and takes them over (`run.taken_over`, from and to). Runs this
    /// process held and another took meanwhile are dropped here without a word (their new owner
    /// writes on). Returns the timer; cancel it to stop.
    public func startTakeovers(runbooks: [Runbook], every: Double = 2, logger: @escaping @Sendable (String) -> Void = { _ in }) -> (any DispatchSourceTimer)? {
        guard let shared = store as? any ReplicatedRunDatabase else { return nil }
        shared.onLost = { [weak self] ids in
            guard let self else { return }
            for id in ids {
                let d = self.lock.withLock { self.drivers.removeValue(forKey: id) }
                if let d, d.detach() { logger("lost run \(id) to another replica: stopped driving it") }
            }
        }
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "runbook.takeover"))
        timer.schedule(deadline: .now() + every, repeating: every, leeway: .milliseconds(200))
        timer.setEventHandler { [weak self] in
            guard let self else { return }
            // Claim in batches until none is left: a dead replica may have owned hundreds of runs.
            var claimed: [(runID: String, previousOwner: String?, lease: any RunHold)] = []
            while true {
                let batch = (try? shared.claimExpiredRuns(limit: 200)) ?? []
                claimed += batch
                if batch.count < 200 { break }
            }
            for c in claimed {
                let t0 = Date()
                let ok = self.resume(c.runID, lease: c.lease, runLock: nil, runbooks: runbooks, event: "run.taken_over",
                                     message: "taken over by \(shared.owner) from \(c.previousOwner ?? "nobody"): its lease expired; finished steps are not run again",
                                     from: c.previousOwner, now: t0)
                self.lock.withLock { self.takeovers += 1 }
                logger("took over run \(c.runID) from \(c.previousOwner ?? "?")\(ok ? "" : " (ended: it could not go on)")")
            }
        }
        timer.resume()
        return timer
    }

    /// Runs still going.
    public var activeCount: Int { lock.withLock { drivers.count } }

    /// The grace period is over: every run still going ends now, `interrupted`, its completed changes
    /// left in place and listed on its timeline.
    public func interruptAll(reason: String) {
        let all = lock.withLock { Array(drivers.values) }
        for d in all { d.abandon(reason: reason) }
    }

    func recordStep(_ seconds: Double) { lock.withLock { if stepDurations.count < 100_000 { stepDurations.append(seconds) } } }

    /// Prometheus text exposition of the server's counters.
    public func metricsText() -> String {
        lock.withLock {
            var out = "# HELP runbook_alerts_received_total Alerts received on the Alertmanager hook.\n# TYPE runbook_alerts_received_total counter\n"
            out += "runbook_alerts_received_total \(alertsReceived)\n"
            out += "# HELP runbook_runs_total Runs by runbook and outcome.\n# TYPE runbook_runs_total counter\n"
            for (k, v) in outcomes.sorted(by: { $0.key < $1.key }) {
                let p = k.split(separator: "|", maxSplits: 1).map(String.init)
                out += "runbook_runs_total{runbook=\(JSONText.string(p[0])),outcome=\(JSONText.string(p[1]))} \(v)\n"
            }
            out += "# HELP runbook_guard_refusals_total Runs refused, by runbook and guard.\n# TYPE runbook_guard_refusals_total counter\n"
            for (k, v) in refusals.sorted(by: { $0.key < $1.key }) {
                let p = k.split(separator: "|", maxSplits: 1).map(String.init)
                out += "runbook_guard_refusals_total{runbook=\(JSONText.string(p[0])),guard=\(JSONText.string(p[1]))} \(v)\n"
            }
            out += "# HELP runbook_active_runs Runs in progress.\n# TYPE runbook_active_runs gauge\nrunbook_active_runs \(drivers.count)\n"
            if let waiting = try? store.runsAwaitingApproval() {
                out += "# HELP runbook_runs_awaiting_approval Runs paused at an approval gate.\n# TYPE runbook_runs_awaiting_approval gauge\n"
                out += "runbook_runs_awaiting_approval \(waiting.count)\n"
            }
            if let b = maxChanges, let used = try? store.changesApplied(since: Date().addingTimeInterval(-b.per)) {
                out += "# HELP runbook_change_budget_remaining Changes the breaker still allows in its window.\n# TYPE runbook_change_budget_remaining gauge\n"
                out += "runbook_change_budget_remaining \(max(0, b.count - used))\n"
            }
            if let shared = store as? any ReplicatedRunDatabase {
                out += "# HELP runbook_lease_takeovers_total Runs this replica took over from a dead owner.\n# TYPE runbook_lease_takeovers_total counter\n"
                out += "runbook_lease_takeovers_total \(takeovers)\n"
                if let l = shared.latency {
                    out += "# HELP runbook_database_latency_seconds Recent database query latency.\n# TYPE runbook_database_latency_seconds gauge\n"
                    out += "runbook_database_latency_seconds{quantile=\"0.5\"} \(l.p50)\nrunbook_database_latency_seconds{quantile=\"1\"} \(l.max)\n"
                }
            }
            let buckets = [0.1, 0.5, 1, 5, 15, 30, 60, 300]
            out += "# HELP runbook_step_duration_seconds Step durations.\n# TYPE runbook_step_duration_seconds histogram\n"
            for b in buckets { out += "runbook_step_duration_seconds_bucket{le=\"\(b)\"} \(stepDurations.filter { $0 <= b }.count)\n" }
            out += "runbook_step_duration_seconds_bucket{le=\"+Inf\"} \(stepDurations.count)\n"
            out += "runbook_step_duration_seconds_sum \(stepDurations.reduce(0, +))\nrunbook_step_duration_seconds_count \(stepDurations.count)\n"
            return out
        }
    }
}

/// Feeds step durations to /metrics.
struct MetricsSink: TimelineSink {
    let launcher: RunLauncher
    func record(_ event: TimelineEvent) {
        if event.event == "step.finished", let ms = event.durationMs, event.status != "skipped" { launcher.recordStep(Double(ms) / 1000) }
    }
}
