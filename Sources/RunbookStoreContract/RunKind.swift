import Foundation

/// What a history row is: a live run, a dry run, or a drill. `runbook history` shows live runs
/// unless asked for more (`--all`, `--kind`), so rehearsals do not bury real incidents.
public enum RunKind: String, Sendable, CaseIterable, Codable {
    case live
    case dryRun = "dry-run"
    case drill

    /// The kind of a stored row (a drill's row is also a dry run: it counts as a drill).
    public init(_ record: RunRecord) {
        self = record.drill ? .drill : record.dryRun ? .dryRun : .live
    }

    /// The SQL condition on the `dry_run` and `drill` columns that selects `kinds` (both stores
    /// name them alike); nil when every kind is asked for.
    public static func sqlCondition(_ kinds: Set<RunKind>) -> String? {
        if kinds.isEmpty || kinds == Set(allCases) { return nil }
        let parts = kinds.sorted { $0.rawValue < $1.rawValue }.map { kind -> String in
            switch kind {
            case .live: return "(NOT dry_run AND NOT drill)"
            case .dryRun: return "(dry_run AND NOT drill)"
            case .drill: return "(drill)"
            }
        }
        return "(" + parts.joined(separator: " OR ") + ")"
    }
}
