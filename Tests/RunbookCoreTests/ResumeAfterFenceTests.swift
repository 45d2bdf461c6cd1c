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

    static let twoChanges = """
        runbook: t2
        steps:
          - id: one
            phase: mitigate
            command: ["touch", "one"]
            undo: { command: ["rm", "one"] }
          - id: two
            phase: mitigate
            needs: [one]
            command: ["touch", "two"]
            undo: { command: ["rm", "two"] }
          - id: long
            phase: mitigate
            needs: [two]
            command: ["sleep", "60"]
          - id: fine
            phase: verify
            check: { command: ["true"] }

        """

    /// The record of a run whose owner was undoing when it lost the database: `long` failed,
    /// `two`'s undo started (and, with `twoFinished`, finished).
    static func stoppingRecord(twoFinished: Bool) -> [TimelineEvent] {
        var events = [event("run.started"), event("step.started", "one"), event("change.applied", "one"), event("step.finished", "one", status: "passed"),
                      event("step.started", "two"), event("change.applied", "two"), event("step.finished", "two", status: "passed"),
                      event("step.started", "long"), event("step.finished", "long", status: "failed"),
                      event("step.finished", "fine", status: "skipped"), event("undo.started", "two")]
        if twoFinished { events.append(event("undo.finished", "two", status: "passed")) }
        return events
    }

    @Test func aRunTakenOverWhileUndoingGoesOnUndoingAndNeverEndsMitigated() throws {
        let rb = try load(Self.twoChanges)
        var m = RunStateMachine(runbook: rb, options: RunStateMachine.Options(runID: "r", params: [:]), resuming: Self.stoppingRecord(twoFinished: true))
        let now = Date(timeIntervalSince1970: 2_000)
        var effects = m.start(now: now)
        // `two` was undone already: only `one` is undone now.
        let undos = effects.compactMap { if case .startUndo(let i, _, let s, _) = $0 { (i, s) } else { nil } }
        #expect(undos.map(\.1) == ["one"], "\(effects)")
        #expect(!effects.contains { if case .startAttempt = $0 { true } else { false } }, "a step ran again: \(effects)")
        let index = try #require(undos.first?.0)
        effects = m.undoFinished(index: index, result: StepResult(.passed, "rm: exit 0"), now: now)
        let end = try #require(effects.compactMap(\.recordedEvent).first { $0.event == "run.finished" })
        #expect(end.outcome == "failed", "\(end)")
        #expect(end.message?.contains("long failed") == true, "\(end.message ?? "")")
    }

    @Test func anUndoWhoseEndIsNotOnRecordIsNotRunAgainAndTheRecordSaysItIsUnknown() throws {
        let rb = try load(Self.twoChanges)
        var m = RunStateMachine(runbook: rb, options: RunStateMachine.Options(runID: "r", params: [:]), resuming: Self.stoppingRecord(twoFinished: false))
        let now = Date(timeIntervalSince1970: 2_000)
        var effects = m.start(now: now)
        let emitted = effects.compactMap(\.recordedEvent)
        let unknown = try #require(emitted.first { $0.event == "undo.failed" && $0.step == "two" }, "\(emitted.map(\.event))")
        #expect(unknown.message?.contains("unknown") == true, "\(unknown.message ?? "")")
        let undos = effects.compactMap { if case .startUndo(let i, _, let s, _) = $0 { (i, s) } else { nil } }
        #expect(undos.map(\.1) == ["one"], "two's undo ran again, or one's did not: \(effects)")
        effects = m.undoFinished(index: try #require(undos.first?.0), result: StepResult(.passed, "rm: exit 0"), now: now)
        let end = try #require(effects.compactMap(\.recordedEvent).first { $0.event == "run.finished" })
        #expect(end.outcome == "failed" && end.message?.contains("undo incomplete") == true, "\(end)")
    }
}
