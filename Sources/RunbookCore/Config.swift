import Foundation

/// A checked action setting: text is parsed as a template, units are converted.
public indirect enum Config: Sendable, Hashable {
    case text(Template)
    case bool(Bool)
    case number(Double)
    /// Seconds.
    case duration(Double)
    /// Bytes.
    case size(Double)
    /// Bytes per second.
    case rate(Double)
    case list([Config])
    /// Keys in file order.
    case map([Entry])
    case null

    /// A mapping entry.
    public struct Entry: Sendable, Hashable {
        public var key: String
        public var value: Config
    }

    public subscript(key: String) -> Config? {
        if case .map(let entries) = self { return entries.first { $0.key == key }?.value }
        return nil
    }

    public var template: Template? {
        switch self {
        case .text(let t): t
        case .number(let d): Template(literal: Value.number(d).description)
        case .bool(let b): Template(literal: b ? "true" : "false")
        default: nil
        }
    }

    public var number: Double? {
        switch self {
        case .number(let d), .duration(let d), .size(let d), .rate(let d): d
        case .text(let t) where t.isLiteral: Double(t.source)
        default: nil
        }
    }

    public var bool: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var list: [Config]? { if case .list(let l) = self { l } else { nil } }
    public var entries: [Entry]? { if case .map(let e) = self { e } else { nil } }

    /// Every template inside, for validation.
    public var templates: [Template] {
        switch self {
        case .text(let t): [t]
        case .list(let l): l.flatMap(\.templates)
        case .map(let e): e.flatMap(\.value.templates)
        default: []
        }
    }

    /// As a plain value (for expected JSON values), rendering templates literally.
    public var plainValue: Value {
        switch self {
        case .text(let t): .string(t.source)
        case .bool(let b): .bool(b)
        case .number(let d), .duration(let d), .size(let d), .rate(let d): .number(d)
        case .null, .list, .map: .null
        }
    }
}
