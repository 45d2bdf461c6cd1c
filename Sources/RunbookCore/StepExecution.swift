import Foundation

/// A change a step made (or, in dry runs and drills, would make), with what undoing it needs.
public struct AppliedChange: Sendable, Hashable {
    /// What changed: `flag image-resize`, `restart app`.
    public var what: String
    public var from: String
    public var to: String
    /// Where, for the human line: a file, a URL.
    public var location: String?
    /// How to reverse it without an explicit `undo` (flag files), if any.
    public var automaticUndo: UndoPlan?
    /// True when it was only described, not made.
    public var simulated: Bool
    /// The host it was made on, for one host of an `across:` step (its undo runs there).
    public var target: String? = nil

    public init(what: String, from: String, to: String, location: String? = nil, automaticUndo: UndoPlan? = nil, simulated: Bool = false) {
        self.what = what
        self.from = from
        self.to = to
        self.location = location
        self.automaticUndo = automaticUndo
        self.simulated = simulated
    }

    /// The change's one text (SPEC §6.3): `flag image-resize: on -> off in examples/leaky-shop/flags.json`,
    /// `restart shop: pid 1 -> pid 2`, `restart shop`, `command systemctl reload nginx`, `notify URL`.
    public var summary: String {
        let fromTo = from.isEmpty && to.isEmpty ? "" : ": \(from) -> \(to)"
        return "\(what)\(fromTo)\(location.map { " in \($0)" } ?? "")\(target.map { " on \($0)" } ?? "")"
    }
}

/// A built-in way to reverse a change.
public enum UndoPlan: Sendable, Hashable {
    /// Put the JSON value text `previous` back at `flags.KEY.FIELD` of a flagd file.
    case flagFile(path: String, key: String, field: String, previous: String)
}

/// What one attempt of a step produced.
public struct StepResult: Sendable {
    public var status: StepStatus
    public var message: String
    public var output: [String: Value]
    public var change: AppliedChange?
    public var exitCode: Int?
    public var stdout: String?
    public var stderr: String?

    public init(_ status: StepStatus, _ message: String = "", output: [String: Value] = [:], change: AppliedChange? = nil) {
        self.status = status
        self.message = message
        self.output = output
        self.change = change
    }
}

/// Everything an executor needs for one attempt.
public struct StepRequest: Sendable {
    public var step: Step
    public var attempt: Int
    public var runID: String
    /// The runbook's name, for messages that leave the engine (notify).
    public var runbookName: String = ""
    public var dryRun: Bool
    /// Values templates read: params, earlier outputs, run id.
    public var values: TemplateValues
    /// The run's time source; `wait` uses it so that waits hold no thread.
    public var scheduler: any RunScheduler
    /// Set for one host of an `across:` step: commands run there over SSH.
    public var target: FleetTarget?
    /// Where an `across:` step reports each host's progress (the driver records it on the timeline).
    public var report: (@Sendable (FleetProgress) -> Void)?

    /// Renders a template against this request's values.
    public func render(_ t: Template) -> String { t.render(values.lookup) }
}

/// A snapshot of the values templates and `when` may read.
public struct TemplateValues: Sendable {
    public var params: [String: Value]
    public var statuses: [String: StepStatus]
    public var outputs: [String: [String: Value]]
    public var runID: String
    /// The host an `across:` step is acting on (`{{ target.host }}`).
    public var target: String?
    /// Each target set's hosts, resolved before the run started.
    public var targets: [String: [String]] = [:]

    public init(params: [String: Value], statuses: [String: StepStatus] = [:], outputs: [String: [String: Value]] = [:], runID: String) {
        self.params = params
        self.statuses = statuses
        self.outputs = outputs
        self.runID = runID
    }

    public func lookup(_ r: Reference) -> Value {
        switch r {
        case .param(let p): return params[p] ?? .null
        case .stepState(let s, let st):
            let status = statuses[s]
            switch st {
            case .passed: return .bool(status?.succeeded ?? false)
            case .failed: return .bool(status == .failed || status == .timedOut)
            case .errored: return .bool(status == .errored)
            case .skipped: return .bool(status == .skipped || status == .declined)
            case .status: return status.map { .string($0.rawValue) } ?? .null
            }
        case .stepOutput(let s, let n): return outputs[s]?[n] ?? .null
        case .runID: return .string(runID)
        case .alertLabel, .alertAnnotation: return .null
        case .targetHost: return target.map(Value.string) ?? .null
        }
    }
}

/// Performs steps. Live execution, dry runs and drills are executors; the runner does not know which.
public protocol StepExecutor: Sendable {
    /// Starts one attempt. `completion` may be called from any thread, once.
    /// - Returns: a handle the runner cancels on timeout or interrupt.
    func execute(_ request: StepRequest, completion: @escaping @Sendable (StepResult) -> Void) -> any Cancellable

    /// Reverses a change: the step's explicit `undo` action when `action` is set, else `change.automaticUndo`.
    /// - Returns: a handle the runner cancels when the undo runs past its timeout.
    func undo(_ change: AppliedChange, action: Action?, request: StepRequest, completion: @escaping @Sendable (StepResult) -> Void) -> any Cancellable
}

/// A handle with nothing to stop.
public struct NothingToCancel: Cancellable {
    public init() {}
    public func cancel() {}
}
