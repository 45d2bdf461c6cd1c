import Foundation

/// The range checks of `ActionDecoder`: each reports at the value and says what to write instead.
extension ActionDecoder {
    /// A duration must be more than 0s.
    mutating func positiveDuration(_ seconds: Double?, _ at: SourceLocation, _ name: String) {
        positive(seconds, at, "\(name) must be more than 0s: write how long, like 500ms or 10s")
    }

    mutating func positive(_ value: Double?, _ at: SourceLocation, _ message: String) {
        if let value, !(value > 0) { error(at, message) }
    }

    /// A percentage is 0 to 100.
    mutating func percent(_ value: Double?, _ at: SourceLocation, _ name: String) {
        if let value, !(0...100).contains(value) {
            error(at, "\(name) is \(Self.format(value))%: a percentage is from 0 to 100")
        }
    }

    /// A literal URL needs a scheme and a host; a templated one is checked after rendering.
    package mutating func checkURL(_ url: Template, _ at: SourceLocation, _ name: String) {
        guard url.isLiteral, let problem = Self.urlProblem(url.source) else { return }
        error(at, "\(name) '\(url.source)' \(problem): write it like http://host:8080/path")
    }

    /// Why `text` is not a URL with a scheme and a host, or nil when it is one.
    package static func urlProblem(_ text: String) -> String? {
        guard let c = URLComponents(string: text), let scheme = c.scheme, !scheme.isEmpty else { return "has no scheme" }
        guard let host = c.host, !host.isEmpty else { return "has no host" }
        return nil
    }

    /// `status:` or `exit:`: one code or a list, each in `range`.
    mutating func codes(_ value: Config?, _ range: ClosedRange<Int>, _ what: String, _ at: SourceLocation, _ name: String) -> [Int]? {
        guard let value else { return nil }
        let numbers = value.list?.compactMap(\.number) ?? value.number.map { [$0] } ?? []
        for n in numbers where !range.contains(Int(n)) {
            error(at, "\(name) \(Self.format(n)) is not \(what): write a number from \(range.lowerBound) to \(range.upperBound)")
        }
        return numbers.map { Int($0) }
    }

    /// A port or pid: a whole number, or a template rendered when the step runs.
    func numberOrTemplate(_ value: Config?) -> NumberOrTemplate? {
        switch value {
        case .number(let d)?: return .literal(Int(exactly: d.rounded()) ?? Int.max)
        case .text(let t)? where t.isLiteral:
            if let n = Int(t.source.trimmingCharacters(in: .whitespaces)) { return .literal(n) }
            return .template(t)
        case .text(let t)?: return .template(t)
        default: return nil
        }
    }

    static func format(_ d: Double) -> String { Value.number(d).description }
}
