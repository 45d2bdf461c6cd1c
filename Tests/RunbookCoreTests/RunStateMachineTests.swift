import Foundation
import Testing
@testable import RunbookCore

/// The run's rules, driven without processes, timers or sleeps: a script answers each attempt.
struct RunStateMachineTests {
    /// Drives a machine to the end; `answer` decides each attempt's result.
    struct Harness {
        var machine: RunStateMachine
        var now = Date(timeIntervalSince1970: 1_000_000)
        var events: [TimelineEvent] = []
        var attempts: [(step: String, attempt: Int)] = []
        var retryDelays: [String: [Double]] = [:]
        var undone: [String] = []
        var confirmations: [String] = []
        var outcome: RunOutcome?
        /// How each undo ends, by step; nil: it hangs until its timeout.
        var undoAnswer: (String) -> StepResult? = { _ in StepResult(.passed) }
        /// Called when an undo starts, before it is answered (an interrupt, an abandon).
        var duringUndo: ((inout RunStateMachine, Date) -> [RunStateMachine.Effect])?
        var endedUndos: [Int] = []
        /// How each gate is answered when it opens (nothing: it waits for its timeout).
        var gateAnswers: (GateRequest) -> [GateAnswer] = { _ in [.approved(by: "alice")] }
        var gatesOpened: [GateRequest] = []
        var gatesClosed: [String] = []
        /// Why the run's changes wait, when it asks (`Options.asksBeforeChanges`).
        var changeReasons: () -> [String] = { [] }
        /// How the breaker answers each reservation (nil: reserved), and what was asked and given back.
        var breaker: (String) -> String? = { _ in nil }
        var breakerAsks: [String] = []
        var releases: [String] = []
        /// What stops the run at `interruptAfter` (default: an interrupt, as Ctrl-C).
        var stopWith: ((inout RunStateMachine, Date) -> [RunStateMachine.Effect])?

        init(_ yaml: String, autoConfirm: Bool = true, maxParallel: Int = 64, noUndo: Bool = false) throws {
            let rb = try load(yaml)
            var o = RunStateMachine.Options(runID: "r-test", params: ["service": .string("shop")])
            o.autoConfirm = autoConfirm
            o.maxParallel = maxParallel
            o.noUndo = noUndo
            o.random = { 0.5 }
            machine = RunStateMachine(runbook: rb, options: o)
        }

        mutating func run(confirm: Bool = true, interruptAfter: Int? = nil,
                          answer: (String, Int) -> StepResult) -> RunOutcome? {
            var queue = machine.start(now: now)
            var pendingRetries: [(String, Int)] = []
            var started = 0
            while outcome == nil {
                if queue.isEmpty {
                    guard !pendingRetries.isEmpty else { break }
                    let (s, a) = pendingRetries.removeFirst()
                    now += retryDelays[s]?.last ?? 0
                    queue += machine.retryDue(step: s, attempt: a, now: now)
                    continue
                }
                let effect = queue.removeFirst()
                switch effect {
                case .emit, .emitNote: events.append(effect.recordedEvent!)
                case .startAttempt(let s, let a, _):
                    attempts.append((s, a))
                    started += 1
                    if let n = interruptAfter, started > n {
                        queue += stopWith?(&machine, now) ?? machine.interrupt(now: now)
                        continue
                    }
                    now += 1
                    queue += machine.attemptFinished(step: s, attempt: a, result: answer(s, a), now: now)
                case .scheduleRetry(let s, let a, let d):
                    retryDelays[s, default: []].append(d)
                    pendingRetries.append((s, a))
                case .askConfirmation(let s):
                    confirmations.append(s)
                    queue += machine.confirmationAnswered(step: s, approved: confirm, now: now)
                case .startUndo(let i, let c, let s, _):
                    undone.append("\(s):\(c.what)")
                    if let during = duringUndo { queue += during(&machine, now) }
                    if outcome != nil || queue.contains(where: { if case .finished = $0 { true } else { false } }) {
                        // The run ended while this undo was in flight: a late answer must change nothing.
                        queue += machine.undoFinished(index: i, result: StepResult(.passed), now: now)
                        continue
                    }
                    if let r = undoAnswer(s) {
                        queue += machine.undoFinished(index: i, result: r, now: now)
                    } else {
                        now += 30
                        queue += machine.undoTimedOut(index: i, now: now)
                        // The hung undo answers late: ignored.
                        queue += machine.undoFinished(index: i, result: StepResult(.passed), now: now)
                    }
                case .openGate(let g):
                    gatesOpened.append(g)
                    let answers = gateAnswers(g)
                    if answers.isEmpty {
                        now = g.deadline
                        queue += machine.gateAnswered(id: g.id, answer: .timedOut, now: now)
                    }
                    for a in answers { queue += machine.gateAnswered(id: g.id, answer: a, now: now) }
                case .closeGate(let id, _): gatesClosed.append(id)
                case .endUndo(let i): endedUndos.append(i)
                case .finished(let o): outcome = o
                case .askChangeReasons:
                    queue += machine.changeReasonsAnswered(changeReasons(), now: now)
                case .reserveBreakerPlace(let s):
                    breakerAsks.append(s)
                    queue += machine.breakerAnswered(step: s, refusal: breaker(s), now: now)
                case .releaseBreakerPlace(let s): releases.append(s)
                case .cancelAttempt, .haltFleet, .cancelRetry, .scheduleAlarm, .stopAlarms: break
                }
            }
            return outcome
        }

        func status(_ step: String) -> String? {
            events.last { $0.event == "step.finished" && $0.step == step }?.status
        }
    }

    static let flagChange = AppliedChange(what: "flag f", from: "on", to: "off", location: "f.json",
                                          automaticUndo: .flagFile(path: "f.json", key: "f", field: "defaultVariant", previous: "\"on\""))

    static let leak = minimalHeader + """
      - id: symptom
        phase: detect
        check: { command: ["true"] }
      - id: db
        phase: diagnose
        check: { command: ["true"] }
      - id: flag-off
        phase: mitigate
        when: steps.db.passed
        flag: { file: f.json, key: f, variant: "off" }
      - id: restart
        phase: mitigate
        needs: [flag-off]
        confirm: true
        command: ["restart"]
      - id: flat
        phase: verify
        check: { command: ["true"] }

    """

    func changeFor(_ step: String) -> StepResult {
        switch step {
        case "flag-off": StepResult(.passed, change: Self.flagChange)
        case "restart": StepResult(.passed, change: AppliedChange(what: "command", from: "-", to: "restart"))
        default: StepResult(.passed)
        }
    }

    @Test func mitigatesWhenEverythingPasses() throws {
        var h = try Harness(Self.leak)
        #expect(h.run { s, _ in changeFor(s) } == .mitigated)
        #expect(h.attempts.map(\.step) == ["symptom", "db", "flag-off", "restart", "flat"])
        #expect(h.events.filter { $0.event == "change.applied" }.count == 2)
        #expect(h.events.first?.event == "step.started")
        #expect(h.events.last?.event == "run.finished")
    }

    @Test func endsNotConfirmedAndChangesNothingWhenNoDetectStepPasses() throws {
        var h = try Harness(Self.leak)
        #expect(h.run { s, _ in s == "symptom" ? StepResult(.failed) : changeFor(s) } == .notConfirmed)
        #expect(h.attempts.map(\.step) == ["symptom"])
        #expect(h.status("flag-off") == "skipped")
        #expect(h.undone.isEmpty)
    }

    @Test func skipsAWhenBranchAndStepsThatNeedIt() throws {
        var h = try Harness(Self.leak)
        #expect(h.run { s, _ in s == "db" ? StepResult(.failed) : changeFor(s) } == .completed)
        #expect(h.status("flag-off") == "skipped")
        #expect(h.status("restart") == "skipped")
        #expect(h.status("flat") == "passed")
    }

    @Test func undoesCompletedChangesInReverseOrderWhenVerifyFails() throws {
        let yaml = minimalHeader + """
          - id: a
            phase: mitigate
            flag: { file: a.json, key: a, variant: "off" }
          - id: b
            phase: mitigate
            needs: [a]
            command: ["b"]
            undo: { command: ["undo-b"] }
          - id: c
            phase: mitigate
            needs: [b]
            command: ["c"]
          - id: check
            phase: verify
            check: { command: ["false"] }

        """
        var h = try Harness(yaml)
        let outcome = h.run { s, _ in
            switch s {
            case "a": StepResult(.passed, change: AppliedChange(what: "flag a", from: "on", to: "off", automaticUndo: Self.flagChange.automaticUndo))
            case "b", "c": StepResult(.passed, change: AppliedChange(what: "command \(s)", from: "-", to: s))
            default: StepResult(.failed)
            }
        }
        #expect(outcome == .failed)
        // c has neither an automatic nor an explicit undo; b then a, newest first.
        #expect(h.undone == ["b:command b", "a:flag a"])
        #expect(h.events.filter { $0.event == "undo.started" }.count == 2)
    }

    @Test func retriesWithBackoffThenPasses() throws {
        let yaml = minimalHeader + """
          - id: flaky
            phase: diagnose
            check: { command: ["x"] }
            retry: { attempts: 4, delay: 2s, backoff: 3 }

        """
        var h = try Harness(yaml)
        #expect(h.run { _, a in a < 4 ? StepResult(.failed, "nope") : StepResult(.passed) } == .completed)
        #expect(h.attempts.map(\.attempt) == [1, 2, 3, 4])
        // random() = 0.5 makes the jitter factor exactly 1.
        #expect(h.retryDelays["flaky"] == [2, 6, 18])
        #expect(h.events.filter { $0.event == "step.retrying" }.map(\.attempt) == [1, 2, 3])
        #expect(h.status("flaky") == "passed")
    }

    @Test func jitterStaysWithinTwentyPercent() throws {
        let policy = RetryPolicy(attempts: 3, delay: 10, backoff: 2)
        #expect(policy.baseDelay(afterAttempt: 1) == 10)
        #expect(policy.baseDelay(afterAttempt: 2) == 20)
        var capped = policy
        capped.maxDelay = 15
        #expect(capped.baseDelay(afterAttempt: 2) == 15)
    }

    @Test func continuesPastAFailureMarkedContinueOnFailure() throws {
        let yaml = minimalHeader + """
          - id: optional
            phase: mitigate
            command: ["x"]
            continue_on_failure: true
          - id: main
            phase: mitigate
            needs: [optional]
            when: steps.optional.failed
            command: ["y"]

        """
        var h = try Harness(yaml)
        #expect(h.run { s, _ in s == "optional" ? StepResult(.failed) : StepResult(.passed, change: AppliedChange(what: "y", from: "-", to: "y")) } == .mitigated)
        #expect(h.status("main") == "passed")
    }

    @Test func aFailedMitigationStopsTheRunAndSkipsTheRest() throws {
        var h = try Harness(Self.leak)
        #expect(h.run { s, _ in s == "restart" ? StepResult(.timedOut) : changeFor(s) } == .failed)
        #expect(h.status("flat") == "skipped")
        #expect(h.undone == ["flag-off:flag f"])
        #expect(h.events.last?.message?.contains("restart failed") == true)
    }

    @Test func aDeclinedConfirmationRefusesTheRunAndUndoes() throws {
        var h = try Harness(Self.leak, autoConfirm: false)
        #expect(h.run(confirm: false) { s, _ in changeFor(s) } == .refused)
        #expect(h.confirmations == ["restart"])
        #expect(h.status("restart") == "declined")
        #expect(h.undone == ["flag-off:flag f"])
        #expect(RunOutcome.refused.exitCode == 3)
    }

    @Test func needsMayPointToAnEarlierPhase() throws {
        let yaml = minimalHeader + """
          - id: look
            phase: diagnose
            check: { command: ["x"] }
          - id: act
            phase: mitigate
            needs: [look]
            command: ["y"]

        """
        var h = try Harness(yaml)
        #expect(h.run { s, _ in s == "look" ? StepResult(.failed) : StepResult(.passed) } == .completed)
        #expect(h.status("act") == "skipped")
    }

    @Test func interruptStopsRunningStepsAndUndoesUnlessTold() throws {
        var h = try Harness(Self.leak)
        #expect(h.run(interruptAfter: 3) { s, _ in changeFor(s) } == .interrupted)
        #expect(h.undone == ["flag-off:flag f"])
        #expect(h.status("restart") == "failed")
        var keep = try Harness(Self.leak, noUndo: true)
        #expect(keep.run(interruptAfter: 3) { s, _ in changeFor(s) } == .interrupted)
        #expect(keep.undone.isEmpty)
    }

    @Test func waitsAreNotCappedByTheProcessLimit() throws {
        let yaml = minimalHeader + (0..<5).map { "  - id: w\($0)\n    phase: mitigate\n    wait: 1s\n" }.joined()
            + "  - id: c0\n    phase: mitigate\n    command: [\"a\"]\n  - id: c1\n    phase: mitigate\n    command: [\"b\"]\n"
        let rb = try load(yaml)
        var o = RunStateMachine.Options(runID: "r", params: [:])
        o.maxParallel = 1
        var m = RunStateMachine(runbook: rb, options: o)
        let started = m.start(now: Date()).compactMap { if case .startAttempt(let s, _, _) = $0 { s } else { nil } }
        #expect(started == ["w0", "w1", "w2", "w3", "w4", "c0"])
        let next = m.attemptFinished(step: "c0", attempt: 1, result: StepResult(.passed), now: Date())
        #expect(next.compactMap { if case .startAttempt(let s, _, _) = $0 { s } else { nil } } == ["c1"])
    }

    @Test func runsIndependentStepsOfAPhaseTogetherUpToTheLimit() throws {
        let yaml = minimalHeader + (0..<5).map { "  - id: w\($0)\n    phase: mitigate\n    command: [\"x\"]\n" }.joined()
        let rb = try load(yaml)
        var o = RunStateMachine.Options(runID: "r", params: [:])
        o.maxParallel = 3
        var m = RunStateMachine(runbook: rb, options: o)
        let first = m.start(now: Date())
        let started = first.compactMap { if case .startAttempt(let s, _, _) = $0 { s } else { nil } }
        #expect(started == ["w0", "w1", "w2"])
        let next = m.attemptFinished(step: "w0", attempt: 1, result: StepResult(.passed), now: Date())
        #expect(next.compactMap { if case .startAttempt(let s, _, _) = $0 { s } else { nil } } == ["w3"])
    }

    @Test func ignoresLateAnswersFromCancelledAttempts() throws {
        let rb = try load(minimalHeader + "  - id: a\n    phase: diagnose\n    check: { command: [\"x\"] }\n    retry: { attempts: 2 }\n")
        var m = RunStateMachine(runbook: rb, options: .init(runID: "r", params: [:]))
        _ = m.start(now: Date())
        _ = m.attemptFinished(step: "a", attempt: 1, result: StepResult(.timedOut), now: Date())
        #expect(m.attemptFinished(step: "a", attempt: 1, result: StepResult(.passed), now: Date()).isEmpty)
    }
}

extension RunStateMachineTests {
    @Test func drainLetsRunningStepsFinishAndKeepsChanges() throws {
        let rb = try load(Self.leak)
        var o = RunStateMachine.Options(runID: "r", params: ["service": .string("shop")])
        o.autoConfirm = true
        var m = RunStateMachine(runbook: rb, options: o)
        let now = Date()
        _ = m.start(now: now)
        _ = m.attemptFinished(step: "symptom", attempt: 1, result: StepResult(.passed), now: now)
        _ = m.attemptFinished(step: "db", attempt: 1, result: StepResult(.passed), now: now)
        // flag-off is running now; drain must not cancel it.
        let drained = m.drain(now: now)
        #expect(!drained.contains { if case .cancelAttempt = $0 { true } else { false } })
        #expect(m.outcome == nil)
        let end = m.attemptFinished(step: "flag-off", attempt: 1, result: StepResult(.passed, change: Self.flagChange), now: now)
        #expect(m.outcome == .interrupted)
        #expect(!end.contains { if case .startUndo = $0 { true } else { false } }, "drain keeps completed changes")
        #expect(!end.contains { if case .startAttempt = $0 { true } else { false } }, "drain started a new step")
    }

    // MARK: Undo as one lifecycle

    static let twoChanges = minimalHeader + """
      - id: symptom
        phase: detect
        check: { command: ["true"] }
      - id: flag-off
        phase: mitigate
        flag: { file: f.json, key: f, variant: "off" }
      - id: bounce
        phase: mitigate
        needs: [flag-off]
        command: ["bounce"]
        undo: { command: ["unbounce"] }
      - id: kick
        phase: mitigate
        needs: [bounce]
        restart: { command: ["restart.sh"], pidfile: p.pid }
      - id: flat
        phase: verify
        check: { command: ["true"] }

    """

    func twoChangeAnswers(_ s: String, verify: StepStatus = .failed) -> StepResult {
        switch s {
        case "flag-off": StepResult(.passed, change: Self.flagChange)
        case "bounce": StepResult(.passed, change: AppliedChange(what: "command", from: "-", to: "bounce"))
        case "kick": StepResult(.passed, change: AppliedChange(what: "restart app", from: "pid 1", to: "pid 2"))
        case "flat": StepResult(verify)
        default: StepResult(.passed)
        }
    }

    func runFinished(_ h: Harness) -> [TimelineEvent] { h.events.filter { $0.event == "run.finished" } }

    @Test func anInterruptDuringUndoNeitherEndsTheRunEarlyNorStartsAnUndoAfterTheEnd() throws {
        var h = try Harness(Self.twoChanges)
        h.duringUndo = { m, now in m.interrupt(now: now) }
        #expect(h.run { s, _ in twoChangeAnswers(s) } == .failed)
        #expect(h.undone == ["bounce:command", "flag-off:flag f"])
        #expect(runFinished(h).count == 1)
        #expect(h.events.last?.event == "run.finished")
        let end = h.events.firstIndex { $0.event == "run.finished" }!
        #expect(!h.events[end...].contains { $0.event.hasPrefix("undo.") })
        #expect(runFinished(h).first?.message?.contains("2 changes undone") == true)
    }

    @Test func aFailedUndoIsRecordedAsUndoFailedAndTheRunFailsListingWhatIsLeft() throws {
        var h = try Harness(Self.twoChanges)
        h.undoAnswer = { s in s == "bounce" ? StepResult(.failed, "exit 1") : StepResult(.passed) }
        #expect(h.run { s, _ in twoChangeAnswers(s) } == .failed)
        let failed = h.events.filter { $0.event == "undo.failed" }
        #expect(failed.count == 1 && failed.first?.step == "bounce")
        let message = runFinished(h).first?.message ?? ""
        #expect(message.contains("undo incomplete"))
        #expect(message.contains("left in place: command: - -> bounce"))
        #expect(message.contains("restart app: pid 1 -> pid 2 (not undoable)"))
        #expect(!message.contains("flag f: on -> off"))
    }

    @Test func aHangingUndoTimesOutAndTheNextUndoStillRuns() throws {
        var h = try Harness(Self.twoChanges)
        h.undoAnswer = { s in s == "bounce" ? nil : StepResult(.passed) }
        #expect(h.run { s, _ in twoChangeAnswers(s) } == .failed)
        #expect(h.undone == ["bounce:command", "flag-off:flag f"])
        #expect(h.events.first { $0.event == "undo.failed" }?.message?.contains("timed out after 30s") == true)
        #expect(h.events.contains { $0.event == "undo.finished" && $0.step == "flag-off" })
        #expect(h.endedUndos == [0, 1])
        #expect(runFinished(h).count == 1)
    }

    @Test func aSecondInterruptDuringUndoEndsTheRunOnceListingChangesLeftInPlace() throws {
        var h = try Harness(Self.twoChanges)
        h.duringUndo = { m, now in m.interrupt(now: now) + m.abandon(now: now) }
        #expect(h.run { s, _ in twoChangeAnswers(s) } == .interrupted)
        #expect(runFinished(h).count == 1)
        #expect(h.events.last?.event == "run.finished")
        let message = runFinished(h).first?.message ?? ""
        #expect(message.contains("interrupted twice"))
        #expect(message.contains("flag f: on -> off"))
        #expect(message.contains("command: - -> bounce"))
    }

    @Test func aRestartIsDeclaredNotUndoableWhenApplied() throws {
        var h = try Harness(Self.twoChanges)
        #expect(h.run { s, _ in twoChangeAnswers(s, verify: .passed) } == .mitigated)
        let kick = h.events.first { $0.event == "change.applied" && $0.step == "kick" }
        #expect(kick?.undoable == false)
        #expect(kick?.message?.hasSuffix("(not undoable)") == true)
        #expect(h.events.first { $0.event == "change.applied" && $0.step == "flag-off" }?.undoable == nil)
    }

    @Test func aRunThatCannotBeRecordedStartsNothingNewAndUndoes() throws {
        var g = try Harness(Self.twoChanges)
        var queue = g.machine.start(now: g.now)
        var started: [String] = []
        var undos: [String] = []
        var result: RunOutcome?
        var injected = false
        while !queue.isEmpty {
            let e = queue.removeFirst()
            switch e {
            case .emit, .emitNote:
                guard let ev = e.recordedEvent else { continue }
                g.events.append(ev)
                if ev.event == "change.applied", !injected {
                    injected = true
                    queue += g.machine.recordingFailed("cannot write x: No space left on device (errno 28)", now: g.now)
                }
            case .startAttempt(let s, let a, _):
                // As the driver does: once the record failed, no attempt of this batch starts.
                if injected { continue }
                started.append(s)
                queue += g.machine.attemptFinished(step: s, attempt: a, result: twoChangeAnswers(s), now: g.now)
            case .startUndo(let i, _, let s, _):
                undos.append(s)
                queue += g.machine.undoFinished(index: i, result: StepResult(.passed), now: g.now)
            case .finished(let o): result = o
            default: break
            }
        }
        #expect(result == .failed)
        #expect(started == ["symptom", "flag-off"])
        #expect(undos == ["flag-off"])
        #expect(g.events.last { $0.step == "bounce" && $0.event == "step.finished" }?.message == "stopped: the run could not be recorded")
        #expect(g.events.last { $0.step == "kick" && $0.event == "step.finished" }?.status == "skipped")
        #expect(g.events.last { $0.event == "run.finished" }?.message?.contains("could not be recorded") == true)
        #expect(g.events.filter { $0.event == "run.finished" }.count == 1)
    }

    // MARK: Approval gates

    static let gatedRunbook = minimalHeader + """
      - id: symptom
        phase: detect
        check: { command: ["true"] }
      - id: first
        phase: mitigate
        flag: { file: f.json, key: f, variant: "off" }
      - id: second
        phase: mitigate
        needs: [first]
        confirm: { approvals: 2, timeout: 10m }
        flag: { file: g.json, key: g, variant: "off" }

    """

    @Test func aGateWaitsForDistinctApproversAndCountsEachOnce() throws {
        var h = try Harness(Self.gatedRunbook)
        h.gateAnswers = { _ in [.approved(by: "alice"), .approved(by: "alice"), .approved(by: "bob")] }
        let outcome = h.run { s, _ in s == "symptom" ? StepResult(.passed) : StepResult(.passed, change: Self.flagChange) }
        #expect(outcome == .mitigated)
        #expect(h.gatesOpened.map(\.id) == ["second"])
        #expect(h.events.filter { $0.event == "approval.granted" }.compactMap(\.by) == ["alice", "bob"])
        #expect(h.events.last { $0.event == "approval.granted" }?.status == "approved")
        #expect(h.attempts.map(\.step) == ["symptom", "first", "second"])
    }

    @Test func aDeniedGateEndsRefusedAndUndoesTheChangesBeforeIt() throws {
        var h = try Harness(Self.gatedRunbook)
        h.gateAnswers = { _ in [.denied(by: "lead")] }
        let outcome = h.run { s, _ in s == "symptom" ? StepResult(.passed) : StepResult(.passed, change: Self.flagChange) }
        #expect(outcome == .refused)
        #expect(h.status("second") == "declined")
        #expect(h.undone == ["first:flag f"])
        #expect(h.events.last?.message?.contains("step second not approved: denied by lead") == true, "\(h.events.last?.message ?? "")")
    }

    @Test func aTimedOutGateDeclinesOrProceedsAsTheRunbookSays() throws {
        var declined = try Harness(Self.gatedRunbook)
        declined.gateAnswers = { _ in [] }
        #expect(declined.run { s, _ in s == "symptom" ? StepResult(.passed) : StepResult(.passed, change: Self.flagChange) } == .refused)
        #expect(declined.events.contains { $0.event == "approval.timed_out" && $0.status == "declined" })
        var proceeds = try Harness(Self.gatedRunbook.replacingOccurrences(of: "timeout: 10m }", with: "timeout: 10m, on_timeout: proceed }"))
        proceeds.gateAnswers = { _ in [] }
        #expect(proceeds.run { s, _ in s == "symptom" ? StepResult(.passed) : StepResult(.passed, change: Self.flagChange) } == .mitigated)
    }

    @Test func theRunsGateHoldsEveryMitigateStepUntilApproved() throws {
        var h = try Harness(Self.leak)
        h.machine = RunStateMachine(runbook: try load(Self.leak), options: {
            var o = RunStateMachine.Options(runID: "r-test", params: ["service": .string("shop")])
            o.autoConfirm = true
            o.asksBeforeChanges = true
            return o
        }())
        h.changeReasons = { ["guards.auto: ask"] }
        h.gateAnswers = { _ in [.approved(by: "ops")] }
        let outcome = h.run { s, _ in s == "flag-off" ? StepResult(.passed, change: Self.flagChange) : StepResult(.passed) }
        #expect(outcome == .mitigated)
        // Nothing that changes the world started before the approval.
        let approvedAt = try #require(h.events.firstIndex { $0.event == "approval.granted" })
        let firstChange = try #require(h.events.firstIndex { $0.event == "step.started" && $0.phase == "mitigate" })
        #expect(approvedAt < firstChange)
        #expect(h.gatesOpened.map(\.id) == [RunStateMachine.changesGateID])
        #expect(h.gatesOpened.first?.reasons == [.given("guards.auto: ask")])
    }

    @Test func aResumedRunNeverRerunsFinishedStepsAndKeepsItsGatesDeadline() throws {
        let rb = try load(Self.gatedRunbook)
        var first = try Harness(Self.gatedRunbook)
        first.gateAnswers = { _ in [.approved(by: "alice")] }
        // Stop at the gate: answer only one of two approvals, then take the events so far.
        var m = first.machine
        var events: [TimelineEvent] = []
        var queue = m.start(now: first.now)
        var deadline: Date?
        while !queue.isEmpty {
            switch queue.removeFirst() {
            case let effect where effect.recordedEvent != nil: events.append(effect.recordedEvent!)
            case .startAttempt(let s, let a, _):
                queue += m.attemptFinished(step: s, attempt: a, result: s == "symptom" ? StepResult(.passed) : StepResult(.passed, change: Self.flagChange), now: first.now)
            case .openGate(let g):
                deadline = g.deadline
                queue += m.gateAnswered(id: g.id, answer: .approved(by: "alice"), now: first.now)
            default: break
            }
        }
        #expect(m.isPausedForApproval)
        var o = RunStateMachine.Options(runID: "r-test", params: ["service": .string("shop")])
        o.random = { 0.5 }
        var h = try Harness(Self.gatedRunbook)
        h.machine = RunStateMachine(runbook: rb, options: o, resuming: events)
        h.gateAnswers = { g in
            #expect(g.deadline == deadline, "the deadline moved")
            #expect(g.approvedBy == ["alice"])
            return [.approved(by: "alice"), .approved(by: "bob")]
        }
        let outcome = h.run { _, _ in StepResult(.passed, change: Self.flagChange) }
        #expect(outcome == .mitigated)
        #expect(h.attempts.map(\.step) == ["second"], "finished steps ran again: \(h.attempts)")
        #expect(h.events.filter { $0.event == "approval.granted" }.compactMap(\.by) == ["bob"])
    }

    static let breakerRunbook = minimalHeader + """
      - id: first
        phase: mitigate
        flag: { file: f.json, key: f, variant: "off" }
      - id: second
        phase: mitigate
        needs: [first]
        flag: { file: g.json, key: g, variant: "off" }

    """

    /// A breaker with one change left: the first change goes through, the second is over the cap.
    static func breakerHarness(mayAsk: Bool) throws -> (Harness, LockedFlag) {
        var h = try Harness(Self.breakerRunbook)
        var o = RunStateMachine.Options(runID: "r-test", params: ["service": .string("shop")])
        o.random = { 0.5 }
        o.reservesBreakerPlaces = true
        o.breakerMayAsk = mayAsk
        h.machine = RunStateMachine(runbook: try load(Self.breakerRunbook), options: o)
        let spent = LockedFlag()
        h.breaker = { _ in spent.isSet ? "change breaker: 1 change in the last 1h (cap 1)" : nil }
        return (h, spent)
    }

    @Test func aChangeOverTheBreakersCapStopsTheRunWhenNobodyCanApprove() throws {
        var (h, spent) = try Self.breakerHarness(mayAsk: false)
        let outcome = h.run { _, _ in spent.set(); return StepResult(.passed, change: Self.flagChange) }
        #expect(outcome == .refused)
        #expect(h.attempts.map(\.step) == ["first"])
        #expect(h.events.contains { $0.event == "guard.refused" && $0.guardName == "breaker" && $0.step == "second" })
        #expect(h.undone == ["first:flag f"])
        #expect(h.releases.isEmpty, "a refused reservation holds no place")
    }

    @Test func aChangeOverTheBreakersCapWaitsForApprovalWhenSomeoneCan() throws {
        var (h, spent) = try Self.breakerHarness(mayAsk: true)
        h.gateAnswers = { _ in [.approved(by: "lead")] }
        let outcome = h.run { _, _ in spent.set(); return StepResult(.passed, change: Self.flagChange) }
        #expect(outcome == .mitigated)
        #expect(h.gatesOpened.map(\.id) == ["changes#2"])
        #expect(h.gatesOpened.first?.changes.first?.contains("flag g") == true, "\(h.gatesOpened.first?.changes ?? [])")
        #expect(h.attempts.map(\.step) == ["first", "second"])
        #expect(h.breakerAsks == ["first", "second"], "an approved change over the cap is not asked again")
    }

    @Test func aPlaceReservedForAChangeThatWasNotAppliedIsGivenBackAndAPlaceUsedIsKept() throws {
        var (h, _) = try Self.breakerHarness(mayAsk: false)
        let outcome = h.run { step, _ in step == "first" ? StepResult(.passed, change: Self.flagChange) : StepResult(.failed, "exit 1") }
        #expect(outcome == .failed)
        #expect(h.breakerAsks == ["first", "second"], "each change step reserves its place before it starts")
        // `second` failed: its place is given back, once; `first` applied its change, which keeps its
        // place even though the failed run undid it (it happened).
        #expect(h.releases == ["second"])
    }
}

/// A count kept from any thread.
final class LockedCount: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}

/// A flag set from any thread.
final class LockedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}
