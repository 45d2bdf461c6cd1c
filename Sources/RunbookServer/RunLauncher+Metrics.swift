import Dispatch
import Foundation
import RunbookActions
import RunbookCore
import RunbookStoreContract

/// `/metrics`: the server's counters in Prometheus text.
extension RunLauncher {
    func recordStep(_ seconds: Double) { lock.withLock { if stepDurations.count < 100_000 { stepDurations.append(seconds) } } }

    /// Prometheus text exposition of the server's counters.
    public func metricsText() -> String {
        // Store reads first, outside the lock: launches must not wait on the database for a scrape.
        let waiting = try? store.runsAwaitingApproval()
        let budget = maxChanges.flatMap { b in (try? store.changesApplied(since: Date().addingTimeInterval(-b.per))).map { max(0, b.count - $0) } }
        let shared = store as? any ReplicatedRunDatabase
        let latency = shared?.latency
        return lock.withLock {
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
            if let waiting {
                out += "# HELP runbook_runs_awaiting_approval Runs paused at an approval gate.\n# TYPE runbook_runs_awaiting_approval gauge\n"
                out += "runbook_runs_awaiting_approval \(waiting.count)\n"
            }
            if let budget {
                out += "# HELP runbook_change_budget_remaining Changes the breaker still allows in its window.\n# TYPE runbook_change_budget_remaining gauge\n"
                out += "runbook_change_budget_remaining \(budget)\n"
            }
            if shared != nil {
                out += "# HELP runbook_lease_takeovers_total Runs this replica took over from a dead owner.\n# TYPE runbook_lease_takeovers_total counter\n"
                out += "runbook_lease_takeovers_total \(takeovers)\n"
                if let l = latency {
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
