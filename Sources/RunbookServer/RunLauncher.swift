import Dispatch
import Foundation
import RunbookActions
import RunbookCore
import RunbookStoreContract

/// Starts runs for the server: checks params and guards, records each run durably before it starts,
/// runs it on its own queue, and keeps counts for /metrics.
public final class RunLauncher: @unchecked Sendable {
    // `drivers`, `locks` and the counters are guarded by `lock`; everything else is immutable.
    let store: any RunDatabase
    let executor = LiveExecutor()
    let lock = NSLock()
    var drivers: [String: RunDriver] = [:]
    var locks: [String: any RunHold] = [:]
    var outcomes: [String: Int] = [:]
    var refusals: [String: Int] = [:]
    var alertsReceived = 0
    var stepDurations: [Double] = []
    var takeovers = 0

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
        var admission: AdmissionRequest
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
        let decisions: [AdmissionDecision]
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
        var admission = AdmissionRequest(runbook: runbook, record: record)
        admission.refusal = refusal
        // With an approval path (an approvals channel, or guards.auto: ask) the breaker and a freeze
        // make the run pause before its first change; without one, they refuse it here.
        if !Self.hasApprovalPath(runbook) {
            admission.maxChanges = maxChanges
            if runbook.steps.contains(where: { $0.action.isChange }) { admission.freeze = FreezeFile.refusal(freezes, at: now) }
        }
        return Prepared(request: request, runID: runID, values: values, start: start, admission: admission)
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

    /// Runs still going.
    public var activeCount: Int { lock.withLock { drivers.count } }

    /// The grace period is over: every run still going ends now, `interrupted`, its completed changes
    /// left in place and listed on its timeline.
    public func interruptAll(reason: String) {
        let all = lock.withLock { Array(drivers.values) }
        for d in all { d.abandon(reason: reason) }
    }

}
