import Foundation

/// A param value that cannot be used; the run is refused before any step runs.
public struct ParamError: Error, Sendable, CustomStringConvertible {
    public var param: String
    public var message: String
    public var description: String { "param '\(param)': \(message)" }
}

/// Turns given values and defaults into a run's params, checking every value against its `pattern`.
public enum RunInputs {
    /// - Throws: `ParamError` naming the first bad, unknown or missing param.
    public static func resolve(_ runbook: Runbook, given: [String: String]) throws -> [String: Value] {
        var out: [String: Value] = [:]
        for name in given.keys.sorted() where runbook.param(name) == nil {
            throw ParamError(param: name, message: "the runbook has no such param\(Suggest.hint(for: name, among: runbook.params.map(\.name))); it takes: \(runbook.params.map(\.name).joined(separator: ", "))")
        }
        for p in runbook.params {
            let value: Value
            if let g = given[p.name] { value = .string(g) } else if let d = p.defaultValue { value = d } else if p.required {
                throw ParamError(param: p.name, message: "a value is required: pass --param \(p.name)=VALUE")
            } else { value = .string("") }
            if let pattern = p.pattern, given[p.name] != nil || p.defaultValue != nil {
                if !RunbookBuilder.matches(pattern, value.description) {
                    let shown = p.secret ? "***" : "'\(value.description)'"
                    throw ParamError(param: p.name, message: "value \(shown) does not match pattern \(pattern)")
                }
            }
            out[p.name] = value
        }
        return out
    }

    /// Values of params marked secret, to redact from timelines.
    public static func secrets(_ runbook: Runbook, _ params: [String: Value]) -> [String] {
        runbook.params.filter(\.secret).compactMap { params[$0.name]?.description }.filter { !$0.isEmpty }
    }

    /// Params as shown on the timeline: secrets masked.
    public static func shown(_ runbook: Runbook, _ params: [String: Value]) -> [String: String] {
        var out: [String: String] = [:]
        for (k, v) in params { out[k] = runbook.param(k)?.secret == true ? "***" : v.description }
        return out
    }

    /// A run id like `r-20260605-021500-a1b2`: sortable by time, unique enough for one host.
    public static func newRunID(_ now: Date = Date()) -> String {
        var t = time_t(now.timeIntervalSince1970)
        var parts = tm()
        gmtime_r(&t, &parts)
        let stamp = String(format: "%04d%02d%02d-%02d%02d%02d", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday, parts.tm_hour, parts.tm_min, parts.tm_sec)
        let suffix = String(UInt32.random(in: 0...0xffff_ffff), radix: 16)
        return "r-\(stamp)-\(String(repeating: "0", count: 8 - suffix.count))\(suffix)"
    }

    /// The `run.started` event.
    public static func startEvent(runbook: Runbook, runID: String, trigger: String, params: [String: Value], dryRun: Bool, drill: Bool, now: Date) -> TimelineEvent {
        var e = TimelineEvent(time: now, run: runID, event: "run.started")
        e.runbook = runbook.name
        e.trigger = trigger
        e.params = shown(runbook, params)
        e.dryRun = dryRun
        if drill { e.drill = true }
        e.message = "\(runbook.title)\(drill ? " (drill)" : dryRun ? " (dry run)" : "")"
        return e
    }
}
