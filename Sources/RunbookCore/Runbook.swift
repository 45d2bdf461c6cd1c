/// The phases of a response, in the order they run.
public enum Phase: String, Sendable, CaseIterable, Comparable, Codable {
    case detect, diagnose, mitigate, verify

    public var order: Int { Phase.allCases.firstIndex(of: self)! }
    public static func < (a: Phase, b: Phase) -> Bool { a.order < b.order }
}

/// A loaded, validated runbook.
public struct Runbook: Sendable {
    public var name: String
    public var title: String
    public var description: String
    public var severity: String
    public var owner: String
    public var params: [ParamSpec]
    public var triggers: [Trigger]
    public var guards: Guards
    /// Steps in file order. Setting them rebuilds `graph`.
    public var steps: [Step] {
        didSet { graph = StepGraph(steps) }
    }
    /// The file it was loaded from.
    public var file: String
    /// Alarms (`abort_if:`): evaluated from the first change to the end of verify.
    public var abortIf: [Alarm] = []
    /// `approvals_channel:`: a webhook told when a run pauses for approval.
    public var approvalsChannel: Template?
    /// How detect steps confirm the incident.
    public var detect: DetectPolicy = .any
    /// `targets:`: named sets of hosts that `across:` steps act on.
    public var targets: [TargetSet] = []
    /// Problems that do not stop the runbook from loading (`validate` prints them; exit stays 0).
    public var warnings: [Diagnostic] = []

    /// The steps' graph (index, needs both ways, order, cycles), built when the steps are set.
    public internal(set) var graph = StepGraph([])

    /// The step with this id (its first definition).
    public func step(_ id: String) -> Step? {
        if let i = graph.index[id], i < steps.count, steps[i].id == id { return steps[i] }
        return steps.first { $0.id == id }
    }
    public func param(_ name: String) -> ParamSpec? { params.first { $0.name == name } }
    /// The target set with this name.
    public func targetSet(_ name: String) -> TargetSet? { targets.first { $0.name == name } }
}

/// A typed input.
public struct ParamSpec: Sendable {
    public var name: String
    public var defaultValue: Value?
    public var pattern: String?
    public var secret: Bool
    public var required: Bool
    public var description: String
    /// `type: path`: the value is a file system path that must resolve (`..` and symlinks) inside `within`.
    public var isPath: Bool = false
    public var within: String?
}

/// One alert rule that starts the runbook.
public struct Trigger: Sendable {
    public var matchers: [LabelMatcher]
    /// Param name to template over `alert.labels` and `alert.annotations`.
    public var params: [(name: String, template: Template)]
    public var location: SourceLocation
}

/// An Alertmanager-style label matcher.
public struct LabelMatcher: Sendable, Hashable {
    public enum Operator: String, Sendable { case equal = "=", notEqual = "!=", matches = "=~", notMatches = "!~" }
    public var label: String
    public var op: Operator
    public var value: String

    /// Reads `value`, `=~regex`, `!=value` or `!~regex`.
    public init(label: String, spec: String) {
        self.label = label
        for op in [Operator.matches, .notMatches, .notEqual] where spec.hasPrefix(op.rawValue) {
            self.op = op
            self.value = String(spec.dropFirst(2))
            return
        }
        self.op = .equal
        self.value = spec.hasPrefix("=") ? String(spec.dropFirst()) : spec
    }
}

/// Limits on runs.
public struct Guards: Sendable {
    public init() {}
    /// An alert may start a run (`auto: true`, or `auto: ask`).
    public var auto: Bool = false
    /// `auto: ask`: an alert's run pauses for approval before its first mitigate step.
    public var askBeforeChanges = false
    public var cooldown: Double?
    public var maxRuns: (count: Int, per: Double)?
    public var lock: Template?
    /// At most this many runs of the runbook at once, whatever their lock keys.
    public var maxActive: Int?
}

/// How a failed step is tried again.
public struct RetryPolicy: Sendable, Hashable {
    /// Total tries including the first.
    public var attempts: Int = 1
    /// Seconds before the second try.
    public var delay: Double = 1
    public var backoff: Double = 1
    public var jitter: Bool = true
    public var maxDelay: Double?

    /// The delay before try `attempt + 1`, before jitter.
    public func baseDelay(afterAttempt attempt: Int) -> Double {
        var d = delay * pow(backoff, Double(max(0, attempt - 1)))
        if let m = maxDelay { d = min(d, m) }
        return d
    }
}

/// What a step does.
public struct Action: Sendable, Hashable {
    public enum Kind: String, Sendable { case check, flag, restart, command, notify, wait }
    /// The action's settings, decoded and range-checked at load.
    public var spec: ActionSpec
    /// A `command` that changes nothing.
    public var readOnly: Bool

    public init(_ spec: ActionSpec, readOnly: Bool = false) {
        self.spec = spec
        self.readOnly = readOnly
    }

    /// Which step key it is.
    public var kind: Kind { spec.kind }

    /// For checks, which one (`http`, `command`...).
    public var checkKind: String? {
        if case .check(let c) = spec { c.kind } else { nil }
    }

    /// True when running it changes the world (so dry runs and drills do not perform it).
    public var isChange: Bool {
        switch kind {
        case .check, .wait: false
        case .command: !readOnly
        case .flag, .restart, .notify: true
        }
    }
}

/// One node of the step graph.
public struct Step: Sendable {
    public var id: String
    public var phase: Phase
    public var description: String
    public var needs: [String]
    public var when: Expression?
    /// Seconds per attempt.
    public var timeout: Double
    public var retry: RetryPolicy
    /// `confirm: true`: a terminal prompt, `--yes`, or a standing approval answers it.
    public var confirm: Bool
    /// `confirm: { approvals, timeout, on_timeout }`: the step waits for named approvals (SPEC §6.9).
    public var gate: ApprovalGate? = nil
    public var continueOnFailure: Bool
    public var action: Action
    public var undo: Action?
    public var location: SourceLocation
    /// `rules_out:` what a pass of this check rules out; `finding:` what a pass means was found.
    public var rulesOut: String?
    public var finding: String?
    /// False when the file's `phase` was missing or invalid (already reported): checks that depend on
    /// the phase are skipped for it, so one typo is one error.
    public var phaseDeclared = true
    /// `across:`: the action runs on every host of a target set, with rate control.
    public var across: AcrossSpec? = nil

    /// Default per-attempt timeout in seconds.
    public static let defaultTimeout = 30.0
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `detect: any | all` (SPEC §6.1).
public enum DetectPolicy: String, Sendable {
    /// One passing detect step confirms the incident.
    case any
    /// Every detect step must pass.
    case all
}

/// An `abort_if:` alarm: a check that, when it passes, stops the run and undoes its changes.
public struct Alarm: Sendable {
    public var id: String
    public var action: Action
    /// Seconds between evaluations.
    public var every: Double
    /// Seconds one evaluation may take.
    public var timeout: Double
    public var location: SourceLocation

    /// The alarm as a step the executors can run (a read-only check).
    public var asStep: Step {
        Step(id: id, phase: .verify, description: "", needs: [], when: nil, timeout: timeout, retry: RetryPolicy(),
             confirm: false, continueOnFailure: true, action: action, undo: nil, location: location)
    }
}

/// An approval gate: how many distinct people must approve, how long to wait, and what a timeout means.
public struct ApprovalGate: Sendable, Hashable {
    public enum OnTimeout: String, Sendable { case decline, proceed }
    public var approvals: Int = 1
    /// Seconds to wait for the approvals.
    public var timeout: Double = ApprovalGate.defaultTimeout
    public var onTimeout: OnTimeout = .decline

    public init(approvals: Int = 1, timeout: Double = ApprovalGate.defaultTimeout, onTimeout: OnTimeout = .decline) {
        self.approvals = approvals
        self.timeout = timeout
        self.onTimeout = onTimeout
    }

    /// A gate with no `timeout` waits 15 minutes.
    public static let defaultTimeout = 900.0
}
