import Foundation
import Testing
@testable import RunbookCore

/// Facts from outside the run come in as events: the machine asks (`askChangeReasons`,
/// `reserveBreakerPlace`), waits, and gives places back as effects (`releaseBreakerPlace`).
struct RunStateMachineFactsTests {
    static let now = Date(timeIntervalSince1970: 1_000_000)

    static func machine(asks: Bool = false, breaker: Bool = false, mayAsk: Bool = false) throws -> RunStateMachine {
        var o = RunStateMachine.Options(runID: "r-test", params: ["service": .string("shop")])
        o.random = { 0.5 }
        o.autoConfirm = true
        o.asksBeforeChanges = asks
        o.reservesBreakerPlaces = breaker
        o.breakerMayAsk = mayAsk
        return RunStateMachine(runbook: try load(RunStateMachineTests.breakerRunbook), options: o)
    }

    /// A run whose first change step holds its place in the breaker's window.
    static func reserved() throws -> RunStateMachine {
        var m = try machine(breaker: true)
        _ = m.start(now: now)
        _ = m.breakerAnswered(step: "first", refusal: nil, now: now)
        return m
    }

    static func started(_ effects: [RunStateMachine.Effect]) -> [String] {
        effects.compactMap { if case .startAttempt(let s, _, _) = $0 { s } else { nil } }
    }

    static func asked(_ effects: [RunStateMachine.Effect]) -> [String] {
        effects.compactMap { if case .reserveBreakerPlace(let s) = $0 { s } else { nil } }
    }

    static func released(_ effects: [RunStateMachine.Effect]) -> [String] {
        effects.compactMap { if case .releaseBreakerPlace(let s) = $0 { s } else { nil } }
    }

    static func emitted(_ effects: [RunStateMachine.Effect]) -> [TimelineEvent] {
        effects.compactMap(\.recordedEvent)
    }

    @Test func aChangeStepDoesNotStartUntilTheBreakerAnswers() throws {
        var m = try Self.machine(breaker: true)
        let first = m.start(now: Self.now)
        #expect(Self.asked(first) == ["first"])
        #expect(Self.started(first).isEmpty, "started before its place was reserved")
        // Anything else meanwhile starts nothing and asks nothing again.
        #expect(m.retryDue(step: "first", attempt: 2, now: Self.now).isEmpty)
        let answered = m.breakerAnswered(step: "first", refusal: nil, now: Self.now)
        #expect(Self.started(answered) == ["first"])
        #expect(Self.asked(answered).isEmpty)
    }

    @Test func aRefusedReservationStopsTheRunWhenNobodyCanApprove() throws {
        var m = try Self.machine(breaker: true)
        _ = m.start(now: Self.now)
        let answered = m.breakerAnswered(step: "first", refusal: "change breaker: 3 changes in the last 1h (cap 3)", now: Self.now)
        let events = Self.emitted(answered)
        #expect(Self.started(answered).isEmpty)
        #expect(events.first?.event == "guard.refused")
        #expect(events.first?.message == "change breaker: 3 changes in the last 1h (cap 3); the runbook has no approval path, so the run stops before first")
        #expect(events.last?.event == "run.finished" && events.last?.outcome == "refused")
        #expect(Self.released(answered).isEmpty, "nothing was reserved")
    }

    @Test func aRefusedReservationOpensAGateWhenSomeoneCanApprove() throws {
        var m = try Self.machine(breaker: true, mayAsk: true)
        _ = m.start(now: Self.now)
        let answered = m.breakerAnswered(step: "first", refusal: "change breaker: full", now: Self.now)
        #expect(m.gatesOpen.map(\.id) == ["changes#2"])
        #expect(Self.started(answered).isEmpty)
        let approved = m.gateAnswered(id: "changes#2", answer: .approved(by: "lead"), now: Self.now)
        #expect(Self.started(approved) == ["first"], "an approved change is not asked about again")
        #expect(Self.asked(approved).isEmpty)
    }

    @Test func aChangeStepThatFailedBeforeApplyingGivesItsPlaceBack() throws {
        var m = try Self.reserved()
        let failed = m.attemptFinished(step: "first", attempt: 1, result: StepResult(.failed, "exit 1"), now: Self.now)
        #expect(Self.released(failed) == ["first"])
        #expect(m.outcome == .failed)
    }

    @Test func aPlaceUsedByAnAppliedChangeIsKept() throws {
        var m = try Self.reserved()
        let change = AppliedChange(what: "flag f", from: "on", to: "off")
        let done = m.attemptFinished(step: "first", attempt: 1, result: StepResult(.passed, change: change), now: Self.now)
        #expect(Self.released(done).isEmpty)
        #expect(Self.asked(done) == ["second"])
    }

    @Test func aPlaceReservedAfterTheRunStoppedIsGivenBackAtOnce() throws {
        var m = try Self.machine(breaker: true)
        _ = m.start(now: Self.now)
        _ = m.interrupt(now: Self.now)
        #expect(m.outcome == .interrupted)
        let late = m.breakerAnswered(step: "first", refusal: nil, now: Self.now)
        #expect(Self.released(late) == ["first"])
        #expect(Self.started(late).isEmpty)
    }

    @Test func anAbandonedRunGivesBackThePlacesOfStepsInFlight() throws {
        var m = try Self.reserved()
        let ended = m.abandon(now: Self.now)
        #expect(Self.released(ended) == ["first"])
        #expect(m.outcome == .interrupted)
    }

    @Test func theReasonsBeforeChangesAreAskedOnceAndHoldEveryChange() throws {
        var m = try Self.machine(asks: true)
        let first = m.start(now: Self.now)
        #expect(first.contains { if case .askChangeReasons = $0 { true } else { false } })
        #expect(Self.started(first).isEmpty)
        #expect(m.changeReasonsAnswered(["guards.auto: ask"], now: Self.now).contains { if case .openGate = $0 { true } else { false } })
        #expect(m.changeReasonsAnswered([], now: Self.now).isEmpty, "an answer nobody asked for is ignored")
        let approved = m.gateAnswered(id: RunStateMachine.changesGateID, answer: .approved(by: "ops"), now: Self.now)
        #expect(Self.started(approved) == ["first"])
        #expect(!approved.contains { if case .askChangeReasons = $0 { true } else { false } })
    }

    @Test func noReasonsLetTheChangesGoOn() throws {
        var m = try Self.machine(asks: true)
        _ = m.start(now: Self.now)
        let answered = m.changeReasonsAnswered([], now: Self.now)
        #expect(Self.started(answered) == ["first"])
        #expect(m.gatesOpen.isEmpty)
    }
}
