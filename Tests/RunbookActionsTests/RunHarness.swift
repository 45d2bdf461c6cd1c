import Dispatch
import Foundation
import RunbookActions
import RunbookCore

struct Finished: Sendable {
    var outcome: RunOutcome
    var events: [TimelineEvent]
    func status(_ step: String) -> String? { events.last { $0.event == "step.finished" && $0.step == step }?.status }
}

/// Interrupts a run when a step starts: at a point of the run, not after a time.
final class InterruptOnStart: TimelineSink, @unchecked Sendable {
    let step: String
    let next: any TimelineSink
    // Set once before the run starts.
    var driver: RunDriver?
    init(step: String, next: any TimelineSink) {
        self.step = step
        self.next = next
    }
    func record(_ event: TimelineEvent) {
        next.record(event)
        if event.event == "step.started", event.step == step { driver?.interrupt() }
    }
}

func runRunbook(_ yaml: String, params: [String: String] = [:], dryRun: Bool = false, maxParallel: Int = 64,
         in dir: String, interruptAfter: Double? = nil, interruptWhenStarted step: String? = nil) async throws -> Finished {
    let rb = try RunbookLoader.load(text: yaml, file: dir + "/rb.yaml")
    let values = try RunInputs.resolve(rb, given: params)
    var o = RunStateMachine.Options(runID: RunInputs.newRunID(), params: values)
    o.autoConfirm = true
    o.maxParallel = maxParallel
    let q = DispatchQueue(label: "run")
    let collector = TimelineCollector()
    let trigger = step.map { InterruptOnStart(step: $0, next: collector) }
    let driver = RunDriver(runbook: rb, options: o, dryRun: dryRun, queue: q, executor: LiveExecutor(),
                           scheduler: DispatchScheduler(queue: q), sink: trigger ?? collector, prompter: DeclineAll())
    trigger?.driver = driver
    let start = RunInputs.startEvent(runbook: rb, runID: o.runID, trigger: "test", params: values, dryRun: dryRun, drill: false, now: Date())
    if let t = interruptAfter { q.asyncAfter(deadline: .now() + t) { driver.interrupt() } }
    let outcome = await withCheckedContinuation { (c: CheckedContinuation<RunOutcome, Never>) in
        driver.start(startEvent: start) { c.resume(returning: $0) }
    }
    return Finished(outcome: outcome, events: collector.events)
}

