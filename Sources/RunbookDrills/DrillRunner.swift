import Dispatch
import Foundation
import RunbookCore
import RunbookRuntime

/// The result of one rehearsal.
public struct DrillReport: Sendable {
    public var scenario: Scenario
    public var runID: String
    public var outcome: RunOutcome
    public var events: [TimelineEvent]
    /// Steps that started, in order.
    public var ran: [String]
    public var skipped: [String]
    /// Changes that would have been made, in order.
    public var changes: [String]
    /// Changes undone, in undo order.
    public var undone: [String]
    /// Expectations that did not hold, as `expected ... / actual ...` lines.
    public var failures: [String]
    /// Simulated duration of the response.
    public var simulatedDuration: Double

    public var passed: Bool { failures.isEmpty }
}

/// A scenario that cannot be rehearsed (exit 2).
public struct DrillInvalid: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// Runs a scenario on the real runner with the drill executor and simulated time.
public enum DrillRunner {
    /// Rehearses `scenario` against `runbook`.
    /// - Parameters:
    ///   - extraSink: also receives the events (the CLI records drills in the history).
    /// - Throws: `DrillInvalid` for an unusable scenario: unknown steps, bad params, an alert that matches no
    ///   trigger, or a check reached without a recorded outcome.
    public static func run(_ scenario: Scenario, runbook: Runbook, runID: String = RunInputs.newRunID(), extraSink: (any TimelineSink)? = nil) throws -> DrillReport {
        // Every problem of the scenario at once, located.
        var problems = ScenarioLoader.problemsAgainst(scenario, runbook)
        var given: [String: String] = [:]
        var trigger = "drill"
        if let alertPath = scenario.alertPath {
            let at = ScenarioLoader.location(scenario, "alert")
            if let data = FileManager.default.contents(atPath: alertPath) {
                do {
                    let payload = try AlertPayload.decode(data)
                    if let (alert, t) = payload.alerts.lazy.filter(\.isFiring).compactMap({ a in runbook.trigger(for: a).map { (a, $0) } }).first {
                        given = t.params(from: alert)
                        trigger = "alert:\(alert.labels["alertname"] ?? "?")"
                    } else {
                        problems.append(Diagnostic(at, "no firing alert in \(alertPath) matches a trigger of runbook \(runbook.name)"))
                    }
                } catch {
                    problems.append(Diagnostic(at, "alert payload \(alertPath): \(error)"))
                }
            } else {
                problems.append(Diagnostic(at, "cannot read alert payload \(alertPath)"))
            }
        }
        for (k, v) in scenario.params { given[k] = v }
        do {
            let values = try RunInputs.resolve(runbook, given: given)
            problems += hostProblems(scenario, runbook, params: values)
        } catch {
            problems.append(Diagnostic(ScenarioLoader.location(scenario, "params"), "run refused: \(error)"))
        }
        if !problems.isEmpty {
            throw DrillInvalid(diagnostics: problems.sorted { ($0.location.line, $0.location.column) < ($1.location.line, $1.location.column) })
        }

        let start = Date()
        let collector = TimelineCollector()
        let executor = DrillExecutor(outcomes: scenario.outcomes, flags: scenario.flags, alarms: Set(runbook.abortIf.map(\.id)))
        // A drill rehearses the server's path: auto: ask, and a freeze when someone can approve.
        let freeze = scenario.freeze.map { GuardCheck.Refusal(guardName: "freeze", until: nil, message: $0) }
        var request = RunRequest(runbook: runbook, given: given, trigger: trigger)
        request.mode = .rehearsal
        request.alertRun = true
        request.autoConfirm = true
        request.startMessage = "drill \(scenario.name): \(runbook.title)"
        request.runID = runID
        request.prometheus = RehearsedPrometheusLookup()  // a drill asks no server: every host of within
        let desk = DrillApprovals(scenario.approvals)
        var env = RunEnvironment(store: nil, executor: executor, rule: ChangeApprovalRule(mayPause: true, freeze: { _ in freeze }))
        env.clock = .virtual(start: start)
        env.approver = .custom { scheduler in
            desk.scheduler = scheduler
            return desk
        }
        env.subscribers = [collector] + (extraSink.map { [$0] } ?? [])
        env.maxParallel = 1000
        env.random = { 0.5 }  // no jitter: a drill's timeline is the same every time
        env.queueLabel = "runbook.drill"
        let done = DispatchSemaphore(value: 0)
        let box = Box()
        let prepared = PreparedRun(request, rule: env.rule, now: start)
        do {
            _ = try RunSession.start(AdmittedRun(unadmitted: prepared), environment: env) { session, outcome in
                box.outcome = outcome
                box.end = session.scheduler.now
                done.signal()
            }
        } catch {
            throw DrillInvalid(diagnostics: [Diagnostic(ScenarioLoader.location(scenario, ""), "\(error)")])
        }
        done.wait()
        if let gate = desk.unanswered {
            let loc = ScenarioLoader.location(scenario, "")
            throw DrillInvalid(diagnostics: [Diagnostic(loc, "the rehearsal reaches approval gate '\(gate)' but the scenario says nothing of approvers: add approvals: { act: approve } (or deny, or timeout)")])
        }
        if let step = executor.missing.first {
            let loc = ScenarioLoader.location(scenario, "outcomes")
            throw DrillInvalid(diagnostics: [Diagnostic(loc, "the rehearsal reaches check '\(step)' but the scenario has no outcome for it: add outcomes: { \(step): passed } (or failed)")])
        }
        let events = collector.events
        let finished = events.filter { $0.event == "step.finished" }
        let ran = finished.filter { [.passed, .failed, .timedOut, .errored, .wouldChange, .wouldWait].contains(StepStatus(rawValue: $0.status ?? "")) }.compactMap(\.step)
        let skipped = finished.filter { $0.status == StepStatus.skipped.rawValue || $0.status == StepStatus.declined.rawValue }.compactMap(\.step)
        // The change texts, exactly as a live run words them.
        let changes = finished.filter { $0.status == StepStatus.wouldChange.rawValue }.compactMap { e -> String? in
            guard let m = e.message else { return e.what }
            return m.hasPrefix("would change ") ? String(m.dropFirst("would change ".count)) : m
        }
        var undone: [String] = []
        var pendingUndo: [String: String] = [:]
        for e in events {
            if e.event == "undo.started", let m = e.message { pendingUndo[e.step ?? ""] = m.hasPrefix("undo ") ? String(m.dropFirst(5)) : m }
            if e.event == "undo.finished", e.status == StepStatus.passed.rawValue, let text = pendingUndo.removeValue(forKey: e.step ?? "") { undone.append(text) }
        }
        let outcome = box.outcome ?? .failed
        var report = DrillReport(scenario: scenario, runID: runID, outcome: outcome, events: events, ran: ran, skipped: skipped,
                                 changes: changes, undone: undone, failures: [], simulatedDuration: (box.end ?? start).timeIntervalSince(start))
        report.failures = compare(scenario.expect, report)
        return report
    }

    /// Expected-versus-actual lines for every expectation that does not hold.
    /// Per-host outcomes (`{ web-3: failed, default: passed }`) that name a host the step never acts
    /// on: a misspelt host would otherwise rehearse every host passing, and the drill pass silently.
    static func hostProblems(_ scenario: Scenario, _ runbook: Runbook, params: [String: Value]) -> [Diagnostic] {
        let named = scenario.outcomes.filter { !$0.value.hosts.isEmpty }
        guard !named.isEmpty else { return [] }
        // The drill's own resolution: no server is asked, a prometheus: set is every host of within.
        guard let targets = try? TargetResolver.resolve(runbook, params: params, prometheus: RehearsedPrometheusLookup()) else { return [] }
        var problems: [Diagnostic] = []
        for (id, outcome) in named.sorted(by: { $0.key < $1.key }) {
            let at = ScenarioLoader.location(scenario, "outcomes.\(id)")
            guard let set = runbook.step(id)?.across?.targets else {
                problems.append(Diagnostic(at, "outcomes.\(id) gives per-host outcomes, but step '\(id)' has no across: (give it one status)"))
                continue
            }
            let hosts = targets[set] ?? []
            for host in outcome.hosts.keys.sorted() where !hosts.contains(host) {
                problems.append(Diagnostic(at, "outcomes.\(id).\(host): '\(host)' is not a host of targets.\(set)\(Suggest.hint(for: host, among: hosts)) (its hosts: \(hosts.joined(separator: ", ")))"))
            }
        }
        return problems
    }

    static func compare(_ expect: Scenario.Expectation, _ r: DrillReport) -> [String] {
        var out: [String] = []
        if let o = expect.outcome, o != r.outcome {
            out.append("outcome: expected \(o.rawValue), actual \(r.outcome.rawValue)")
        }
        if let ran = expect.ran {
            let missing = ran.filter { !r.ran.contains($0) }
            if !missing.isEmpty { out.append("ran: expected \(list(ran)) to run; \(list(missing)) did not (ran: \(list(r.ran)))") }
        }
        if let skipped = expect.skipped {
            let missing = skipped.filter { !r.skipped.contains($0) }
            if !missing.isEmpty { out.append("skipped: expected \(list(skipped)) skipped; \(list(missing)) were not (skipped: \(list(r.skipped)))") }
        }
        if let changes = expect.changes {
            let ok = changes.count == r.changes.count && zip(changes, r.changes).allSatisfy { e, a in changeMatches(expected: e, actual: a) }
            if !ok { out.append("changes: expected \(list(changes)), actual \(list(r.changes))") }
        }
        if let undone = expect.undone {
            let ok = undone.count == r.undone.count && zip(undone, r.undone).allSatisfy { e, a in changeMatches(expected: e, actual: a) }
            if !ok { out.append("undone: expected \(list(undone)), actual \(list(r.undone))") }
        }
        return out
    }

    /// An expected change matches when it equals or begins the actual one. A `from` the drill could not
    /// read (`?`: the flag file is not there) matches any expected `from`.
    static func changeMatches(expected e: String, actual a: String) -> Bool {
        if a == e || a.hasPrefix(e + " ") || a.hasPrefix(e + ":") { return true }
        guard let colon = a.range(of: ": ? -> ") else { return false }
        let what = a[..<colon.lowerBound], rest = a[colon.upperBound...]
        guard e.hasPrefix(what + ": "), let arrow = e.range(of: " -> ") else { return false }
        let expectedTo = e[arrow.upperBound...]
        return rest == expectedTo || rest.hasPrefix(expectedTo + " ")
    }

    static func list(_ items: [String]) -> String { "[" + items.joined(separator: ", ") + "]" }

    /// The scenario's approvers: every gate gets the same act.
    final class DrillApprovals: ApprovalDesk, @unchecked Sendable {
        // `reached`, `needed` and `clock` are guarded by `lock`.
        let approvals: Scenario.Approvals?
        private let lock = NSLock()
        private var clock: (any RunScheduler)?
        private var reached: [String] = []
        private var needed: [String: Int] = [:]

        init(_ approvals: Scenario.Approvals?) {
            self.approvals = approvals
        }

        /// The run's simulated clock: answers arrive in simulated time, before the gate's timeout.
        var scheduler: (any RunScheduler)? {
            get { lock.withLock { clock } }
            set { lock.withLock { clock = newValue } }
        }

        /// A gate the rehearsal waited at with no approvers in the scenario (one closed because the
        /// run stopped anyway does not count).
        var unanswered: String? { lock.withLock { reached.first } }

        func open(runID: String, gate: GateRequest) throws {
            lock.withLock {
                needed[gate.id] = gate.gate.approvals
                if approvals == nil { reached.append(gate.id) }
            }
        }

        func watch(runID: String, gate: String, answers: @escaping @Sendable ([ApprovalRecord]) -> Void) -> any Cancellable {
            guard let approvals, let scheduler else { return NothingToCancel() }
            let n = lock.withLock { needed[gate] ?? 1 }
            let names = (0..<max(n, approvals.by.count)).map { $0 < approvals.by.count ? approvals.by[$0] : "drill-approver-\($0 + 1)" }
            switch approvals.act {
            case .approve: return scheduler.schedule(after: 0) { answers(names.map { ApprovalRecord(name: $0, approve: true, at: Date()) }) }
            case .deny: return scheduler.schedule(after: 0) { answers([ApprovalRecord(name: names[0], approve: false, at: Date())]) }
            case .timeout: return NothingToCancel()
            }
        }

        func close(runID: String, gate: String, status: String) {
            if status == "closed" { lock.withLock { reached.removeAll { $0 == gate } } }
        }
    }

    final class Box: @unchecked Sendable {
        // Written once on the run queue before the semaphore is signalled, read after the wait.
        var outcome: RunOutcome?
        var end: Date?
    }
}

extension Scenario {
    /// A scenario rebuilt from a past run's timeline: the checks report what they reported then,
    /// retries included, with the run's params. Expectations are left empty.
    public static func replay(of events: [TimelineEvent], runbook: Runbook) -> Scenario {
        var outcomes: [String: Outcome] = [:]
        var failedAttempts: [String: Int] = [:]
        var params: [String: String] = [:]
        for e in events {
            if e.event == "run.started" { params = e.params ?? [:] }
            if e.event == "step.retrying", let s = e.step { failedAttempts[s, default: 0] += 1 }
            guard e.event == "step.finished", let s = e.step, let step = runbook.step(s), step.action.kind == .check,
                  let status = StepStatus(rawValue: e.status ?? ""), status != .skipped else { continue }
            let duration = Double(e.durationMs ?? 0) / 1000
            if status == .passed, let n = failedAttempts[s], n > 0 {
                outcomes[s] = Outcome(status: .failed, times: n, output: e.output ?? [:], duration: nil, message: nil)
            } else {
                outcomes[s] = Outcome(status: status, times: nil, output: e.output ?? [:], duration: status == .timedOut ? nil : duration, message: e.message)
            }
        }
        for p in runbook.params where p.secret { params[p.name] = nil }
        let run = events.first?.run ?? "?"
        // A dry run changes nothing, so it never reaches what checks a change (verify): the replay
        // assumes those checks pass, as the dry run's `would-mitigate` did, and says so.
        var description = ""
        if events.first(where: { $0.event == "run.started" })?.dryRun == true {
            let assumed = runbook.steps.filter { $0.action.kind == .check && outcomes[$0.id] == nil }.map(\.id)
            for id in assumed {
                outcomes[id] = Outcome(status: .passed, times: nil, output: [:], duration: nil, message: "assumed passed: the dry run did not run it")
            }
            if !assumed.isEmpty {
                description = "replay of a dry run: checks it did not run are assumed to pass (\(assumed.joined(separator: ", "))); write a scenario file with outcomes to rehearse them failing"
            }
        }
        return Scenario(name: "replay of \(run)", runbook: runbook.name, description: description, params: params.filter { k, _ in runbook.param(k) != nil },
                        alertPath: nil, outcomes: outcomes, expect: Expectation(), file: "replay:\(run)",
                        locations: ["": SourceLocation(file: "replay:\(run)", line: 1, column: 1)])
    }
}
