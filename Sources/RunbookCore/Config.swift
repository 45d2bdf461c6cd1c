import Foundation

/// A setting as the grammar pass converted it: text parsed as a template, units converted. Only the
/// loader and `ActionDecoder` read it (by key); everything after load reads the typed `ActionSpec`.
package indirect enum Config: Sendable, Hashable {
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
    package struct Entry: Sendable, Hashable {
        package var key: String
        package var value: Config
    }

    package subscript(key: String) -> Config? {
        if case .map(let entries) = self { return entries.first { $0.key == key }?.value }
        return nil
    }

    package var template: Template? {
        switch self {
        case .text(let t): t
        case .number(let d): Template(literal: Value.number(d).description)
        case .bool(let b): Template(literal: b ? "true" : "false")
        default: nil
        }
    }

    package var number: Double? {
        switch self {
        case .number(let d), .duration(let d), .size(let d), .rate(let d): d
        case .text(let t) where t.isLiteral: Double(t.source)
        default: nil
        }
    }

    package var bool: Bool? { if case .bool(let b) = self { b } else { nil } }
    package var list: [Config]? { if case .list(let l) = self { l } else { nil } }
    package var entries: [Entry]? { if case .map(let e) = self { e } else { nil } }

    /// Every template inside, for validation.
    package var templates: [Template] {
        switch self {
        case .text(let t): [t]
        case .list(let l): l.flatMap(\.templates)
        case .map(let e): e.flatMap(\.value.templates)
        default: []
        }
    }

    /// As a plain value (for expected JSON values), rendering templates literally.
    package var plainValue: Value {
        switch self {
        case .text(let t): .string(t.source)
        case .bool(let b): .bool(b)
        case .number(let d), .duration(let d), .size(let d), .rate(let d): .number(d)
        case .null, .list, .map: .null
        }
    }
}
