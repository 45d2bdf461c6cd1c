/// The declared shape of a runbook setting: one table that drives validation, loading and the JSON Schema.
public indirect enum Shape: Sendable {
    /// Text that may hold `{{ }}` templates.
    case text
    case bool
    case integer
    case number
    /// A percentage: `80` or `80%`.
    case percent
    case duration
    case size
    case rate
    /// A regular expression, compiled at load time.
    case regex
    /// One of these words.
    case choice([String])
    case list(Shape)
    /// A mapping with free keys.
    case dictionary(Shape)
    case object(ObjectShape)
    /// Any scalar (expected JSON values).
    case scalar
    /// One of several shapes, tried in order (first by YAML kind).
    case either([Shape])
    /// An argv list of text, or `{argv, env, cwd, exit, stdout_contains}`.
    case command

    /// Human name for error messages.
    var name: String {
        switch self {
        case .text: "text"
        case .bool: "true or false"
        case .integer: "a whole number"
        case .number: "a number"
        case .percent: "a percentage like 80 or 80%"
        case .duration: "a duration like 250ms, 30s, 10m or 1h"
        case .size: "a size like 512KB, 1MB or 2GB"
        case .rate: "a rate like 1MB/s, 10MB/min, 10/s or 600/min"
        case .regex: "a regular expression"
        case .choice(let c): "one of \(c.joined(separator: ", "))"
        case .list(let s): "a list of \(s.name)"
        case .dictionary: "a mapping"
        case .object: "a mapping"
        case .scalar: "a scalar value"
        case .either(let s): s.map(\.name).joined(separator: " or ")
        case .command: "a command (an argv list, or a mapping with argv)"
        }
    }
}

/// A mapping with known keys.
public struct ObjectShape: Sendable {
    /// One key.
    public struct Field: Sendable {
        public var name: String
        public var shape: Shape
        public var required: Bool
        public var doc: String
    }

    public var fields: [Field]
    /// Groups of keys of which exactly one must be present (action keys).
    public var exactlyOne: [String]
    /// Groups of keys of which at least one must be present.
    public var atLeastOne: [String]
    public var doc: String

    public init(_ doc: String = "", exactlyOne: [String] = [], atLeastOne: [String] = [], _ fields: [Field]) {
        self.doc = doc
        self.fields = fields
        self.exactlyOne = exactlyOne
        self.atLeastOne = atLeastOne
    }

    public init(_ fields: [Field]) {
        self.init("", fields)
    }

    public func field(_ name: String) -> Field? { fields.first { $0.name == name } }
}

/// Builds a field; `req` marks it required.
package func field(_ name: String, _ shape: Shape, required: Bool = false, _ doc: String = "") -> ObjectShape.Field {
    ObjectShape.Field(name: name, shape: shape, required: required, doc: doc)
}
