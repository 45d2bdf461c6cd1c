import CoreMetrics
import Foundation
import RunbookCore
import RunbookStoreContract

/// `/metrics`: the server's counters, gauges and step durations (`ServerMetrics`), in Prometheus text.
extension RunLauncher {
    /// Prometheus text exposition. Reads the store (runs awaiting approval, the change budget):
    /// call it from the server's own threads.
    public func metricsText() -> String {
        let waiting = try? store.runsAwaitingApproval()
        let budget = maxChanges.flatMap { b in (try? store.changesApplied(since: Date().addingTimeInterval(-b.per))).map { max(0, b.count - $0) } }
        metrics.activeRuns.record(activeCount)
        if let waiting { metrics.set("runbook_runs_awaiting_approval", Double(waiting.count)) }
        if let budget { metrics.set("runbook_change_budget_remaining", Double(budget)) }
        if let l = (store as? any ReplicatedRunDatabase)?.latency {
            metrics.set("runbook_database_latency_seconds", l.p50, dimensions: [("quantile", "0.5")])
            metrics.set("runbook_database_latency_seconds", l.max, dimensions: [("quantile", "1")])
        }
        return metrics.text()
    }
}

/// Feeds step durations to /metrics.
struct MetricsSink: TimelineSink {
    let metrics: ServerMetrics
    func record(_ event: TimelineEvent) {
        if event.event == "step.finished", let ms = event.durationMs, event.status != "skipped" { metrics.stepDurations.record(Double(ms) / 1000) }
    }
}
