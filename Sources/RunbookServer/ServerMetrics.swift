import CoreMetrics
import Foundation
import Prometheus
import RunbookCore
import RunbookStoreContract

/// The server's metrics: swift-metrics instruments on a Prometheus registry of the server's own
/// (nothing global), served as Prometheus text on `/metrics`. Histograms keep counting for as long
/// as the server runs, in constant memory (buckets, a sum and a count).
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    let factory: PrometheusMetricsFactory
    let alertsReceived: CoreMetrics.Counter
    let stepDurations: Recorder
    let activeRuns: CoreMetrics.Gauge
    /// With a shared database only.
    let takeovers: CoreMetrics.Counter?
    /// Runs this replica stopped driving: fenced by a takeover, or its lease given up in time.
    let leasesLost: CoreMetrics.Counter?

    /// Step duration buckets, in seconds.
    static let stepBuckets: [Double] = [0.1, 0.5, 1, 5, 15, 30, 60, 300]

    init(replicated: Bool) {
        var f = PrometheusMetricsFactory(registry: registry)
        f.valueHistogramBuckets = ["runbook_step_duration_seconds": Self.stepBuckets]
        factory = f
        alertsReceived = Counter(label: "runbook_alerts_received_total", factory: f)
        stepDurations = Recorder(label: "runbook_step_duration_seconds", aggregate: true, factory: f)
        activeRuns = CoreMetrics.Gauge(label: "runbook_active_runs", factory: f)
        takeovers = replicated ? Counter(label: "runbook_lease_takeovers_total", factory: f) : nil
        leasesLost = replicated ? Counter(label: "runbook_leases_lost_total", factory: f) : nil
    }

    /// A run ended (or was refused) with `outcome`.
    func runEnded(runbook: String, outcome: String) {
        Counter(label: "runbook_runs_total", dimensions: [("runbook", runbook), ("outcome", outcome)], factory: factory).increment()
    }

    /// A guard refused a run.
    func refused(runbook: String, guardName: String) {
        Counter(label: "runbook_guard_refusals_total", dimensions: [("runbook", runbook), ("guard", guardName)], factory: factory).increment()
    }

    /// Sets a gauge read at scrape time.
    func set(_ label: String, _ value: Double, dimensions: [(String, String)] = []) {
        CoreMetrics.Gauge(label: label, dimensions: dimensions, factory: factory).record(value)
    }

    /// Prometheus text exposition.
    func text() -> String {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}
