import Foundation
import Testing
@testable import RunbookCore

/// A run taken over from an owner that was fenced (or died) between a change's record and the
/// step's end: the recorded change is the truth, never repeated and never lost.
struct ResumeAfterFenceTests {
    static let yaml = """
        runbook: t
        steps:
          - id: look
            phase: detect
            check: { command: ["true"] }
          - id: kick
            phase: mitigate
            command: ["touch", "kicked"]
            undo: { command: ["rm", "kicked"] }
          - id: fine
            phase: verify
            check: { command: ["true"] }

        """

    static func event(_ name: String, _ step: String? = nil, status: String? = nil) -> TimelineEvent {
        var e = TimelineEvent(time: Date(timeIntervalSince1970: 1_000), run: "r", event: name)
        e.step = step
        e.status = status
        if name == "change.applied" { e.what = "command touch kicked"; e.from = ""; e.to = "" }
        return e
    }

    @Test func aChangeOnRecordWithoutItsStepsEndIsDoneAndUndoneNotRepeated() throws {
        let rb = try load(Self.yaml)
        let events = [Self.event("run.started"), Self.event("step.started", "look"), Self.event("step.finished", "look", status: "passed"),
                      Self.event("step.started", "kick"), Self.event("change.applied", "kick")]
        var m = RunStateMachine(runbook: rb, options: RunStateMachine.Options(runID: "r", params: [:]), resuming: events,
                                inFlight: { _, _ in .unknown("it cannot be read back") })
        let now = Date(timeIntervalSince1970: 2_000)
        let effects = m.start(now: now)
        let emitted = effects.compactMap(\.recordedEvent)
        #expect(emitted.filter { $0.step == "kick" }.map(\.event) == ["step.finished"], "\(emitted.map(\.event))")
        #expect(emitted.first { $0.step == "kick" }?.status == "passed")
        #expect(!emitted.contains { $0.event == "change.applied" }, "the recorded change was recorded again")
        let started = effects.compactMap { if case .startAttempt(let s, _, _) = $0 { s } else { nil } }
        #expect(!started.contains("kick") && started == ["fine"], "\(started)")
        // It is on the undo stack: an interrupt undoes it.
        let stop = m.interrupt(now: now)
        #expect(stop.contains { if case .startUndo(_, _, "kick", _) = $0 { true } else { false } }, "\(stop)")
    }
}
