import Foundation

/// A runtime value: what params, step outputs and expressions work with.
public enum Value: Sendable, Hashable, CustomStringConvertible {
    case string(String)
    case number(Double)
    case bool(Bool)
    case null

    /// Text as it is substituted into templates.
    public var description: String {
        switch self {
        case .string(let s): s
        case .number(let d): d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
        case .bool(let b): b ? "true" : "false"
        case .null: ""
        }
    }

    /// The number this value is or spells, if any.
    public var numeric: Double? {
        switch self {
        case .number(let d): d
        case .string(let s): Double(s.trimmingCharacters(in: .whitespaces))
        case .bool, .null: nil
        }
    }

    /// Truthiness in `when`: false, null, 0 and "" are false.
    public var truthy: Bool {
        switch self {
        case .bool(let b): b
        case .null: false
        case .number(let d): d != 0
        case .string(let s): !s.isEmpty && s != "false"
        }
    }
}
