import Dispatch
import CoreMetrics
import Foundation
import RunbookActions
import RunbookCore
import RunbookRuntime
import RunbookStoreContract

/// Starts runs for the server: checks params and guards, records each run durably before it starts,
/// runs it on its own queue, and keeps counts for /metrics.
public final class RunLauncher: @unchecked Sendable {
    // `sessions` and `idleWaiters` are guarded by `lock`; everything else is immutable (the metrics
    // are thread-safe on their own).
    let store: any RunDatabase
    let executor: LiveExecutor
    /// `serve --max-targets`: most hosts one target set of a run may resolve to.
    let maxTargets: Int?
    let lock = NSLock()
    var sessions: [String: RunSession] = [:]
    /// Called once when no run is active any more (shutdown waits on this).
    var idleWaiters: [@Sendable () -> Void] = []

    /// `serve --max-changes N/PER`.
    public let maxChanges: (count: Int, per: Double)?
    /// `serve --freeze FILE`.
    public let freezes: [FreezeWindow]

    /// `/metrics`.
    let metrics: ServerMetrics
    /// When a server run's changes wait for approval rather than refuse the run.
    let rule: ChangeApprovalRule
    /// Cancel requests other processes leave in the store for this server's runs.
    let cancels: CancelWatch

    public init(store: any RunDatabase, maxChanges: (count: Int, per: Double)? = nil, freezes: [FreezeWindow] = [],
                ssh: SSHSettings = SSHSettings(), maxTargets: Int? = nil) {
        self.store = store
        self.executor = LiveExecutor(ssh: ssh)
        self.maxTargets = maxTargets
        self.maxChanges = maxChanges
        self.freezes = freezes
        self.rule = .windows(freezes, mayPause: true, maxChanges: maxChanges)
        self.cancels = CancelWatch(store: store)
        self.metrics = ServerMetrics(replicated: store is any ReplicatedRunDatabase)
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

    func countAlerts(_ n: Int) { metrics.alertsReceived.increment(by: Int64(n)) }

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
        /// Live, or a dry run (the console's dry-run button: changes described, none made).
        public var mode: RunMode = .live
        /// The alert behind an alert run (`{{ alert.labels.NAME }}` in targets).
        public var alert = AlertValues()

        public init(runbook: Runbook, given: [String: String], trigger: String, fingerprint: String?, requireAuto: Bool, autoConfirm: Bool, by: String?) {
            self.runbook = runbook
            self.given = given
            self.trigger = trigger
            self.fingerprint = fingerprint
            self.requireAuto = requireAuto
            self.autoConfirm = autoConfirm
            self.by = by
        }

        /// The session's request.
        var runRequest: RunRequest {
            var r = RunRequest(runbook: runbook, given: given, trigger: trigger)
            r.fingerprint = fingerprint
            r.by = by
            r.alertRun = requireAuto
            r.autoConfirm = autoConfirm
            r.mode = mode
            r.alert = alert
            return r
        }
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
        let prepared = requests.map { request in
            var r = request.runRequest
            r.maxTargets = maxTargets
            r.prometheus = PrometheusHosts()
            return PreparedRun(r, rule: rule, now: now)
        }
        let admissions: [RunAdmission]
        do { admissions = try RunAdmission.decide(prepared, store: store, now: now) } catch {
            return prepared.map { .refused(runID: $0.runID, guardName: "store", until: nil, message: "could not record the run: \(error)") }
        }
        return admissions.map { a in
            switch a {
            case .duplicate(let existing):
                return .duplicate(runID: existing)
            case .refused(let r, let id, let p):
                metrics.refused(runbook: p.request.runbook.name, guardName: r.guardName)
                metrics.runEnded(runbook: p.request.runbook.name, outcome: RunOutcome.refused.rawValue)
                return .refused(runID: id, guardName: r.guardName, until: r.until, message: r.message)
            case .admitted(let admitted):
                let session: RunSession
                do throws(RunStartError) { session = try RunSession.open(admitted, environment: environment(startedBy: admitted.prepared.request.by)) } catch {
                    return .refused(runID: error.runID, guardName: "store", until: nil, message: error.description)
                }
                drive(session)
                return .started(runID: session.runID)
            }
        }
    }

    /// What the server gives each of its runs: the store, live steps, answers from the store
    /// (whoever started the run may not approve it; with --no-auth nobody is known), metrics.
    func environment(startedBy by: String?) -> RunEnvironment {
        var env = RunEnvironment(store: store, executor: executor, rule: rule)
        env.approver = .store(startedBy: by == "anonymous" ? nil : by, resumable: true)
        env.subscribers = [MetricsSink(metrics: metrics)]
        env.inFlight = Self.readBack
        env.queueLabel = "runbook.serve"
        env.leavesRunWhenStoreUnreachable = store is any ReplicatedRunDatabase
        return env
    }

    /// Registers a session and runs it until it ends, or is left paused at shutdown.
    func drive(_ session: RunSession) {
        let runID = session.runID
        lock.withLock { sessions[runID] = session }
        cancels.add(session)
        session.begin(onEnd: { [self] session, outcome in
            cancels.remove(runID)
            forget(runID)
            metrics.runEnded(runbook: session.runbook.name, outcome: outcome.rawValue)
        }, onLost: { [self] _, _ in
            // Fenced: another owner holds the run; it stopped without a word.
            cancels.remove(runID)
            forget(runID)
            metrics.leasesLost?.increment()
        })
    }

    /// Drops a run that is no longer driven here, and wakes the idle waiters when it was the last.
    func forget(_ runID: String) {
        let waiters = lock.withLock { () -> [@Sendable () -> Void] in
            sessions[runID] = nil
            return takeIdleWaiters()
        }
        waiters.forEach { $0() }
    }

    /// Calls `callback` once no run is active: now, or when the last one ends.
    func whenIdle(_ callback: @escaping @Sendable () -> Void) {
        let now = lock.withLock { () -> Bool in
            if sessions.isEmpty { return true }
            idleWaiters.append(callback)
            return false
        }
        if now { callback() }
    }

    /// The idle waiters, when no run is active (called under `lock`).
    func takeIdleWaiters() -> [@Sendable () -> Void] {
        guard sessions.isEmpty else { return [] }
        defer { idleWaiters.removeAll() }
        return idleWaiters
    }

    /// The live session of run `runID` (to watch its events), while this process drives it.
    public func session(_ runID: String) -> RunSession? { lock.withLock { sessions[runID] } }

    /// Shutdown: runs that only wait for approval are left paused, for the next server to resume
    /// (their gates and deadlines are in the store); in the others running steps finish or time out,
    /// nothing new starts, and the runs end `interrupted`. Returns how many were drained and left paused.
    public func drainAll() -> (drained: Int, paused: Int) {
        let all = lock.withLock { sessions }
        var paused = 0
        for (id, s) in all {
            if s.detachIfPaused() {
                paused += 1
                let waiters = lock.withLock { () -> [@Sendable () -> Void] in
                    sessions[id] = nil
                    return takeIdleWaiters()
                }
                waiters.forEach { $0() }
            } else {
                s.drain()
            }
        }
        return (all.count - paused, paused)
    }

    /// Runs still going.
    public var activeCount: Int { lock.withLock { sessions.count } }

    /// The grace period is over: every run still going ends now, `interrupted`, its completed changes
    /// left in place and listed on its timeline.
    public func interruptAll(reason: String) {
        let all = lock.withLock { Array(sessions.values) }
        for s in all { s.abandon(reason: reason) }
    }

}
