import Foundation
import Testing
@testable import RunbookCore

/// Cancelling a run from outside (the console, `POST /runs/ID/cancel`, `runbook cancel`).
extension RunStateMachineTests {
    @Test func aCancelIsRecordedWithWhoThenStopsAndUndoesAsCtrlC() throws {
        var h = try Harness(Self.leak)
        h.stopWith = { m, now in m.cancel(by: "olga", undo: true, now: now) ?? [] }
        #expect(h.run(interruptAfter: 3) { s, _ in changeFor(s) } == .interrupted)
        let cancelled = h.events.filter { $0.event == "run.cancelled" }
        #expect(cancelled.count == 1)
        #expect(cancelled.first?.by == "olga")
        #expect(h.undone == ["flag-off:flag f"])
        #expect(h.status("restart") == "failed")
        // Recorded before the running step is stopped.
        let at = try #require(h.events.firstIndex { $0.event == "run.cancelled" })
        #expect(h.events[at...].contains { $0.event == "step.finished" && $0.step == "restart" })
    }

    @Test func aCancelAskedToLeaveChangesUndoesNothing() throws {
        var h = try Harness(Self.leak)
        h.stopWith = { m, now in m.cancel(by: "olga", undo: false, now: now) ?? [] }
        #expect(h.run(interruptAfter: 3) { s, _ in changeFor(s) } == .interrupted)
        #expect(h.undone.isEmpty)
        #expect(h.events.first { $0.event == "run.cancelled" }?.message?.contains("left in place") == true)
    }

    @Test func aFinishedRunCannotBeCancelled() throws {
        var h = try Harness(Self.leak)
        #expect(h.run { s, _ in changeFor(s) } == .mitigated)
        #expect(h.machine.cancel(by: "olga", undo: true, now: h.now) == nil)
    }
}
