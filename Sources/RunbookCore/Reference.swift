import Foundation

/// A dotted name used in templates and `when` expressions.
///
/// `params.NAME`, `steps.ID.passed|failed|errored|skipped|status`, `steps.ID.output.NAME`, `run.id`,
/// `alert.labels.NAME`, `alert.annotations.NAME` (the `alert` ones only in trigger params).
public enum Reference: Sendable, Hashable, CustomStringConvertible {
    case param(String)
    case stepState(step: String, state: StepState)
    case stepOutput(step: String, name: String)
    case runID
    case alertLabel(String)
    case alertAnnotation(String)
    /// `target.host`: the host an `across:` step is acting on.
    case targetHost

    /// What `steps.ID.X` can ask about a step.
    public enum StepState: String, Sendable, CaseIterable {
        case passed, failed, skipped, errored, status
    }

    /// The step a reference reads, if any.
    public var step: String? {
        switch self {
        case .stepState(let s, _), .stepOutput(let s, _): s
        default: nil
        }
    }

    public var description: String {
        switch self {
        case .param(let n): "params.\(n)"
        case .stepState(let s, let st): "steps.\(s).\(st.rawValue)"
        case .stepOutput(let s, let n): "steps.\(s).output.\(n)"
        case .runID: "run.id"
        case .alertLabel(let n): "alert.labels.\(n)"
        case .alertAnnotation(let n): "alert.annotations.\(n)"
        case .targetHost: "target.host"
        }
    }

    /// Parses a dotted path; returns a message saying what is expected when it is not a known form.
    static func parse(_ path: String) -> Result<Reference, ReferenceError> {
        let parts = path.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard let head = parts.first, !parts.contains(where: \.isEmpty) else {
            return .failure(ReferenceError("'\(path)' is not a name like params.NAME or steps.ID.passed"))
        }
        switch head {
        case "params":
            guard parts.count == 2 else { return .failure(ReferenceError("'\(path)': write params.NAME")) }
            return .success(.param(parts[1]))
        case "steps":
            if parts.count == 3, let state = StepState(rawValue: parts[2]) { return .success(.stepState(step: parts[1], state: state)) }
            if parts.count >= 4, parts[2] == "output" || parts[2] == "outputs" {
                return .success(.stepOutput(step: parts[1], name: parts[3...].joined(separator: ".")))
            }
            let hint = parts.count == 3 ? Suggest.hint(for: parts[2], among: StepState.allCases.map(\.rawValue) + ["output"]) : ""
            return .failure(ReferenceError("'\(path)': write steps.ID.passed, steps.ID.failed, steps.ID.errored, steps.ID.skipped, steps.ID.status or steps.ID.output.NAME\(hint)"))
        case "run":
            guard parts == ["run", "id"] else { return .failure(ReferenceError("'\(path)': the only run field is run.id")) }
            return .success(.runID)
        case "alert":
            if parts.count == 3, parts[1] == "labels" { return .success(.alertLabel(parts[2])) }
            if parts.count == 3, parts[1] == "annotations" { return .success(.alertAnnotation(parts[2])) }
            return .failure(ReferenceError("'\(path)': write alert.labels.NAME or alert.annotations.NAME"))
        case "target":
            guard parts == ["target", "host"] else { return .failure(ReferenceError("'\(path)': the only target field is target.host")) }
            return .success(.targetHost)
        default:
            return .failure(ReferenceError("unknown name '\(path)'\(Suggest.hint(for: head, among: ["params", "steps", "run", "alert"])): names start with params., steps., run. or alert."))
        }
    }
}

/// Why a dotted name could not be read.
struct ReferenceError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}
