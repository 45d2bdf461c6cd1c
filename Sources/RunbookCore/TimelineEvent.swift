import Foundation

/// Status of a finished step on the timeline.
public enum StepStatus: String, Sendable, Codable, CaseIterable {
    case passed, failed
    case timedOut = "timed-out"
    /// The check could not take its measurement (refused connection, unknown name, missing path,
    /// unreadable metrics, a command that could not start): nobody knows the answer (SPEC §6.1).
    case errored
    case skipped, declined
    case wouldChange = "would-change"
    /// A dry run's `wait`: not waited.
    case wouldWait = "would-wait"

    /// Counts as success for `steps.ID.passed` and for what depends on it (a dry run follows the live path).
    public var succeeded: Bool { self == .passed || self == .wouldChange || self == .wouldWait }
    /// Stops a mitigation or verify, and is retried: failed, timed out or errored.
    public var isFailure: Bool { self == .failed || self == .timedOut || self == .errored }
}

/// How a run ended.
public enum RunOutcome: String, Sendable, Codable {
    case mitigated, completed
    case notConfirmed = "not-confirmed"
    case failed, refused, interrupted
    /// No detect step passed and at least one errored or timed out: nobody knows whether the incident is real.
    case inconclusive
    /// An `abort_if` alarm fired (or could not be evaluated, three times running): changes undone.
    case aborted
    /// A dry run that described its changes and reached verify (SPEC §6.2).
    case wouldMitigate = "would-mitigate"

    /// The process exit code SPEC assigns to it.
    public var exitCode: Int32 {
        switch self {
        case .mitigated, .completed, .notConfirmed, .wouldMitigate: 0
        case .failed, .aborted: 1
        case .refused: 3
        case .interrupted: 130
        case .inconclusive: 4
        }
    }
}

/// One line of a run's timeline. Only `time`, `run` and `event` are always present.
public struct TimelineEvent: Sendable, Hashable {
    public var time: Date
    public var run: String
    public var event: String
    public var runbook: String?
    public var trigger: String?
    public var params: [String: String]?
    public var dryRun: Bool?
    public var drill: Bool?
    public var step: String?
    public var phase: String?
    public var status: String?
    public var attempt: Int?
    public var durationMs: Int?
    public var delayMs: Int?
    public var message: String?
    public var output: [String: Value]?
    public var what: String?
    public var from: String?
    public var to: String?
    public var outcome: String?
    public var guardName: String?
    public var until: Date?
    public var exitCode: Int?
    public var stdout: String?
    public var stderr: String?
    /// On `change.applied`: false when nothing can reverse the change (a restart).
    public var undoable: Bool?
    /// On `run.started`: who started it (the server token's name); on approvals: who answered.
    public var by: String?
    /// On `approval.*` events: the gate (a step id, or `changes` for the run's gate before its first change).
    public var gate: String?
    /// On `approval.requested`: the gate's deadline.
    public var deadline: Date?
    /// On `change.applied`: where (a flag file, a URL), so the change can be undone after a restart.
    public var location: String?
    /// On `change.applied` of a flag file: the flag's key and the field set (`defaultVariant` or
    /// `state`), so a takeover rebuilds the undo from fields, never from the text.
    public var flagKey: String?
    public var flagField: String?
    /// On an `across:` step's per-host events, its changes and their undo: the host (issue 22).
    public var target: String?

    public init(time: Date, run: String, event: String) {
        self.time = time
        self.run = run
        self.event = event
    }
}

extension TimelineEvent {
    /// RFC 3339 UTC with milliseconds: `2026-06-05T02:15:00.123Z`.
    public static func timestamp(_ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970.rounded(.down))
        // A hair above the floor, so that a time read back from its own text prints the same
        // (.550 parses to .54999…, which must not become .549).
        var ms = Int(((date.timeIntervalSince1970 - Double(t)) * 1000 + 1e-3).rounded(.down))
        if ms >= 1000 { ms = 999 }
        if ms < 0 { ms = 0; t -= 0 }
        var parts = tm()
        gmtime_r(&t, &parts)
        // Written digit by digit into one buffer: every timeline event and refusal sentence has one.
        let year = Int(parts.tm_year) + 1900
        guard (0...9999).contains(year) else { return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", year, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec, ms) }
        return String(unsafeUninitializedCapacity: 24) { out in
            var at = 0
            func put(_ v: Int, _ digits: Int) {
                var v = v, i = at + digits - 1
                while i >= at { out[i] = UInt8(ascii: "0") + UInt8(v % 10); v /= 10; i -= 1 }
                at += digits
            }
            func put(_ c: Unicode.Scalar) { out[at] = UInt8(ascii: c); at += 1 }
            put(year, 4); put("-"); put(Int(parts.tm_mon) + 1, 2); put("-"); put(Int(parts.tm_mday), 2); put("T")
            put(Int(parts.tm_hour), 2); put(":"); put(Int(parts.tm_min), 2); put(":"); put(Int(parts.tm_sec), 2); put(".")
            put(ms, 3); put("Z")
            return at
        }
    }

    /// Parses what `timestamp` writes (and RFC 3339 with other fractions).
    public static func parseTimestamp(_ text: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: text) { return d }
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: text)
    }

    /// One JSON object, keys in a fixed, readable order.
    public func jsonLine() -> String {
        var out = "{\"time\":\"\(Self.timestamp(time))\",\"run\":\(JSONText.string(run)),\"event\":\(JSONText.string(event))"
        func add(_ key: String, _ value: String?) { if let value { out += ",\"\(key)\":\(JSONText.string(value))" } }
        func addInt(_ key: String, _ value: Int?) { if let value { out += ",\"\(key)\":\(value)" } }
        add("runbook", runbook)
        add("trigger", trigger)
        add("by", by)
        if let params {
            out += ",\"params\":{" + params.keys.sorted().map { "\(JSONText.string($0)):\(JSONText.string(params[$0]!))" }.joined(separator: ",") + "}"
        }
        if let dryRun { out += ",\"dry_run\":\(dryRun)" }
        if let drill { out += ",\"drill\":\(drill)" }
        add("step", step)
        add("target", target)
        add("phase", phase)
        add("status", status)
        addInt("attempt", attempt)
        addInt("duration_ms", durationMs)
        addInt("delay_ms", delayMs)
        add("message", message)
        if let output {
            out += ",\"output\":{" + output.keys.sorted().map { "\(JSONText.string($0)):\(JSONText.value(output[$0]!))" }.joined(separator: ",") + "}"
        }
        add("what", what)
        add("from", from)
        add("to", to)
        add("outcome", outcome)
        add("guard", guardName)
        if let until { add("until", Self.timestamp(until)) }
        addInt("exit_code", exitCode)
        add("stdout", stdout)
        add("stderr", stderr)
        if let undoable { out += ",\"undoable\":\(undoable)" }
        add("gate", gate)
        if let deadline { add("deadline", Self.timestamp(deadline)) }
        add("location", location)
        add("flag_key", flagKey)
        add("flag_field", flagField)
        return out + "}"
    }

    /// Reads a line `jsonLine` wrote (nil for a damaged line).
    public static func parse(jsonLine line: String) -> TimelineEvent? {
        try? lineDecoder.decode(TimelineEvent.self, from: Data(line.utf8))
    }

    /// Decodes timeline lines: times as `timestamp` writes them.
    static var lineDecoder: JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .custom { decoder in
            let c = try decoder.singleValueContainer()
            let text = try c.decode(String.self)
            guard let date = parseTimestamp(text) else {
                throw DecodingError.dataCorruptedError(in: c, debugDescription: "not an RFC 3339 time: \(text)")
            }
            return date
        }
        return d
    }

    /// The encoder for events inside other JSON (API answers): the same names and times as `jsonLine`.
    public static var encoder: JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.withoutEscapingSlashes]
        e.dateEncodingStrategy = .custom { date, encoder in
            var c = encoder.singleValueContainer()
            try c.encode(timestamp(date))
        }
        return e
    }
}

/// The one list of an event's JSON names: decoding, encoding and the tests that hold `jsonLine`
/// to it all read these keys.
extension TimelineEvent: Codable {
    public enum CodingKeys: String, CodingKey, CaseIterable {
        case time, run, event, runbook, trigger, by, params
        case dryRun = "dry_run"
        case drill, step, target, phase, status, attempt
        case durationMs = "duration_ms"
        case delayMs = "delay_ms"
        case message, output, what, from, to, outcome
        case guardName = "guard"
        case until
        case exitCode = "exit_code"
        case stdout, stderr, undoable, gate, deadline, location
        case flagKey = "flag_key"
        case flagField = "flag_field"
    }
}

/// Minimal JSON text helpers for hand-written, ordered output.
public enum JSONText {
    public static func string(_ s: String) -> String {
        var out = "\""
        out.reserveCapacity(s.utf8.count + 2)
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        return out + "\""
    }

    public static func value(_ v: Value) -> String {
        switch v {
        case .string(let s): string(s)
        case .number(let d): d.isFinite ? v.description : "null"
        case .bool(let b): b ? "true" : "false"
        case .null: "null"
        }
    }

    public static func toValue(_ any: Any) -> Value {
        if let s = any as? String { return .string(s) }
        if type(of: any) == Bool.self, let b = any as? Bool { return .bool(b) }
        if let n = any as? NSNumber {
            if String(cString: n.objCType) == "c" { return .bool(n.boolValue) }
            return .number(n.doubleValue)
        }
        return .null
    }
}
