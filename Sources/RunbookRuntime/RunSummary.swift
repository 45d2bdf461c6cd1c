import Foundation
import RunbookCore
import RunbookStoreContract

/// A run as `GET /runs`, `GET /runs/ID` and `runbook history --json` show it: one name per field
/// everywhere (SPEC §7.1).
public struct RunSummary: Codable, Sendable, Equatable {
    public var id: String
    public var runbook: String
    public var trigger: String
    /// The alert's fingerprint (alert runs).
    public var fingerprint: String?
    /// nil while the run is open.
    public var outcome: String?
    /// `running`, `awaiting-approval` (a gate is open) or `finished`.
    public var status: Status
    public var started: Date
    public var durationMs: Int?
    public var dryRun: Bool
    public var drill: Bool

    /// Where an open or finished run stands.
    public enum Status: String, Codable, Sendable {
        case running
        case awaitingApproval = "awaiting-approval"
        case finished
    }

    enum CodingKeys: String, CodingKey {
        case id, runbook, trigger, fingerprint, outcome, status, started
        case durationMs = "duration_ms"
        case dryRun = "dry_run"
        case drill
    }

    /// - Parameters:
    ///   - awaiting: whether one of the run's gates is open.
    public init(_ r: RunRecord, awaiting: Bool) {
        id = r.id
        runbook = r.runbook
        trigger = r.trigger
        fingerprint = r.fingerprint
        outcome = r.outcome
        status = r.outcome != nil ? .finished : awaiting ? .awaitingApproval : .running
        started = r.started
        durationMs = r.durationMs
        dryRun = r.dryRun
        drill = r.drill
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(String.self, forKey: .id)
        runbook = try c.decode(String.self, forKey: .runbook)
        trigger = try c.decode(String.self, forKey: .trigger)
        fingerprint = try c.decodeIfPresent(String.self, forKey: .fingerprint)
        outcome = try c.decodeIfPresent(String.self, forKey: .outcome)
        status = try c.decode(Status.self, forKey: .status)
        let text = try c.decode(String.self, forKey: .started)
        guard let d = TimelineEvent.parseTimestamp(text) else {
            throw DecodingError.dataCorruptedError(forKey: .started, in: c, debugDescription: "not an RFC 3339 time: \(text)")
        }
        started = d
        durationMs = try c.decodeIfPresent(Int.self, forKey: .durationMs)
        dryRun = try c.decodeIfPresent(Bool.self, forKey: .dryRun) ?? false
        drill = try c.decodeIfPresent(Bool.self, forKey: .drill) ?? false
    }

    /// Every field, absent values as `null` (readers tell "still running" by `outcome: null`).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(runbook, forKey: .runbook)
        try c.encode(trigger, forKey: .trigger)
        try c.encode(fingerprint, forKey: .fingerprint)
        try c.encode(outcome, forKey: .outcome)
        try c.encode(status, forKey: .status)
        try c.encode(TimelineEvent.timestamp(started), forKey: .started)
        try c.encode(durationMs, forKey: .durationMs)
        try c.encode(dryRun, forKey: .dryRun)
        try c.encode(drill, forKey: .drill)
    }

    /// One JSON object on one line.
    public func jsonLine() -> String { APIJSON.text(self) }
}

/// The JSON encoder of the API and `--json` output: keys in declaration order, slashes as they are.
public enum APIJSON {
    /// `value` as compact JSON text (a value our own types cannot fail to encode).
    public static func text(_ value: some Encodable) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else { return "null" }
        return String(decoding: data, as: UTF8.self)
    }
}
