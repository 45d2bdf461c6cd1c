import CoreMetrics
import Dispatch
import Testing
@testable import RunbookServer

/// `/metrics` through swift-metrics and swift-prometheus, under today's names.
struct ServerMetricsTests {
    @Test func stepDurationsKeepCountingPastAHundredThousandSteps() async {
        let m = ServerMetrics(replicated: false)
        // A hundred thousand records on a thread of their own, not on the tests' cooperative pool.
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            DispatchQueue.global().async {
                for i in 0..<100_005 { m.stepDurations.record(Double(i % 10) / 10) }
                c.resume()
            }
        }
        let text = m.text()
        #expect(text.contains("runbook_step_duration_seconds_count 100005"), "\(text)")
        #expect(text.contains(#"runbook_step_duration_seconds_bucket{le="+Inf"} 100005"#), "\(text)")
    }

    @Test func countersKeepTheirNamesAndLabels() {
        let m = ServerMetrics(replicated: true)
        m.alertsReceived.increment(by: 3)
        m.runEnded(runbook: "memory-leak", outcome: "mitigated")
        m.refused(runbook: "memory-leak", guardName: "cooldown")
        m.set("runbook_change_budget_remaining", 0)
        let text = m.text()
        #expect(text.contains("runbook_alerts_received_total 3"))
        #expect(text.contains(#"runbook_runs_total{runbook="memory-leak",outcome="mitigated"} 1"#) || text.contains(#"runbook_runs_total{outcome="mitigated",runbook="memory-leak"} 1"#), "\(text)")
        #expect(text.contains("runbook_guard_refusals_total"))
        #expect(text.contains("runbook_lease_takeovers_total 0"))
        #expect(text.contains("runbook_change_budget_remaining 0"))
        #expect(text.contains("# TYPE runbook_step_duration_seconds histogram"))
    }
}
