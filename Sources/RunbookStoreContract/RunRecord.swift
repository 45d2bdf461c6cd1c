import Foundation

/// One run in the history: the row both stores keep (the SQLite store adds its GRDB conformances).
public struct RunRecord: Sendable, Codable, Equatable {
    public var id: String
    public var runbook: String
    public var trigger: String
    public var fingerprint: String?
    public var outcome: String?
    public var started: Date
    public var durationMs: Int?
    public var dryRun: Bool
    public var drill: Bool
    /// The rendered `guards.lock` key, if the runbook has one.
    public var lockKey: String?
    /// On a refused run: the guard, its sentence, until when, and how many refusals this row counts
    /// (repeat refusals of one alert by one guard add to the count instead of adding rows).
    public var refusalGuard: String?
    public var refusalMessage: String?
    public var refusalUntil: Date?
    public var refusedCount: Int?

    /// Column names, shared by both stores' tables.
    public enum CodingKeys: String, CodingKey {
        case id, runbook, trigger, fingerprint, outcome, started
        case durationMs = "duration_ms", dryRun = "dry_run", drill, lockKey = "lock_key"
        case refusalGuard = "refusal_guard", refusalMessage = "refusal_message", refusalUntil = "refusal_until", refusedCount = "refused_count"
    }

    public init(id: String, runbook: String, trigger: String, fingerprint: String? = nil, started: Date, dryRun: Bool, drill: Bool) {
        self.id = id
        self.runbook = runbook
        self.trigger = trigger
        self.fingerprint = fingerprint
        self.started = started
        self.dryRun = dryRun
        self.drill = drill
    }

    /// A live run (not a dry run, not a drill): only these hold locks and count for guards.
    public var isLive: Bool { !dryRun && !drill }
}
