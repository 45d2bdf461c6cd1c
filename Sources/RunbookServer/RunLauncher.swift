import Dispatch
import Foundation
import RunbookActions
import RunbookCore
import RunbookStore

/// Starts runs for the server: checks params and guards, records each run durably before it starts,
/// runs it on its own queue, and keeps counts for /metrics.
public final class RunLauncher: @unchecked Sendable {
    // `drivers`, `locks` and the counters are guarded by `lock`; everything else is immutable.
    let store: RunStore
    let executor = LiveExecutor()
    private let lock = NSLock()
    private var drivers: [String: RunDriver] = [:]
    private var locks: [String: RunLock] = [:]
    private var outcomes: [String: Int] = [:]
    private var refusals: [String: Int] = [:]
    private var alertsReceived = 0
    private var stepDurations: [Double] = []

    public init(store: RunStore) {
        self.store = store
    }

    /// What happened to one request to start a run.
    public enum Decision: Sendable {
        case started(runID: String)
        case refused(runID: String, guardName: String, until: Date?, message: String)
        case duplicate(runID: String)

        var json: String {
            switch self {
            case .started(let id): "{\"run\":\(JSONText.string(id)),\"status\":\"started\"}"
            case .duplicate(let id): "{\"run\":\(JSONText.string(id)),\"status\":\"duplicate\"}"
            case .refused(let id, let g, let until, let m):
                "{\"run\":\(JSONText.string(id)),\"status\":\"refused\",\"guard\":\(JSONText.string(g)),\"until\":\(until.map { "\"\(TimelineEvent.timestamp($0))\"" } ?? "null"),\"message\":\(JSONText.string(m))}"
            }
        }
    }

    func countAlert() { lock.withLock { alertsReceived += 1 } }

    /// Starts `runbook` with `given` params, unless a param or a guard refuses it. Server runs approve
    /// `confirm: true` steps: `guards.auto` is the standing approval for alert-started runs.
    public func launch(_ runbook: Runbook, given: [String: String], trigger: String, fingerprint: String?, requireAuto: Bool) -> Decision {
        let now = Date()
        let runID = RunInputs.newRunID(now)
        let values: [String: Value]
        let start: TimelineEvent
        do {
            values = try RunInputs.resolve(runbook, given: given)
            start = RunInputs.startEvent(runbook: runbook, runID: runID, trigger: trigger, params: values, dryRun: false, drill: false, now: now)
        } catch {
            // A hostile or malformed label: recorded, nothing runs.
            var shown = given
            for p in runbook.params where p.secret { shown[p.name] = shown[p.name].map { _ in "***" } }
            var e = TimelineEvent(time: now, run: runID, event: "run.started")
            e.runbook = runbook.name
            e.trigger = trigger
            e.params = shown
            e.dryRun = false
            return refuse(runbook, runID: runID, start: e, fingerprint: fingerprint, lockKey: nil, guardName: "params", until: nil, message: "\(error)")
        }
        let lockKey = GuardCheck.lockKey(runbook.guards, params: values, runID: runID)
        if requireAuto, !runbook.guards.auto {
            return refuse(runbook, runID: runID, start: start, fingerprint: fingerprint, lockKey: lockKey, guardName: "auto",
                          until: nil, message: "guards.auto is false: this runbook needs a human (runbook run \(runbook.name))")
        }
        // Dedupe, guards and the run's row in one transaction: concurrent deliveries start one run.
        var record = RunRecord(id: runID, runbook: runbook.name, trigger: trigger, fingerprint: fingerprint, started: now, dryRun: false, drill: false)
        record.lockKey = lockKey
        let decision: RunStore.AdmissionDecision
        do { decision = try store.admit(RunStore.AdmissionRequest(runbook: runbook, record: record), now: now) } catch {
            return .refused(runID: runID, guardName: "store", until: nil, message: "could not record the run: \(error)")
        }
        let lease: RunLease, runLock: RunLock?
        switch decision {
        case .duplicate(let existing):
            return .duplicate(runID: existing)
        case .refused(let r):
            return refused(runbook, runID: runID, start: start, refusal: r)
        case .admitted(let l, let held, _):
            (lease, runLock) = (l, held)
        }
        // Durable before the caller answers: the row is committed; the first event is on disk now.
        let health = RecordHealth()
        let file: TimelineFileSink
        do {
            file = try TimelineFileSink(path: store.timelinePath(runID), health: health)
            try file.write(start)
        } catch {
            try? store.finish(runID: runID, outcome: .failed, durationMs: 0)
            lease.release()
            runLock?.release()
            return .refused(runID: runID, guardName: "store", until: nil, message: "could not record the run: \(error)")
        }
        var options = RunStateMachine.Options(runID: runID, params: values)
        options.autoConfirm = true
        let queue = DispatchQueue(label: "runbook.serve.\(runID)")
        let sink = SecretRedactor(secrets: RunInputs.secrets(runbook, values),
                                  next: TimelineFanOut([file, HistorySink(store: store, health: health), MetricsSink(launcher: self)]))
        let driver = RunDriver(runbook: runbook, options: options, dryRun: false, queue: queue, executor: executor,
                               scheduler: DispatchScheduler(queue: queue), sink: sink, prompter: DeclineAll(), health: health)
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
        return .started(runID: runID)
    }

    /// A guard refused the run: its row is written already; its timeline holds start, refusal and end.
    func refused(_ runbook: Runbook, runID: String, start: TimelineEvent, refusal r: GuardCheck.Refusal) -> Decision {
        let events = RunStore.refusalEvents(start: start, refusal: r)
        if let file = try? TimelineFileSink(path: store.timelinePath(runID)) { for ev in events { file.record(ev) } }
        lock.withLock {
            refusals["\(runbook.name)|\(r.guardName)", default: 0] += 1
            outcomes["\(runbook.name)|refused", default: 0] += 1
        }
        return .refused(runID: runID, guardName: r.guardName, until: r.until, message: r.message)
    }

    func refuse(_ runbook: Runbook, runID: String, start: TimelineEvent, fingerprint: String?, lockKey: String?, guardName: String, until: Date?, message: String) -> Decision {
        var record = RunRecord(id: runID, runbook: runbook.name, trigger: start.trigger ?? "?", fingerprint: fingerprint, started: start.time, dryRun: false, drill: false)
        record.lockKey = lockKey
        record.outcome = RunOutcome.refused.rawValue
        record.durationMs = 0
        try? store.insert(record)
        let events = RunStore.refusalEvents(start: start, refusal: GuardCheck.Refusal(guardName: guardName, until: until, message: message))
        if let file = try? TimelineFileSink(path: store.timelinePath(runID)) { for ev in events { file.record(ev) } }
        lock.withLock {
            refusals["\(runbook.name)|\(guardName)", default: 0] += 1
            outcomes["\(runbook.name)|refused", default: 0] += 1
        }
        return .refused(runID: runID, guardName: guardName, until: until, message: message)
    }

    /// Shutdown: running steps finish or time out, nothing new starts, the runs end `interrupted`.
    public func drainAll() -> Int {
        let all = lock.withLock { Array(drivers.values) }
        for d in all { d.drain() }
        return all.count
    }

    /// Runs still going.
    public var activeCount: Int { lock.withLock { drivers.count } }

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
