import Foundation
import Testing
@testable import RunbookCore

/// The postmortem draft tells what the timeline says, even without the runbook at hand.
@Suite struct PostmortemTests {
    static let t0 = Date(timeIntervalSince1970: 1_780_000_000)

    static func event(_ seconds: Double, _ name: String, _ edit: (inout TimelineEvent) -> Void = { _ in }) -> TimelineEvent {
        var e = TimelineEvent(time: t0.addingTimeInterval(seconds), run: "r-20260101-000000-abcd", event: name)
        edit(&e)
        return e
    }

    static func finishedStep(_ seconds: Double, _ id: String, _ phase: Phase, _ status: StepStatus, _ message: String) -> TimelineEvent {
        event(seconds, "step.finished") { $0.step = id; $0.phase = phase.rawValue; $0.status = status.rawValue; $0.message = message }
    }

    static let manualRun: [TimelineEvent] = [
        event(0, "run.started") { $0.runbook = "shop-down"; $0.trigger = "manual"; $0.by = "alice"; $0.dryRun = false },
        finishedStep(1, "shop-erroring", .detect, .passed, "HTTP 500 in 3 ms"),
        finishedStep(2, "service-up", .diagnose, .passed, "HTTP 200 in 2 ms"),
        finishedStep(3, "fix", .mitigate, .passed, "exit 0"),
        event(4, "run.finished") { $0.outcome = RunOutcome.completed.rawValue },
    ]

    @Test func aDiagnosisThatRanIsReportedWithoutTheRunbook() {
        let md = Postmortem.markdown(events: Self.manualRun, runbook: nil)
        #expect(!md.contains("no diagnosis ran"))
        #expect(md.contains("Diagnosis: `service-up` passed"))
        #expect(md.contains("**Symptom confirmed**: shop-erroring: HTTP 500 in 3 ms"))
        #expect(md.contains("pass `--runbooks DIR`"))
    }

    @Test func aRunWithoutDiagnoseStepsSaysSo() {
        let events = Self.manualRun.filter { $0.step != "service-up" }
        let md = Postmortem.markdown(events: events, runbook: nil)
        #expect(md.contains("_no diagnosis ran; for humans to establish._"))
    }

    @Test func theTriggerIsToldAsASentence() {
        #expect(Postmortem.markdown(events: Self.manualRun, runbook: nil).contains("triggered manually by alice,"))
        var alert = Self.manualRun
        alert[0].trigger = "alert:AppMemoryHigh"
        alert[0].by = nil
        #expect(Postmortem.markdown(events: alert, runbook: nil).contains("triggered by alert AppMemoryHigh,"))
        var api = Self.manualRun
        api[0].trigger = "api"
        api[0].by = "bob"
        #expect(Postmortem.markdown(events: api, runbook: nil).contains("started through the API by bob,"))
    }

    @Test func theReplayHintNamesTheRunbook() {
        let md = Postmortem.markdown(events: Self.manualRun, runbook: nil)
        #expect(md.contains("`runbook drill shop-down --replay r-20260101-000000-abcd`"))
    }
}
