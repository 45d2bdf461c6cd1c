import Foundation
import Testing
@testable import RunbookCore

/// Honest statuses, clear validation and a postmortem that does not guess (SPEC §6.1, §6.3).
struct FirstHourTests {
    func run(_ yaml: String, _ answer: (String) -> StepResult) throws -> (RunOutcome?, [TimelineEvent]) {
        var m = RunStateMachine(runbook: try load(yaml), options: .init(runID: "r", params: [:]))
        var queue = m.start(now: Date())
        var events: [TimelineEvent] = []
        var outcome: RunOutcome?
        while !queue.isEmpty {
            switch queue.removeFirst() {
            case let effect where effect.recordedEvent != nil: events.append(effect.recordedEvent!)
            case .startAttempt(let s, let a, _): queue += m.attemptFinished(step: s, attempt: a, result: answer(s), now: Date())
            case .startUndo(let i, _, _, _): queue += m.undoFinished(index: i, result: StepResult(.passed), now: Date())
            case .finished(let o): outcome = o
            default: break
            }
        }
        return (outcome, events)
    }

    static let twoDetects = minimalHeader + """
      - id: a
        phase: detect
        check: { command: ["a"] }
      - id: b
        phase: detect
        check: { command: ["b"] }
      - id: fix
        phase: mitigate
        command: ["fix"]

    """

    @Test func noPassAndAnErroredDetectIsInconclusiveNotNotConfirmed() throws {
        let (o, events) = try run(Self.twoDetects) { s in s == "a" ? StepResult(.errored, "connection refused") : StepResult(.failed) }
        #expect(o == .inconclusive)
        #expect(RunOutcome.inconclusive.exitCode == 4)
        #expect(events.contains { $0.step == "fix" && $0.status == "skipped" && $0.message?.contains("inconclusive") == true })
        let (o2, _) = try run(Self.twoDetects) { _ in StepResult(.failed) }
        #expect(o2 == .notConfirmed)
    }

    @Test func detectAllNeedsEveryDetectStepToPass() throws {
        let all = Self.twoDetects.replacingOccurrences(of: "runbook: t\n", with: "runbook: t\ndetect: all\n")
        let (o, _) = try run(all) { s in s == "a" ? StepResult(.failed) : StepResult(.passed) }
        #expect(o == .notConfirmed)
        let (any, _) = try run(Self.twoDetects) { s in s == "a" ? StepResult(.failed) : StepResult(.passed) }
        #expect(any == .completed)
        #expect(GraphRenderer(try load(all)).text().contains("detect: all"))
    }

    @Test func erroredIsReadableInWhenAndIsNotFailed() throws {
        let rb = try load(minimalHeader + """
          - id: a
            phase: detect
            check: { command: ["a"] }
          - id: d
            phase: diagnose
            check: { command: ["d"] }
          - id: e
            phase: diagnose
            needs: [d]
            when: steps.d.errored && !steps.d.failed
            check: { command: ["e"] }

        """)
        var values = TemplateValues(params: [:], runID: "r")
        values.statuses["d"] = .errored
        #expect(rb.step("e")?.when?.evaluate(values.lookup).truthy == true)
    }

    @Test func anInvalidPhaseIsOneErrorAndStepsAreNamedByID() {
        let found = diagnostics(minimalHeader + """
          - id: look
            phase: detect
            check: { command: ["true"] }
          - id: off
            phase: mitgate
            needs: [later]
            flag: { file: f.json, key: a, variant: "off" }
          - id: later
            phase: verify
            when: steps.off.passed
            timeout: soon
            check: { command: ["true"] }

        """)
        #expect(found.count == 2, "\(found)")
        #expect(found.contains { $0.message.contains("step 'off' phase must be one of") })
        #expect(found.contains { $0.message.contains("step 'later' timeout: bad duration") })
    }

    @Test(arguments: [("and", "&&"), ("or", "||")])
    func aWordOperatorSuggestsTheSymbol(word: String, symbol: String) {
        let found = diagnostics(minimalHeader + """
          - id: a
            phase: detect
            check: { command: ["true"] }
          - id: b
            phase: mitigate
            when: steps.a.passed \(word) steps.a.passed
            command: ["true"]

        """)
        #expect(found.first?.message.contains("write \(symbol) for \(word)") == true, "\(found)")
    }

    @Test func thePostmortemStatesDiagnosisAsFactsAndFollowsUpOnTheFinalState() throws {
        let rb = try load(minimalHeader + """
          - id: sym
            phase: detect
            check: { command: ["true"] }
          - id: enricher-slow
            phase: diagnose
            finding: the enricher is slow
            check: { command: ["true"] }
          - id: db-ok
            phase: diagnose
            rules_out: the database
            check: { command: ["true"] }
          - id: net-ok
            phase: diagnose
            check: { command: ["true"] }
          - id: off
            phase: mitigate
            flag: { file: f.json, key: enricher, variant: "off" }
          - id: flat
            phase: verify
            check: { command: ["true"] }

        """)
        func event(_ name: String, _ step: String? = nil, status: String? = nil, message: String? = nil) -> TimelineEvent {
            var e = TimelineEvent(time: Date(), run: "r-1", event: name)
            e.step = step
            e.phase = step.flatMap { rb.step($0)?.phase.rawValue }
            e.status = status
            e.message = message
            return e
        }
        var diag = event("step.finished", "enricher-slow", status: "passed")
        diag.stdout = "p99 2400ms\n"
        diag.output = ["exit_code": .number(0)]
        var applied = event("change.applied", "off", message: "flag enricher: on -> off in f.json")
        applied.what = "flag enricher"
        applied.to = "off"
        let common = [event("run.started"), event("step.finished", "sym", status: "passed"), diag,
                      event("step.finished", "db-ok", status: "passed"), event("step.finished", "net-ok", status: "passed"),
                      event("step.finished", "off", status: "passed"), applied]
        let kept = Postmortem.markdown(events: common + [event("step.finished", "flat", status: "passed"), event("run.finished")], runbook: rb)
        #expect(kept.contains("`enricher-slow` passed (exit_code=0): found the enricher is slow"))
        #expect(kept.contains("`db-ok` passed: rules out the database"))
        #expect(!kept.contains("ruled out by passing checks"))
        #expect(!kept.contains("net-ok` passed: rules out"), "a step that says nothing rules nothing out")
        #expect(kept.contains("p99 2400ms"), "command output is in the postmortem")
        #expect(kept.contains("Fix the code behind `enricher`"))
        let undone = Postmortem.markdown(events: common + [event("step.finished", "flat", status: "failed"), event("undo.started", "off"),
                                                           event("undo.finished", "off", status: "passed"), event("run.finished")], runbook: rb)
        #expect(!undone.contains("Fix the code behind `enricher` (left"), "the flag was restored")
        #expect(undone.contains("No change is left in place"))
    }
}
