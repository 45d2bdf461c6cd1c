import Foundation
import Yams

/// A YAML value with the position it came from; the loader's own tree, so Yams stays behind this file.
public struct YAMLNode: Sendable {
    /// The shape of a node.
    public enum Kind: Sendable {
        /// A scalar; `plain` is false for quoted or block scalars, which never resolve to bool, null or number.
        case scalar(String, plain: Bool)
        /// A mapping, in file order. Keys are scalars' text.
        case mapping([(key: String, keyNode: YAMLNode, value: YAMLNode)])
        /// A sequence.
        case sequence([YAMLNode])
    }

    public var kind: Kind
    public var location: SourceLocation

    /// The scalar text, if this is a scalar.
    public var scalar: String? {
        if case .scalar(let s, _) = kind { return s }
        return nil
    }

    /// True for a plain `null`, `~` or empty scalar.
    public var isNull: Bool {
        if case .scalar(let s, let plain) = kind { return plain && (s.isEmpty || s == "null" || s == "~" || s == "Null" || s == "NULL") }
        return false
    }

    /// The boolean a plain scalar spells, if any.
    public var bool: Bool? {
        guard case .scalar(let s, true) = kind else { return nil }
        switch s {
        case "true", "True", "TRUE": return true
        case "false", "False", "FALSE": return false
        default: return nil
        }
    }

    /// The number a plain scalar spells, if any.
    public var number: Double? {
        guard case .scalar(let s, true) = kind, let d = Double(s), d.isFinite else { return nil }
        return d
    }

    /// The mapping's entries, if this is a mapping.
    public var entries: [(key: String, keyNode: YAMLNode, value: YAMLNode)]? {
        if case .mapping(let e) = kind { return e }
        return nil
    }

    /// The sequence's items, if this is a sequence.
    public var items: [YAMLNode]? {
        if case .sequence(let i) = kind { return i }
        return nil
    }

    /// Looks a key up in a mapping.
    public subscript(key: String) -> YAMLNode? {
        entries?.first { $0.key == key }?.value
    }

    /// What kind of value this is, for error messages.
    public var kindName: String {
        switch kind {
        case .scalar: isNull ? "null" : (bool != nil ? "a boolean" : (number != nil ? "a number" : "a string"))
        case .mapping: "a mapping"
        case .sequence: "a list"
        }
    }
}

/// Reads YAML text into a `YAMLNode` tree with positions, refusing inputs that would not end well.
public enum YAMLReader {
    /// Files larger than this are refused before parsing.
    public static let maxFileBytes = 1 << 20
    /// Nodes visited at most (aliases count each time they are used): stops alias bombs.
    public static let maxNodes = 50_000
    /// Scalar bytes at most after alias expansion (a 1 MiB string repeated through aliases is refused
    /// here, before anything copies it): stops alias bombs made of a few large nodes.
    public static let maxScalarBytes = 8 << 20
    /// Nesting deeper than this is refused.
    public static let maxDepth = 64

    /// Parses one YAML document.
    /// - Throws: `LoadError` with the position libyaml reported, or a size or alias-expansion error.
    public static func parse(_ text: String, file: String) throws -> YAMLNode {
        let top = SourceLocation(file: file, line: 1, column: 1)
        if text.utf8.count > maxFileBytes {
            throw LoadError([Diagnostic(top, "file is \(text.utf8.count) bytes; runbooks are limited to 1 MiB (\(maxFileBytes) bytes): split it or remove embedded data")])
        }
        if text.utf8.contains(0) {
            throw LoadError([Diagnostic(top, "file contains a NUL byte: it is not a text YAML file")])
        }
        if let depthProblem = excessiveNesting(text, file: file) { throw LoadError([depthProblem]) }
        let root: Node?
        do {
            // UTF-8 named here: Yams' default reads the whole process environment (through
            // Foundation) on every parse. No constructor maps: only the node tree is read, never
            // Yams' conversion to Swift values.
            let parser = try Parser(yaml: text, resolver: .basic, constructor: Constructor([:], [:], [:]), encoding: .utf8)
            root = try parser.singleRoot()
        } catch let error as YamlError {
            var d = diagnostic(for: error, file: file)
            if case .duplicatedKeysInMapping(let keys, _) = error, let key = keys.first {
                d.location = secondOccurrence(of: key, in: text, after: d.location) ?? d.location
            }
            throw LoadError([d])
        } catch {
            throw LoadError([Diagnostic(top, "YAML could not be read: \(error)")])
        }
        guard let root else { throw LoadError([Diagnostic(top, "file is empty: a runbook is a YAML mapping starting with 'runbook: NAME'")]) }
        var budget = Budget()
        return try convert(root, file: file, depth: 0, budget: &budget)
    }

    /// libyaml points a duplicate key at the first one; the mistake is the later one at the same indentation.
    private static func secondOccurrence(of key: String, in text: String, after first: SourceLocation) -> SourceLocation? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        guard first.line >= 1, first.line <= lines.count else { return nil }
        let indent = first.column - 1
        // Same mapping: a later line whose key sits at the same column; stop where the mapping ends.
        for i in first.line..<lines.count {
            let line = lines[i]
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            if line.prefix(while: { $0 == " " }).count < indent, !line.prefix(indent).allSatisfy({ $0 == " " || $0 == "-" }) { break }
            let body = line.dropFirst(indent)
            if body.hasPrefix(key + ":") || body.hasPrefix("\"\(key)\":") {
                return SourceLocation(file: first.file, line: i + 1, column: first.column)
            }
        }
        return nil
    }

    /// Flow collections can nest deeply on one line; libyaml recurses on them, so refuse early.
    private static func excessiveNesting(_ text: String, file: String) -> Diagnostic? {
        var depth = 0, line = 1, column = 0
        var quote: UInt8? = nil
        for byte in text.utf8 {
            column += 1
            if byte == UInt8(ascii: "\n") { line += 1; column = 0; quote = nil; continue }
            if let q = quote { if byte == q { quote = nil }; continue }
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "'"): quote = byte
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                depth += 1
                if depth > maxDepth { return Diagnostic(SourceLocation(file: file, line: line, column: column), "nesting deeper than \(maxDepth) levels") }
            case UInt8(ascii: "]"), UInt8(ascii: "}"): depth = max(0, depth - 1)
            case UInt8(ascii: "#"): break
            default: break
            }
        }
        return nil
    }

    private static func diagnostic(for error: YamlError, file: String) -> Diagnostic {
        func loc(_ mark: Mark) -> SourceLocation { SourceLocation(file: file, line: max(1, mark.line), column: max(1, mark.column)) }
        switch error {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            let ctx = context.map { " (\($0.text) at line \($0.mark.line))" } ?? ""
            return Diagnostic(loc(mark), "YAML syntax: \(problem)\(ctx)")
        case let .reader(problem, offset, _, _):
            return Diagnostic(SourceLocation(file: file, line: 1, column: 1), "YAML reader: \(problem)\(offset.map { " at byte \($0)" } ?? "")")
        case let .duplicatedKeysInMapping(duplicates, context):
            return Diagnostic(loc(context.mark), "duplicate key \(duplicates.map { "'\($0)'" }.joined(separator: ", ")) in mapping")
        default:
            return Diagnostic(SourceLocation(file: file, line: 1, column: 1), "YAML: \(error)")
        }
    }

    /// What a document may still expand to: nodes and scalar bytes, aliases counted each time used.
    struct Budget {
        var nodes = maxNodes
        var scalarBytes = maxScalarBytes
    }

    private static func convert(_ node: Node, file: String, depth: Int, budget: inout Budget) throws -> YAMLNode {
        budget.nodes -= 1
        let mark = node.mark
        let location = SourceLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1)
        if case .scalar(let s) = node {
            budget.scalarBytes -= s.string.utf8.count
            if budget.scalarBytes < 0 {
                throw LoadError([Diagnostic(location, "document expands to more than \(maxScalarBytes >> 20) MiB of text (aliases of a large value?): refusing to load it")])
            }
        }
        if budget.nodes < 0 {
            throw LoadError([Diagnostic(location, "document expands to more than \(maxNodes) nodes (alias bomb?): refusing to load it")])
        }
        if depth > maxDepth {
            throw LoadError([Diagnostic(location, "nesting deeper than \(maxDepth) levels")])
        }
        switch node {
        case .scalar(let s):
            return YAMLNode(kind: .scalar(s.string, plain: s.style == .plain || s.style == .any), location: location)
        case .sequence(let seq):
            var items: [YAMLNode] = []
            for item in seq { items.append(try convert(item, file: file, depth: depth + 1, budget: &budget)) }
            return YAMLNode(kind: .sequence(items), location: location)
        case .mapping(let map):
            var entries: [(key: String, keyNode: YAMLNode, value: YAMLNode)] = []
            for (k, v) in map {
                let keyNode = try convert(k, file: file, depth: depth + 1, budget: &budget)
                let key = keyNode.scalar ?? "<\(keyNode.kindName) key>"
                entries.append((key, keyNode, try convert(v, file: file, depth: depth + 1, budget: &budget)))
            }
            return YAMLNode(kind: .mapping(entries), location: location)
        case .alias(let alias):
            return YAMLNode(kind: .scalar("*\(alias)", plain: false), location: location)
        }
    }
}
