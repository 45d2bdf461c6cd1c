import Foundation

/// A string with `{{ name }}` holes, parsed once at load time.
public struct Template: Sendable, Hashable, CustomStringConvertible {
    /// A piece of a template.
    public enum Part: Sendable, Hashable {
        case literal(String)
        case reference(Reference)
    }

    /// The pieces in order.
    public var parts: [Part]
    /// The text as written.
    public var source: String

    /// A template with no holes.
    public init(literal: String) {
        parts = literal.isEmpty ? [] : [.literal(literal)]
        source = literal
    }

    /// Parses `text`.
    /// - Throws: `TemplateError` with the character offset of the problem.
    public init(parsing text: String) throws(TemplateError) {
        source = text
        parts = []
        var rest = Substring(text)
        while let open = rest.range(of: "{{") {
            if open.lowerBound > rest.startIndex { parts.append(.literal(String(rest[rest.startIndex..<open.lowerBound]))) }
            guard let close = rest[open.upperBound...].range(of: "}}") else {
                throw TemplateError(message: "'{{' is never closed with '}}'", offset: text.distance(from: text.startIndex, to: open.lowerBound))
            }
            let name = rest[open.upperBound..<close.lowerBound].trimmingCharacters(in: .whitespaces)
            switch Reference.parse(name) {
            case .success(let ref): parts.append(.reference(ref))
            case .failure(let e): throw TemplateError(message: e.message, offset: text.distance(from: text.startIndex, to: open.lowerBound))
            }
            rest = rest[close.upperBound...]
        }
        if !rest.isEmpty { parts.append(.literal(String(rest))) }
    }

    /// Every name the template reads.
    public var references: [Reference] {
        parts.compactMap { if case .reference(let r) = $0 { r } else { nil } }
    }

    /// True when the template has no holes.
    public var isLiteral: Bool { references.isEmpty }

    /// Fills the holes. Unknown names render empty (validation keeps them out).
    public func render(_ lookup: (Reference) -> Value?) -> String {
        var out = ""
        for part in parts {
            switch part {
            case .literal(let s): out += s
            case .reference(let r): out += lookup(r)?.description ?? ""
            }
        }
        return out
    }

    public var description: String { source }
}

/// A template that does not parse.
public struct TemplateError: Error, Sendable {
    public var message: String
    /// Characters from the start of the template text.
    public var offset: Int
}
