import Foundation

/// A param value that cannot be used; the run is refused before any step runs.
public struct ParamError: Error, Sendable, CustomStringConvertible {
    public var param: String
    public var message: String
    public var description: String { "param '\(param)': \(message)" }
}

/// `type: path` values: resolved and kept inside their folder.
public enum PathParam {
    /// The absolute, resolved form of `value` (relative to the working directory): `.`, `..` and
    /// symlinks of every existing part resolved. It must be `within` (resolved the same way) or below it.
    public static func resolve(_ value: String, within: String, param: String, shown: String) throws -> String {
        guard !value.isEmpty else { throw ParamError(param: param, message: "an empty path") }
        let base = canonical(within)
        let resolved = canonical(value)
        guard resolved == base || resolved.hasPrefix(base == "/" ? "/" : base + "/") else {
            throw ParamError(param: param, message: "path \(shown) resolves to \(Escape.text(resolved)), outside \(base)")
        }
        return resolved
    }

    /// Absolute path with symlinks of the longest existing prefix resolved (realpath) and the rest
    /// normalised lexically (a part that does not exist yet cannot be a symlink).
    public static func canonical(_ path: String) -> String {
        var absolute = path
        if !absolute.hasPrefix("/") {
            let cwd = FileManager.default.currentDirectoryPath
            absolute = cwd + "/" + absolute
        }
        var parts: [Substring] = []
        for part in absolute.split(separator: "/") {
            if part == "." { continue }
            if part == ".." { if !parts.isEmpty { parts.removeLast() }; continue }
            parts.append(part)
            // Resolve symlinks as we go, so that `link/..` means the link target's parent.
            let sofar = "/" + parts.joined(separator: "/")
            if let real = realpath(sofar, nil) {
                let r = String(cString: real)
                free(real)
                parts = r.split(separator: "/")
            }
        }
        return "/" + parts.joined(separator: "/")
    }
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
            var value2 = value
            if given[p.name] != nil || p.defaultValue != nil {
                let text = value.description
                let shown = p.secret ? "***" : "'\(Escape.text(text))'"
                // Values are values, not programs: no control character, whatever the pattern says.
                if let c = Escape.firstControl(in: text) {
                    throw ParamError(param: p.name, message: "value \(shown) holds the control character \(Escape.name(c)); refused")
                }
                if let pattern = p.pattern, !RunbookBuilder.matches(pattern, text) {
                    throw ParamError(param: p.name, message: "value \(shown) does not match pattern \(pattern) (the whole value must match)")
                }
                if p.isPath, let within = p.within {
                    value2 = .string(try PathParam.resolve(text, within: within, param: p.name, shown: shown))
                }
            }
            out[p.name] = value2
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
