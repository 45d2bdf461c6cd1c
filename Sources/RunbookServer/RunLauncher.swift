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

    /// Most requests admitted in one store transaction (`AdmissionChunks`): a writer waiting for the
    /// store (an approval) waits for one chunk of a large payload, not for all of it.
    let admissionChunk: Int
    /// Webhooks that arrive while an admission is in flight are admitted together, in the next one.
    let combiner: AdmissionCombiner<LaunchRequest, Admission>
    /// Runs taken over go on a few at a time (`ResumePacer`).
    let resumes = ResumePacer()
    /// Where admission's chunks are recorded, one at a time, while the intake thread that leads the
    /// admission prepares the next and answers the last (`AdmissionChunks.pipelined`).
    let recorder = DispatchQueue(label: "runbook.admission.recorder")

    public init(store: any RunDatabase, maxChanges: (count: Int, per: Double)? = nil, freezes: [FreezeWindow] = [],
                ssh: SSHSettings = SSHSettings(), maxTargets: Int? = nil, admissionChunk: Int = AdmissionChunks.size) {
        self.store = store
        self.admissionChunk = max(1, admissionChunk)
        self.combiner = AdmissionCombiner(limit: max(1, admissionChunk))
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

        var json: String { Self.json([self]) }

        /// `decisions` as JSON objects separated by commas. A payload's refusals mostly share their
        /// guard, time and sentence: each distinct one is escaped once.
        static func json(_ decisions: [Decision]) -> String {
            var out = ""
            out.reserveCapacity(decisions.count * 96)
            var last: (guardName: String, until: Date?, message: String, tail: String)?
            for (i, d) in decisions.enumerated() {
                if i > 0 { out += "," }
                switch d {
                case .started(let id): out += "{\"run\":\(quoted(id)),\"status\":\"started\"}"
                case .duplicate(let id): out += "{\"run\":\(quoted(id)),\"status\":\"duplicate\"}"
                case .refused(let id, let g, let until, let m):
                    let tail: String
                    if let l = last, l.guardName == g, l.until == until, l.message == m { tail = l.tail } else {
                        tail = ",\"status\":\"refused\",\"guard\":\(quoted(g)),\"until\":\(until.map { "\"\(TimelineEvent.timestamp($0))\"" } ?? "null"),\"message\":\(quoted(m))}"
                        last = (g, until, m, tail)
                    }
                    out += "{\"run\":\(quoted(id))" + tail
                }
            }
            return out
        }

        /// `JSONText.string(s)`, without walking the scalars when nothing needs escaping.
        static func quoted(_ s: String) -> String {
            if s.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) { return JSONText.string(s) }
            return "\"" + s + "\""
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
        /// The run's id; a new one when nil.
        var runID: String?

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
            r.runID = runID
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

    /// Starts many runs (one alert payload): they are decided and recorded in chunks of
    /// `admissionChunk`, one transaction each, in order, each chunk seeing the ones before it
    /// (`AdmissionChunks`); the admitted runs start once they are all recorded. Thousands of
    /// refusals cost rows, not files. When a chunk cannot be recorded, it and the rest are refused by
    /// `store` (the caller answers 5xx; a payload sent again finds the recorded ones).
    ///
    /// Callers on other threads that call while an admission is in flight are decided together in
    /// the next one (`AdmissionCombiner`), after the callers before them. Blocks until this caller's
    /// runs are decided: call it from the server's own threads.
    public func launchAll(_ requests: [LaunchRequest]) -> [Decision] {
        // Only the admission is combined: refusals and duplicates come back settled, and each caller
        // starts its own admitted runs (their first records written) while the next admission is
        // already deciding.
        combiner.submit(requests) { admit($0) }.map { admission in
            switch admission {
            case .settled(let decision): decision
            case .admitted(let run): start(run)
            }
        }
    }

    /// What admission made of one request.
    enum Admission: Sendable {
        /// Refused, a duplicate, or not recorded at all: the answer as it stands.
        case settled(Decision)
        /// Recorded and held: its caller starts it.
        case admitted(AdmittedRun)
    }

    /// One chunk of a batch, prepared: its runs and what the store is asked for them.
    struct PreparedChunk: Sendable {
        var runs: [PreparedRun]
        var requests: [AdmissionRequest]
    }

    /// Decides and records one batch of requests in chunks, each in one transaction on `recorder`,
    /// while this thread prepares the next chunk and settles the answers of the one before
    /// (`AdmissionChunks.pipelined`). Starts none of them.
    func admit(_ requests: [LaunchRequest]) -> [Admission] {
        let now = Date()
        var ids = RunIDs(now)
        // Every request's run id before any is prepared: a request not recorded is answered with
        // the id it would have had (its row may be in after all, when an answer was lost).
        let runIDs = requests.map { $0.runID ?? ids.next() }
        let store = self.store
        let recorded = AdmissionChunks.pipelined(requests, size: admissionChunk, recorder: recorder, prepare: { chunk in
            let runs = zip(chunk, runIDs[chunk.indices]).map { request, runID in
                var r = request.runRequest
                r.runID = runID
                r.maxTargets = maxTargets
                r.prometheus = PrometheusHosts()
                return PreparedRun(r, rule: rule, now: now)
            }
            return PreparedChunk(runs: runs, requests: RunAdmission.requests(runs))
        }, record: { chunk in
            try store.admitAll(chunk.requests, now: now)
        }, finish: { chunk, decisions in
            RunAdmission.admissions(chunk.runs, decisions).map(settle)
        })
        guard let error = recorded.failure else { return recorded.decided }
        let message = "could not record the run: \(error)"
        return recorded.decided + runIDs[recorded.decided.count...].map { runID in
            .settled(.refused(runID: runID, guardName: "store", until: nil, message: message))
        }
    }

    /// A refusal or a duplicate as the answer (a refusal counted); an admitted run as it is.
    func settle(_ admission: RunAdmission) -> Admission {
        switch admission {
        case .duplicate(let existing):
            return .settled(.duplicate(runID: existing))
        case .refused(let r, let id, let runbook):
            metrics.refused(runbook: runbook, guardName: r.guardName)
            metrics.runEnded(runbook: runbook, outcome: RunOutcome.refused.rawValue)
            return .settled(.refused(runID: id, guardName: r.guardName, until: r.until, message: r.message))
        case .admitted(let admitted):
            return .admitted(admitted)
        }
    }

    /// Starts an admitted run.
    func start(_ admitted: AdmittedRun) -> Decision {
        let session: RunSession
        do throws(RunStartError) { session = try RunSession.open(admitted, environment: environment(startedBy: admitted.prepared.request.by)) } catch {
            return .refused(runID: error.runID, guardName: "store", until: nil, message: error.description)
        }
        drive(session)
        return .started(runID: session.runID)
    }

    /// New run ids for one payload (`RunInputs.newRunID`'s shape: the time, then 8 random hex
    /// digits), the time formatted once and no id given twice.
    struct RunIDs {
        let prefix: String
        var given: Set<UInt32> = []

        init(_ now: Date) { prefix = String(RunInputs.newRunID(now).dropLast(8)) }

        mutating func next() -> String {
            var n = UInt32.random(in: 0...UInt32.max)
            while !given.insert(n).inserted { n = UInt32.random(in: 0...UInt32.max) }
            let hex = String(n, radix: 16)
            return prefix + String(repeating: "0", count: 8 - hex.count) + hex
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
    /// Taken-over runs that had not gone on yet are handed back (their leases given up).
    public func drainAll() -> (drained: Int, paused: Int) {
        resumes.stop()
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
    public func interruptAll(reason: AbandonReason) {
        let all = lock.withLock { Array(sessions.values) }
        for s in all { s.abandon(reason: reason) }
    }

}
