import Foundation
import Testing
@testable import RunbookCore

/// A flag change's undo survives a restart or takeover through the structured fields of its
/// `change.applied` event, never through its display text.
struct FlagUndoRestoreTests {
    static let runbook = minimalHeader + """
      - id: symptom
        phase: detect
        check: { command: ["true"] }
      - id: flag-off
        phase: mitigate
        flag: { file: f.json, key: f, state: DISABLED }
      - id: bounce
        phase: mitigate
        needs: [flag-off]
        command: ["bounce"]

    """

    static let stateChange = AppliedChange(what: "flag f state", from: "ENABLED", to: "DISABLED", location: "f.json",
                                           automaticUndo: .flagFile(path: "f.json", key: "f", field: "state", previous: "\"ENABLED\""))

    /// Runs the machine to its end, answering every attempt with `answer` and every undo with a pass.
    static func events(of machine: inout RunStateMachine, now: Date, answer: (String) -> StepResult) -> [TimelineEvent] {
        var events: [TimelineEvent] = []
        var queue = machine.start(now: now)
        while !queue.isEmpty {
            switch queue.removeFirst() {
            case let effect where effect.recordedEvent != nil: events.append(effect.recordedEvent!)
            case .startAttempt(let s, let a, _): queue += machine.attemptFinished(step: s, attempt: a, result: answer(s), now: now)
            case .startUndo(let i, _, _, _): queue += machine.undoFinished(index: i, result: StepResult(.passed), now: now)
            default: break
            }
        }
        return events
    }

    static func options() -> RunStateMachine.Options {
        var o = RunStateMachine.Options(runID: "r-test", params: ["service": .string("shop")])
        o.autoConfirm = true
        o.random = { 0.5 }
        return o
    }

    @Test func changeAppliedCarriesTheFlagsKeyAndField() throws {
        var m = RunStateMachine(runbook: try load(Self.runbook), options: Self.options())
        let events = Self.events(of: &m, now: Date(timeIntervalSince1970: 1_000_000)) { s in
            s == "flag-off" ? StepResult(.passed, change: Self.stateChange) : StepResult(.passed)
        }
        let applied = try #require(events.first { $0.event == "change.applied" && $0.step == "flag-off" })
        #expect(applied.flagKey == "f")
        #expect(applied.flagField == "state")
        #expect(applied.location == "f.json")
        #expect(applied.from == "ENABLED" && applied.to == "DISABLED")
        let line = applied.jsonLine()
        #expect(line.contains(#""flag_key":"f""#) && line.contains(#""flag_field":"state""#), "\(line)")
        #expect(TimelineEvent.parse(jsonLine: line) == applied, "the fields do not survive the record")
    }

    @Test func aResumedRunUndoesFromTheFieldsWhateverTheTextSays() throws {
        let rb = try load(Self.runbook)
        let now = Date(timeIntervalSince1970: 1_000_000)
        var first = RunStateMachine(runbook: rb, options: Self.options())
        var events = Self.events(of: &first, now: now) { s in
            s == "flag-off" ? StepResult(.passed, change: Self.stateChange) : StepResult(.passed)
        }
        // Keep the timeline up to the flag change, as a dead owner left it, with display text that
        // no longer names the flag: a parser of `what` would undo the wrong flag, or none.
        let cut = try #require(events.firstIndex { $0.event == "change.applied" })
        events = Array(events[...cut])
        events[cut].what = "the image-resize kill switch"
        events[cut].message = "renamed for people"

        var resumed = RunStateMachine(runbook: rb, options: Self.options(), resuming: events, now: now)
        var queue = resumed.start(now: now)
        var undos: [AppliedChange] = []
        while !queue.isEmpty {
            switch queue.removeFirst() {
            case .startAttempt(let s, let a, _):
                queue += resumed.attemptFinished(step: s, attempt: a, result: StepResult(s == "bounce" ? .failed : .passed), now: now)
            case .startUndo(let i, let change, _, _):
                undos.append(change)
                queue += resumed.undoFinished(index: i, result: StepResult(.passed), now: now)
            default: break
            }
        }
        #expect(undos.map(\.automaticUndo) == [.flagFile(path: "f.json", key: "f", field: "state", previous: "\"ENABLED\"")])
    }

    @Test func anEventWithoutFlagFieldsRestoresNoAutomaticUndo() {
        var e = TimelineEvent(time: Date(timeIntervalSince1970: 0), run: "r", event: "change.applied")
        e.what = "flag f"
        e.from = "on"
        e.to = "off"
        e.location = "f.json"
        #expect(AppliedChange(restoring: e, fallbackWhat: "x").automaticUndo == nil, "the undo came from the text")
        e.flagKey = "f"
        e.flagField = "defaultVariant"
        #expect(AppliedChange(restoring: e, fallbackWhat: "x").automaticUndo == .flagFile(path: "f.json", key: "f", field: "defaultVariant", previous: "\"on\""))
    }

    @Test func aChangeRecordedWithoutFlagFieldsIsUndoneFromTheStepsLiteralKey() throws {
        let rb = try load(Self.runbook)
        let step = try #require(rb.step("flag-off"))
        var e = TimelineEvent(time: Date(timeIntervalSince1970: 0), run: "r", event: "change.applied")
        e.what = "some other words"
        e.from = "ENABLED"
        e.to = "DISABLED"
        e.location = "f.json"
        #expect(RunStateMachine.restoredChange(e, step: step).automaticUndo == .flagFile(path: "f.json", key: "f", field: "state", previous: "\"ENABLED\""))
    }
}
