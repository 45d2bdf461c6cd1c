import Foundation
import Testing
@testable import RunbookCore

/// The machine describes; `RunWording` words. The wording is pinned here, byte for byte.
struct RunWordingTests {
    static let deadline = Date(timeIntervalSince1970: 1_000_600)

    @Test func aGateOpenedAgainAfterARestartSaysWhoApprovedAndHowToAnswer() {
        let note = GateNotice(runID: "r-1", approvals: 2, reasons: [.given("guards.auto: ask"), .given("change freeze: release week")], deadline: Self.deadline,
                              proceedsOnTimeout: false, changes: ["flag f: on -> off"], resumed: true, approvedSoFar: ["alice"])
        #expect(RunWording.message(.gateOpened(note)) == "still waiting for 2 approvals (guards.auto: ask; change freeze: release week) until "
            + TimelineEvent.timestamp(Self.deadline) + ", then declines: flag f: on -> off; answer with: runbook approve r-1 [--deny] (as yourself),"
            + " or POST /runs/r-1/approve (approved so far by alice)")
    }

    @Test func aNewGateWithNothingPlannedSaysSo() {
        let note = GateNotice(runID: "r-2", approvals: 1, reasons: [.confirm], deadline: Self.deadline,
                              proceedsOnTimeout: true, changes: [], resumed: false, approvedSoFar: [])
        #expect(RunWording.message(.gateOpened(note)) == "waiting for 1 approval (confirm) until " + TimelineEvent.timestamp(Self.deadline)
            + ", then proceeds: no change planned; answer with: runbook approve r-2 [--deny] (as yourself), or POST /runs/r-2/approve")
    }

    @Test func theMachineDescribesAGateAndLeavesTheWordingToTheRenderer() throws {
        var o = RunStateMachine.Options(runID: "r-test", params: ["service": .string("shop")])
        o.autoConfirm = true
        o.asksBeforeChanges = true
        var m = RunStateMachine(runbook: try load(RunStateMachineTests.breakerRunbook), options: o)
        _ = m.start(now: Self.deadline)
        let effects = m.changeReasonsAnswered(["guards.auto: ask"], now: Self.deadline)
        let described = effects.compactMap { effect -> (TimelineEvent, RunNote)? in
            if case .emitNote(let e, let note) = effect { (e, note) } else { nil }
        }
        let (event, note) = try #require(described.first)
        #expect(event.event == "approval.requested" && event.message == nil)
        guard case .gateOpened(let g) = note else { Issue.record("not a gate: \(note)"); return }
        #expect(g.reasons == [.given("guards.auto: ask")] && g.runID == "r-test" && g.approvals == 1)
        #expect(effects.compactMap(\.recordedEvent).first?.message?.hasPrefix("waiting for 1 approval (guards.auto: ask) until ") == true)
    }

    static let endings: [(RunEnding, String?)] = [
        (RunEnding(stop: nil, abandoned: nil, undoIncomplete: false, undone: 0, leftInPlace: []), nil),
        (RunEnding(stop: .failed("flat"), abandoned: nil, undoIncomplete: false, undone: 2, leftInPlace: []), "flat failed; 2 changes undone"),
        (RunEnding(stop: .interrupted(keepChanges: true), abandoned: nil, undoIncomplete: false, undone: 0, leftInPlace: [ChangeNote(summary: "flag f: on -> off", undoable: true)]),
         "interrupted; left in place: flag f: on -> off"),
        (RunEnding(stop: .interrupted(keepChanges: false), abandoned: .interruptedTwice, undoIncomplete: true, undone: 1,
                   leftInPlace: [ChangeNote(summary: "command: - -> restart", undoable: false)]),
         "interrupted twice: exited without finishing; undo incomplete; left in place: command: - -> restart (not undoable)"),
        (RunEnding(stop: .notApproved("changes#2", .denied(by: "lead")), abandoned: nil, undoIncomplete: false, undone: 1, leftInPlace: []),
         "changes not approved: denied by lead; 1 change undone"),
    ]

    @Test(arguments: endings)
    func runFinishedSaysWhyThenWhatWasUndoneAndWhatIsLeft(_ ending: RunEnding, _ expected: String?) {
        #expect(RunWording.message(.runFinished(ending)) == expected)
    }

    static let skips: [(SkipReason, String)] = [
        (.runStopped(.failed("flat")), "run stopped: flat failed"),
        (.runStopped(.notApproved("changes", .denied(by: "lead"))), "run stopped: changes not approved (denied by lead)"),
        (.runStopped(.aborted("errors", .fired("12%"))), "run aborted by alarm errors"),
        (.needs(step: "db", status: nil), "needs db, which did not run"),
        (.needs(step: "db", status: .failed), "needs db, which failed"),
        (.detectEnded(inconclusive: true), "detect inconclusive: a check could not measure"),
        (.stopped(.alarm("errors")), "stopped: alarm errors fired"),
        (.abandoned(.interruptedTwice), "interrupted twice: exited without finishing"),
        (.abandoned(.gracePeriodEnded(30)), "server shut down: the 30s grace period ended"),
    ]

    @Test(arguments: skips)
    func aSkippedStepSaysWhy(_ reason: SkipReason, _ expected: String) {
        #expect(RunWording.message(.stepSkipped(reason)) == expected)
    }

    static let answers: [(RunNote, String)] = [
        (.gateApproved(by: "alice", count: 1, needed: 2), "approved by alice (1 of 2)"),
        (.gateDenied(by: "lead"), "denied by lead"),
        (.gateTimedOut(after: 900, count: 1, needed: 2, proceeds: false), "no 2 approvals within 15m (1 of 2): declined"),
        (.gateTimedOut(after: 30, count: 0, needed: 1, proceeds: true), "no approval within 30s (0 of 1): proceeding (on_timeout: proceed)"),
        (.stepNotApproved(.timedOut(after: 900)), "not approved: no approval within 15m"),
        (.breakerRefused("change breaker: full", before: "flip"), "change breaker: full; the runbook has no approval path, so the run stops before flip"),
        (.cancelled(by: "alice", undo: true), "cancelled by alice"),
        (.cancelled(by: "alice", undo: false), "cancelled by alice (completed changes left in place)"),
        (.alarmFired(id: "errors", .unevaluable(times: 3, "connection refused")),
         "alarm errors could not be evaluated 3 times running (fail closed): connection refused"),
        (.undone("flag f: on -> off", message: ""), "undid flag f: on -> off"),
        (.undoFailed("flag f: on -> off", .failed("exit 1")), "undo of flag f: on -> off failed: exit 1; it is left in place"),
        (.undoFailed("flag f: on -> off", .timedOut(after: 30)), "undo of flag f: on -> off failed: timed out after 30s; it is left in place"),
        (.changeApplied(ChangeNote(summary: "command: - -> restart", undoable: false)), "command: - -> restart (not undoable)"),
        (.cutOffMidChange(nil), "its process died mid-change and it cannot be read back: whether it ran is unknown, so the run stops here"),
    ]

    @Test(arguments: answers)
    func gateAnswersCancelsAlarmsAndUndosAreWordedByTheRenderer(_ note: RunNote, _ expected: String) {
        #expect(RunWording.message(note) == expected)
    }
}
