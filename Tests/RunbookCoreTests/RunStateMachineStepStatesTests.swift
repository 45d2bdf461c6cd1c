import Foundation
import Testing
@testable import RunbookCore

/// Counts of running steps, prompts and gates are derived from the steps' states, in one place.
struct RunStateMachineStepStatesTests {
    static let runbook = minimalHeader + """
      - id: cmd
        phase: detect
        check: { command: ["true"] }
      - id: http
        phase: detect
        check: { http: { url: "http://localhost/health" } }
      - id: pause
        phase: detect
        wait: 1s

    """

    @Test func attemptsAreCountedByWhatTheyOccupyAndPromptsAndGatesApart() throws {
        let rb = try load(Self.runbook)
        var states = RunStateMachine.StepStates(rb.steps)
        states["cmd"] = .running(attempt: 1)
        states["http"] = .running(attempt: 1)
        states["pause"] = .awaitingConfirmation
        #expect(states.attempts[.process] == 1)
        #expect(states.attempts[.network] == 1)
        #expect(states.attemptsRunning == 2)
        #expect(states.prompts == 1)
        #expect(states.inFlight == 3)
        states["pause"] = .awaitingApproval
        #expect(states.prompts == 0 && states.gates == 1)
        states["cmd"] = .retryWait(nextAttempt: 2)
        states["http"] = .done(.passed)
        #expect(states.attemptsRunning == 0 && states.retries == 1)
        #expect(states.inFlight == 1)
    }
}
