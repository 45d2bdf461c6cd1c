import Foundation

/// A parsed `when` expression: references, literals, comparisons, `&&`, `||`, `!`, parentheses.
public indirect enum Expression: Sendable, Hashable, CustomStringConvertible {
    case reference(Reference)
    case literal(Value)
    case not(Expression)
    case and(Expression, Expression)
    case or(Expression, Expression)
    case compare(Expression, Comparison, Expression)

    /// A comparison operator.
    public enum Comparison: String, Sendable, Hashable {
        case equal = "==", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
    }

    /// Every name the expression reads.
    public var references: [Reference] {
        switch self {
        case .reference(let r): [r]
        case .literal: []
        case .not(let e): e.references
        case .and(let a, let b), .or(let a, let b), .compare(let a, _, let b): a.references + b.references
        }
    }

    /// Evaluates with `lookup` supplying the value of each name.
    public func evaluate(_ lookup: (Reference) -> Value) -> Value {
        switch self {
        case .reference(let r): return lookup(r)
        case .literal(let v): return v
        case .not(let e): return .bool(!e.evaluate(lookup).truthy)
        case .and(let a, let b): return .bool(a.evaluate(lookup).truthy && b.evaluate(lookup).truthy)
        case .or(let a, let b): return .bool(a.evaluate(lookup).truthy || b.evaluate(lookup).truthy)
        case .compare(let a, let op, let b):
            return .bool(Self.compare(a.evaluate(lookup), op, b.evaluate(lookup)))
        }
    }

    /// Numbers compare as numbers (a numeric string counts as a number), anything else as text.
    static func compare(_ l: Value, _ op: Comparison, _ r: Value) -> Bool {
        if let x = l.numeric, let y = r.numeric, !(isBoolOrNull(l) || isBoolOrNull(r)) {
            switch op {
            case .equal: return x == y
            case .notEqual: return x != y
            case .less: return x < y
            case .lessOrEqual: return x <= y
            case .greater: return x > y
            case .greaterOrEqual: return x >= y
            }
        }
        switch op {
        case .equal: return equalish(l, r)
        case .notEqual: return !equalish(l, r)
        case .less: return l.description < r.description
        case .lessOrEqual: return l.description <= r.description
        case .greater: return l.description > r.description
        case .greaterOrEqual: return l.description >= r.description
        }
    }

    private static func isBoolOrNull(_ v: Value) -> Bool {
        switch v { case .bool, .null: true; default: false }
    }

    private static func equalish(_ l: Value, _ r: Value) -> Bool {
        switch (l, r) {
        case (.null, .null): return true
        case (.null, _), (_, .null): return false
        default: return l.description == r.description
        }
    }

    public var description: String {
        switch self {
        case .reference(let r): r.description
        case .literal(.string(let s)): "\"\(s)\""
        case .literal(let v): v == .null ? "null" : v.description
        case .not(let e): "!\(e)"
        case .and(let a, let b): "(\(a) && \(b))"
        case .or(let a, let b): "(\(a) || \(b))"
        case .compare(let a, let op, let b): "\(a) \(op.rawValue) \(b)"
        }
    }
}

/// A `when` expression that does not parse.
public struct ExpressionError: Error, Sendable {
    public var message: String
    /// Characters from the start of the expression.
    public var offset: Int
}

extension Expression {
    /// Parses an expression.
    /// - Throws: `ExpressionError` with the offset of the bad token.
    public static func parse(_ text: String) throws(ExpressionError) -> Expression {
        var parser = ExpressionParser(text: text)
        return try parser.parseAll()
    }
}

private struct ExpressionParser {
    enum Token: Equatable {
        case name(String), string(String), number(Double), op(String), lparen, rparen, end
    }

    let chars: [Character]
    var position = 0
    var token: Token = .end
    var tokenStart = 0

    init(text: String) { chars = Array(text) }

    mutating func parseAll() throws(ExpressionError) -> Expression {
        try advance()
        if token == .end { throw ExpressionError(message: "empty expression", offset: 0) }
        let e = try parseOr(depth: 0)
        guard token == .end else { throw ExpressionError(message: "unexpected \(describe(token))", offset: tokenStart) }
        return e
    }

    mutating func parseOr(depth: Int) throws(ExpressionError) -> Expression {
        var left = try parseAnd(depth: depth)
        while token == .op("||") { try advance(); left = .or(left, try parseAnd(depth: depth)) }
        return left
    }

    mutating func parseAnd(depth: Int) throws(ExpressionError) -> Expression {
        var left = try parseComparison(depth: depth)
        while token == .op("&&") { try advance(); left = .and(left, try parseComparison(depth: depth)) }
        return left
    }

    mutating func parseComparison(depth: Int) throws(ExpressionError) -> Expression {
        let left = try parseUnary(depth: depth)
        if case .op(let o) = token, let cmp = Expression.Comparison(rawValue: o) {
            try advance()
            return .compare(left, cmp, try parseUnary(depth: depth))
        }
        return left
    }

    mutating func parseUnary(depth: Int) throws(ExpressionError) -> Expression {
        if depth > 64 { throw ExpressionError(message: "expression nested too deeply", offset: tokenStart) }
        switch token {
        case .op("!"):
            try advance()
            return .not(try parseUnary(depth: depth + 1))
        case .lparen:
            let start = tokenStart
            try advance()
            let e = try parseOr(depth: depth + 1)
            guard token == .rparen else { throw ExpressionError(message: "'(' is never closed", offset: start) }
            try advance()
            return e
        case .string(let s):
            try advance(); return .literal(.string(s))
        case .number(let d):
            try advance(); return .literal(.number(d))
        case .name(let n):
            let start = tokenStart
            try advance()
            switch n {
            case "true": return .literal(.bool(true))
            case "false": return .literal(.bool(false))
            case "null": return .literal(.null)
            default:
                switch Reference.parse(n) {
                case .success(let r): return .reference(r)
                case .failure(let e): throw ExpressionError(message: e.message, offset: start)
                }
            }
        default:
            throw ExpressionError(message: "expected a name, a value or '(' but found \(describe(token))", offset: tokenStart)
        }
    }

    func describe(_ t: Token) -> String {
        switch t {
        case .name(let n): "'\(n)'"
        case .string(let s): "\"\(s)\""
        case .number(let d): "\(d)"
        case .op(let o): "'\(o)'"
        case .lparen: "'('"
        case .rparen: "')'"
        case .end: "the end of the expression"
        }
    }

    mutating func advance() throws(ExpressionError) {
        while position < chars.count, chars[position].isWhitespace { position += 1 }
        tokenStart = position
        guard position < chars.count else { token = .end; return }
        let c = chars[position]
        if c.isLetter || c == "_" {
            var end = position
            while end < chars.count, chars[end].isLetter || chars[end].isNumber || "_-.".contains(chars[end]) { end += 1 }
            token = .name(String(chars[position..<end]))
            position = end
            return
        }
        if c.isNumber || (c == "-" && position + 1 < chars.count && chars[position + 1].isNumber) {
            var end = position + 1
            while end < chars.count, chars[end].isNumber || chars[end] == "." || chars[end] == "e" { end += 1 }
            guard let d = Double(String(chars[position..<end])) else {
                throw ExpressionError(message: "bad number '\(String(chars[position..<end]))'", offset: position)
            }
            token = .number(d)
            position = end
            return
        }
        if c == "\"" || c == "'" {
            var end = position + 1
            var s = ""
            while end < chars.count, chars[end] != c {
                if chars[end] == "\\", end + 1 < chars.count { end += 1 }
                s.append(chars[end])
                end += 1
            }
            guard end < chars.count else { throw ExpressionError(message: "string is never closed", offset: position) }
            token = .string(s)
            position = end + 1
            return
        }
        let two = position + 1 < chars.count ? String(chars[position...position + 1]) : ""
        if ["&&", "||", "==", "!=", "<=", ">="].contains(two) { token = .op(two); position += 2; return }
        switch c {
        case "!", "<", ">": token = .op(String(c)); position += 1
        case "(": token = .lparen; position += 1
        case ")": token = .rparen; position += 1
        case "=": throw ExpressionError(message: "'=' is not an operator: write '==' to compare", offset: position)
        case "&", "|": throw ExpressionError(message: "write '\(c)\(c)' for \(c == "&" ? "and" : "or")", offset: position)
        default: throw ExpressionError(message: "unexpected character '\(c)'", offset: position)
        }
    }
}
