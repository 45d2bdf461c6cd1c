import Foundation
import RunbookCore

/// A drill: one rehearsal of a runbook against recorded outcomes, with the path it must take.
public struct Scenario: Sendable {
    /// What a step reports in the rehearsal.
    public struct Outcome: Sendable {
        /// The status for the first `times` attempts (all attempts when `times` is nil); later attempts pass.
        public var status: StepStatus
        public var times: Int?
        public var output: [String: Value]
        /// How long each attempt takes, in seconds (simulated).
        public var duration: Double?
        public var message: String?
        /// For an `across:` step, the status on named hosts (`{ web-3: failed, default: passed }`);
        /// other hosts get `status`.
        public var hosts: [String: StepStatus] = [:]

        /// The status on `host` (nil: the step's own).
        public func status(on host: String?) -> StepStatus {
            host.flatMap { hosts[$0] } ?? status
        }
    }

    /// The rehearsed approvers.
    public struct Approvals: Sendable {
        public enum Act: String, Sendable { case approve, deny, timeout }
        public var act: Act
        /// Who answers (as many as a gate needs; default `drill-approver-1`, `-2`, ...).
        public var by: [String]
    }

    /// What the run must do.
    public struct Expectation: Sendable {
        public var outcome: RunOutcome?
        /// Steps that must have run (a subset).
        public var ran: [String]?
        /// Steps that must have been skipped (a subset).
        public var skipped: [String]?
        /// The changes, in order; each expected text must equal or begin the actual change.
        public var changes: [String]?
        /// The changes undone, in undo order, as prefixes of their change texts.
        public var undone: [String]?
    }

    public var name: String
    public var runbook: String
    public var description: String
    /// Params given directly.
    public var params: [String: String]
    /// Path of an Alertmanager payload, resolved against the scenario's folder.
    public var alertPath: String?
    public var outcomes: [String: Outcome]
    /// The world the drill starts in: flag values by key (`state: { flags: { image-resize: "on" } }`).
    /// A drill reads no flag file; a flag not given here starts as `?`.
    public var flags: [String: String] = [:]
    /// What the rehearsed approvers do at every gate (`approvals: { act: approve | deny | timeout }`);
    /// nil: the scenario has none, and a rehearsal that reaches a gate is invalid.
    public var approvals: Approvals?
    /// A change freeze in force during the drill (`state: { freeze: REASON }`): server runs of a
    /// runbook with an approval path wait at a gate before their changes.
    public var freeze: String?
    public var expect: Expectation
    public var file: String
    /// Where each key sits, for errors found once the runbook is known.
    var locations: [String: SourceLocation]
}

/// Reads scenario files with the same located errors as runbooks.
public enum ScenarioLoader {
    static let statuses = ["passed", "failed", "timed-out", "errored"]

    static let outcomeObject = ObjectShape("a step's recorded outcome", [
        field("status", .choice(statuses), required: true),
        field("times", .integer, "this status for the first N attempts, then passed"),
        field("output", .dictionary(.scalar), "output values"),
        field("duration", .duration, "how long each attempt takes (simulated)"),
        field("message", .text),
    ])

    static let grammar = ObjectShape("a drill scenario", [
        field("drill", .text, required: true, "name"),
        field("runbook", .text, required: true, "runbook to rehearse"),
        field("description", .text),
        field("alert", .text, "Alertmanager payload file, relative to this file"),
        field("params", .dictionary(.scalar)),
        field("outcomes", .dictionary(.either([.choice(statuses), .dictionary(.either([.scalar, .dictionary(.scalar)]))])),
              "step id to outcome: a status, {status, times, output, duration, message}, or per host {HOST: status, default: status}"),
        field("state", .object(ObjectShape([
            field("flags", .dictionary(.scalar), "flag key to its value when the drill starts"),
            field("freeze", .text, "a change freeze is in force, for this reason: changes wait for approval"),
        ])), "the world the drill starts in"),
        field("approvals", .object(ObjectShape([
            field("act", .choice(["approve", "deny", "timeout"]), required: true, "what the approvers do at every gate"),
            field("by", .list(.text), "who answers (default drill-approver-1, -2, ...)"),
        ])), "what approvers do at approval gates"),
        field("expect", .object(ObjectShape([
            field("outcome", .choice(["mitigated", "completed", "not-confirmed", "inconclusive", "failed", "aborted", "refused", "interrupted"])),
            field("ran", .list(.text)),
            field("skipped", .list(.text)),
            field("changes", .list(.text), "change texts (or their beginnings), in order"),
            field("undone", .list(.text), "changes undone, in undo order (text beginnings)"),
        ])), required: true),
    ])

    /// Loads a scenario file.
    /// - Throws: `LoadError` with every problem found.
    public static func load(path: String) throws -> Scenario {
        let text = try RunbookLoader.readText(path: path)
        let root = try YAMLReader.parse(text, file: path)
        var checker = ShapeChecker()
        _ = checker.checkObject(root, grammar, context: "")
        if !checker.diagnostics.isEmpty { throw LoadError(checker.diagnostics) }
        func str(_ n: YAMLNode?) -> String? { n.flatMap { $0.isNull ? nil : $0.scalar } }
        var locations: [String: SourceLocation] = ["": root.location]
        var outcomes: [String: Scenario.Outcome] = [:]
        var hostProblems: [Diagnostic] = []
        for e in root["outcomes"]?.entries ?? [] {
            locations["outcomes.\(e.key)"] = e.keyNode.location
            let n = e.value
            if let s = n.scalar {
                outcomes[e.key] = Scenario.Outcome(status: StepStatus(rawValue: s)!, output: [:])
                continue
            }
            if n["status"] == nil, let entries = n.entries {
                // Per host: `{ web-3: failed, default: passed }`.
                var hosts: [String: StepStatus] = [:]
                var fallback = StepStatus.passed
                for h in entries {
                    guard let v = str(h.value), let st = StepStatus(rawValue: v), statuses.contains(v) else {
                        hostProblems.append(Diagnostic(h.value.location, "outcomes.\(e.key).\(h.key) must be one of \(statuses.joined(separator: ", ")) (per-host outcomes of an across: step)"))
                        continue
                    }
                    if h.key == "default" { fallback = st } else { hosts[h.key] = st }
                }
                outcomes[e.key] = Scenario.Outcome(status: fallback, output: [:], hosts: hosts)
                continue
            }
            var objectChecker = ShapeChecker()
            _ = objectChecker.checkObject(n, outcomeObject, context: "outcomes.\(e.key)")
            hostProblems += objectChecker.diagnostics
            var output: [String: Value] = [:]
            for o in n["output"]?.entries ?? [] {
                output[o.key] = o.value.isNull ? .null : o.value.bool.map(Value.bool) ?? o.value.number.map(Value.number) ?? .string(o.value.scalar ?? "")
            }
            outcomes[e.key] = Scenario.Outcome(
                status: StepStatus(rawValue: str(n["status"]) ?? "passed") ?? .passed, times: n["times"]?.number.map { Int($0) },
                output: output, duration: str(n["duration"]).flatMap(Quantity.duration), message: str(n["message"]))
        }
        if !hostProblems.isEmpty { throw LoadError(hostProblems) }
        var params: [String: String] = [:]
        for e in root["params"]?.entries ?? [] { params[e.key] = e.value.isNull ? "" : (e.value.scalar ?? "") }
        var flags: [String: String] = [:]
        for e in root["state"]?["flags"]?.entries ?? [] {
            flags[e.key] = e.value.isNull ? "?" : (e.value.bool.map { $0 ? "true" : "false" } ?? e.value.scalar ?? "?")
            locations["state.flags.\(e.key)"] = e.keyNode.location
        }
        var approvals: Scenario.Approvals?
        if let a = root["approvals"], let act = str(a["act"]).flatMap(Scenario.Approvals.Act.init(rawValue:)) {
            approvals = Scenario.Approvals(act: act, by: a["by"]?.items?.compactMap(str) ?? [])
            locations["approvals"] = a.location
        }
        let freeze = str(root["state"]?["freeze"])
        let ex = root["expect"]
        for key in ["outcome", "ran", "skipped", "changes"] { if let n = ex?[key] { locations["expect.\(key)"] = n.location } }
        for (i, n) in (ex?["ran"]?.items ?? []).enumerated() { locations["expect.ran.\(i)"] = n.location }
        for (i, n) in (ex?["skipped"]?.items ?? []).enumerated() { locations["expect.skipped.\(i)"] = n.location }
        for e in root["outcomes"]?.entries ?? [] {
            for o in e.value["output"]?.entries ?? [] { locations["outcomes.\(e.key).output.\(o.key)"] = o.keyNode.location }
        }
        if let n = root["runbook"] { locations["runbook"] = n.location }
        if let n = root["alert"] { locations["alert"] = n.location }
        let expect = Scenario.Expectation(
            outcome: str(ex?["outcome"]).flatMap(RunOutcome.init(rawValue:)),
            ran: ex?["ran"]?.items?.compactMap(str), skipped: ex?["skipped"]?.items?.compactMap(str),
            changes: ex?["changes"]?.items?.compactMap(str), undone: ex?["undone"]?.items?.compactMap(str))
        var alertPath = str(root["alert"])
        if let a = alertPath, !a.hasPrefix("/") {
            let dir = (path as NSString).deletingLastPathComponent
            alertPath = dir.isEmpty ? a : dir + "/" + a
        }
        var scenario = Scenario(name: str(root["drill"]) ?? "", runbook: str(root["runbook"]) ?? "", description: str(root["description"]) ?? "",
                                params: params, alertPath: alertPath, outcomes: outcomes, flags: flags, expect: expect, file: path, locations: locations)
        scenario.approvals = approvals
        scenario.freeze = freeze
        return scenario
    }

    /// Checks the scenario against its runbook: it rehearses this runbook, every step it names exists,
    /// every recorded output is one the step's check reports. All problems at once.
    /// - Throws: `LoadError` with each problem, located.
    public static func validate(_ s: Scenario, against runbook: Runbook) throws {
        var problems = problemsAgainst(s, runbook)
        problems.sort { ($0.location.line, $0.location.column) < ($1.location.line, $1.location.column) }
        if !problems.isEmpty { throw LoadError(problems) }
    }

    static func problemsAgainst(_ s: Scenario, _ runbook: Runbook) -> [Diagnostic] {
        var problems: [Diagnostic] = []
        if s.runbook != runbook.name {
            problems.append(Diagnostic(location(s, "runbook"), "scenario rehearses runbook '\(s.runbook)', not '\(runbook.name)'"))
        }
        for (id, outcome) in s.outcomes.sorted(by: { $0.key < $1.key }) {
            guard let step = runbook.step(id) ?? runbook.abortIf.first(where: { $0.id == id })?.asStep,
                  let entry = ActionReference.entry(for: step.action) else { continue }
            for name in outcome.output.keys.sorted() where !ActionReference.hasOutput(step.action, name) {
                let names = ActionReference.outputs(of: step.action).map(\.name)
                problems.append(Diagnostic(location(s, "outcomes.\(id).output.\(name)"),
                    "step '\(id)' (\(entry.key)) has no output '\(name)'\(Suggest.hint(for: name, among: names)); its outputs: \(names.isEmpty ? "none" : names.joined(separator: ", "))"))
            }
        }
        let ids = runbook.steps.map(\.id) + runbook.abortIf.map(\.id)
        func check(_ id: String, _ key: String) {
            if !ids.contains(id) {
                problems.append(Diagnostic(s.locations[key] ?? s.locations[""]!, "unknown step '\(id)' in runbook \(runbook.name)\(Suggest.hint(for: id, among: ids))"))
            }
        }
        for id in s.outcomes.keys.sorted() { check(id, "outcomes.\(id)") }
        for (i, id) in (s.expect.ran ?? []).enumerated() { check(id, "expect.ran.\(i)") }
        for (i, id) in (s.expect.skipped ?? []).enumerated() { check(id, "expect.skipped.\(i)") }
        return problems
    }

    /// Where a key of the scenario sits.
    public static func location(_ s: Scenario, _ key: String) -> SourceLocation {
        s.locations[key] ?? (key.contains(".") ? location(s, String(key[..<key.lastIndex(of: ".")!])) : s.locations[""]!)
    }
}
