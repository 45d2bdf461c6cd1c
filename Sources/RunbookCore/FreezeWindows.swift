import Foundation

/// A change freeze window (SPEC §6.9): absolute (`from`/`to` in RFC 3339) or weekly (`days`,
/// `from`/`to` as HH:MM, `tz`), with the reason responders see when it refuses a run.
public struct FreezeWindow: Sendable {
    public enum Kind: Sendable {
        case absolute(from: Date, to: Date)
        /// Weekdays 1 (Sunday) to 7 (Saturday), minutes from midnight, in `tz`. `to` before `from`
        /// runs past midnight into the next day.
        case weekly(days: Set<Int>, from: Int, to: Int, tz: TimeZone)
    }

    public var kind: Kind
    public var reason: String
    public var location: SourceLocation

    static let dayNames = ["sun": 1, "mon": 2, "tue": 3, "wed": 4, "thu": 5, "fri": 6, "sat": 7]

    func calendar(_ tz: TimeZone) -> Calendar {
        var c = Calendar(identifier: .gregorian)
        c.timeZone = tz
        return c
    }

    /// Whether the window holds `date`.
    public func contains(_ date: Date) -> Bool {
        switch kind {
        case .absolute(let from, let to):
            return date >= from && date <= to
        case .weekly(let days, let from, let to, let tz):
            let c = calendar(tz)
            let parts = c.dateComponents([.weekday, .hour, .minute], from: date)
            guard let day = parts.weekday else { return false }
            let minute = (parts.hour ?? 0) * 60 + (parts.minute ?? 0)
            if from <= to { return days.contains(day) && minute >= from && minute <= to }
            let previous = day == 1 ? 7 : day - 1
            return (days.contains(day) && minute >= from) || (days.contains(previous) && minute <= to)
        }
    }

    /// When the window next opens after `date` (within a week for weekly windows).
    public func nextStart(after date: Date) -> Date? {
        switch kind {
        case .absolute(let from, _):
            return from > date ? from : nil
        case .weekly(let days, let from, _, let tz):
            let c = calendar(tz)
            let startOfDay = c.startOfDay(for: date)
            for offset in 0...7 {
                guard let day = c.date(byAdding: .day, value: offset, to: startOfDay),
                      let weekday = c.dateComponents([.weekday], from: day).weekday, days.contains(weekday),
                      let start = c.date(byAdding: .minute, value: from, to: day), start > date else { continue }
                return start
            }
            return nil
        }
    }

    /// `weekly sat, sun 18:00-23:59 Europe/Paris` or `2026-12-24T00:00:00.000Z to 2026-12-27T00:00:00.000Z`.
    public var description: String {
        switch kind {
        case .absolute(let from, let to):
            return "\(TimelineEvent.timestamp(from)) to \(TimelineEvent.timestamp(to))"
        case .weekly(let days, let from, let to, let tz):
            let names = Self.dayNames.sorted { $0.value < $1.value }.filter { days.contains($0.value) }.map(\.key)
            func hm(_ m: Int) -> String { String(format: "%02d:%02d", m / 60, m % 60) }
            return "weekly \(names.joined(separator: ", ")) \(hm(from))-\(hm(to)) \(tz.identifier)"
        }
    }
}

/// Reads a freeze file: a list of windows (or `windows:` holding one), each located for errors.
/// Unknown keys and impossible values are errors: a freeze that is misread must not fail open.
public enum FreezeFile {
    static let absoluteKeys = ["from", "to", "reason"]
    static let weeklyKeys = ["days", "from", "to", "tz", "reason"]

    /// - Throws: `LoadError` with every problem, located.
    public static func load(path: String) throws -> [FreezeWindow] {
        let text = try RunbookLoader.readText(path: path)
        let root = try YAMLReader.parse(text, file: path)
        let items = root.items ?? root["windows"]?.items
        guard let items else {
            throw LoadError([Diagnostic(root.location, "a freeze file is a list of windows (or windows: [...]): { from, to, reason } or { days, from, to, tz, reason }")])
        }
        var out: [FreezeWindow] = []
        var problems: [Diagnostic] = []
        for item in items {
            // Fail closed: a key we do not know (`timezone:` for `tz:`) would silently widen or drop the window.
            guard let entries = item.entries else {
                problems.append(Diagnostic(item.location, "a window is a mapping: { from, to, reason } or { days, from, to, tz, reason }"))
                continue
            }
            let allowed = item["days"] == nil ? absoluteKeys : weeklyKeys
            for (key, keyNode, _) in entries where !allowed.contains(key) {
                let hint = ["timezone", "time_zone", "zone"].contains(key.lowercased()) ? " (did you mean 'tz'?)" : Suggest.hint(for: key, among: allowed)
                problems.append(Diagnostic(keyNode.location, "unknown key '\(key)' in a \(item["days"] == nil ? "dated" : "weekly") window\(hint): it takes \(allowed.joined(separator: ", "))"))
            }
            func text(_ key: String) -> String? { item[key].flatMap { $0.isNull ? nil : $0.scalar } }
            let reason = text("reason") ?? "change freeze"
            if let days = item["days"] {
                var set = Set<Int>()
                guard let dayItems = days.items, !dayItems.isEmpty else {
                    problems.append(Diagnostic(days.location, "days is empty or not a list: name at least one day, like [sat, sun]; a window with no day never applies"))
                    continue
                }
                for d in dayItems {
                    if let name = d.scalar?.lowercased().prefix(3), let n = FreezeWindow.dayNames[String(name)] { set.insert(n) } else {
                        problems.append(Diagnostic(d.location, "unknown day '\(d.scalar ?? "?")': use mon, tue, wed, thu, fri, sat, sun"))
                    }
                }
                func minutes(_ key: String) -> Int? {
                    guard let s = text(key) else { return nil }
                    let p = s.split(separator: ":")
                    guard p.count == 2, let h = Int(p[0]), let m = Int(p[1]), (0..<24).contains(h), (0..<60).contains(m) else { return nil }
                    return h * 60 + m
                }
                guard let from = minutes("from"), let to = minutes("to") else {
                    problems.append(Diagnostic(item.location, "a weekly window needs from and to as HH:MM"))
                    continue
                }
                if from == to {
                    problems.append(Diagnostic(item["to"]?.location ?? item.location, "the window's to equals its from (\(text("from") ?? "")): it would last one minute; give the time it ends"))
                    continue
                }
                let tzName = text("tz") ?? "UTC"
                guard let tz = TimeZone(identifier: tzName) else {
                    problems.append(Diagnostic(item["tz"]?.location ?? item.location, "unknown time zone '\(tzName)' (use names like Europe/Paris or UTC)"))
                    continue
                }
                out.append(FreezeWindow(kind: .weekly(days: set, from: from, to: to, tz: tz), reason: reason, location: item.location))
            } else {
                guard let f = text("from").flatMap(TimelineEvent.parseTimestamp), let t = text("to").flatMap(TimelineEvent.parseTimestamp) else {
                    problems.append(Diagnostic(item.location, "a window needs from and to as RFC 3339 times (2026-12-24T00:00:00Z), or days with HH:MM"))
                    continue
                }
                if t <= f { problems.append(Diagnostic(item.location, "the window ends before it starts")) }
                out.append(FreezeWindow(kind: .absolute(from: f, to: t), reason: reason, location: item.location))
            }
        }
        if !problems.isEmpty { throw LoadError(problems) }
        return out
    }

    /// The refusal for a run that would change things at `now`, if a window is in force.
    public static func refusal(_ windows: [FreezeWindow], at now: Date) -> GuardCheck.Refusal? {
        guard let w = windows.first(where: { $0.contains(now) }) else { return nil }
        var until: Date?
        if case .absolute(_, let to) = w.kind { until = to }
        return GuardCheck.Refusal(guardName: "freeze", until: until, message: "change freeze (\(w.description)): \(w.reason)")
    }
}
