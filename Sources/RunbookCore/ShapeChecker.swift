import Foundation

/// Checks a YAML tree against a `Shape`, collecting every problem, and converts what is valid into `Config`.
package struct ShapeChecker {
    package var diagnostics: [Diagnostic] = []
    /// Every template parsed, by where its text starts: later checks read these, not the text again.
    package var templates: [SourceLocation: Template] = [:]
    package init() {}

    mutating func error(_ node: YAMLNode, _ message: String) {
        diagnostics.append(Diagnostic(node.location, message))
    }

    /// Returns the converted value, or nil where the node does not fit (a diagnostic is recorded).
    mutating func check(_ node: YAMLNode, _ shape: Shape, context: String) -> Config? {
        switch shape {
        case .text:
            guard let s = textScalar(node, context: context) else { return nil }
            do {
                let t = try Template(parsing: s)
                if !t.isLiteral { templates[node.location] = t }
                return .text(t)
            } catch {
                diagnostics.append(Diagnostic(node.location, "\(context): bad template: \(error.message)"))
                return nil
            }
        case .bool:
            if let b = node.bool { return .bool(b) }
            error(node, "\(context) must be true or false, not \(node.kindName)")
        case .integer:
            if let d = node.number, d == d.rounded() { return .number(d) }
            error(node, "\(context) must be a whole number, not \(describe(node))")
        case .number:
            if let d = node.number { return .number(d) }
            error(node, "\(context) must be a number, not \(describe(node))")
        case .percent:
            if let d = node.number { return .number(d) }
            if let s = node.scalar, !node.isNull, s.trimmingCharacters(in: .whitespaces).hasSuffix("%"),
               let d = Double(s.trimmingCharacters(in: .whitespaces).dropLast().trimmingCharacters(in: .whitespaces)), d.isFinite {
                return .number(d)
            }
            error(node, "\(context) must be a percentage like 80 or 80%, not \(describe(node))")
        case .duration:
            if let s = node.scalar, !node.isNull, let d = Quantity.duration(s) { return .duration(d) }
            if let s = node.scalar, !node.isNull, s.trimmingCharacters(in: .whitespaces).hasPrefix("-"),
               Quantity.duration(String(s.trimmingCharacters(in: .whitespaces).dropFirst())) != nil {
                error(node, "\(context) is negative ('\(s)'): a duration must be more than 0s, like 500ms or 10s")
                return nil
            }
            error(node, "\(context): bad duration \(describe(node)): write a number and a unit, like 250ms, 30s, 10m or 1h")
        case .size:
            if let s = node.scalar, !node.isNull, let d = Quantity.size(s) { return .size(d) }
            error(node, "\(context): bad size \(describe(node)): write a number and a unit, like 512KB, 1MB or 2GB")
        case .rate:
            if let s = node.scalar, !node.isNull, let d = Quantity.rate(s) { return .rate(d) }
            error(node, "\(context): bad rate \(describe(node)): write a size or a count per time, like 1MB/s, 10MB/min, 10/s or 600/min")
        case .regex:
            guard let s = textScalar(node, context: context) else { return nil }
            if let problem = Self.regexProblem(s) {
                error(node, "\(context): bad pattern '\(s)': \(problem)")
                return nil
            }
            return .text(Template(literal: s))
        case .choice(let options):
            if let s = node.scalar, options.contains(s) { return .text(Template(literal: s)) }
            let hint = node.scalar.map { Suggest.hint(for: $0, among: options) } ?? ""
            error(node, "\(context) must be one of \(options.joined(separator: ", ")), not \(describe(node))\(hint)")
        case .scalar:
            if node.isNull { return .null }
            if let b = node.bool { return .bool(b) }
            if let d = node.number { return .number(d) }
            if let s = node.scalar { return .text(Template(literal: s)) }
            error(node, "\(context) must be a single value, not \(node.kindName)")
        case .list(let item):
            guard let items = node.items else {
                error(node, "\(context) must be \(shape.name), not \(node.kindName)")
                return nil
            }
            var out: [Config] = []
            for (i, it) in items.enumerated() {
                // A step is named by its id where it has one: "step 'restart-shop'", not "steps[3]".
                var name = "\(context)[\(i)]"
                if context == "steps", let id = it["id"]?.scalar, !id.isEmpty, !(it["id"]?.isNull ?? true) { name = "step '\(id)'" }
                // A placeholder keeps items and their nodes aligned for the builder.
                out.append(check(it, item, context: name) ?? .null)
            }
            return .list(out)
        case .dictionary(let value):
            guard let entries = node.entries else {
                error(node, "\(context) must be a mapping, not \(node.kindName)")
                return nil
            }
            var out: [Config.Entry] = []
            var seen = Set<String>()
            for e in entries {
                if !seen.insert(e.key).inserted { error(e.keyNode, "duplicate key '\(e.key)' in \(context)") }
                if let c = check(e.value, value, context: "\(context).\(e.key)") { out.append(Config.Entry(key: e.key, value: c)) }
            }
            return .map(out)
        case .object(let object):
            return checkObject(node, object, context: context)
        case .either(let shapes):
            for s in shapes where fits(node, s) { return check(node, s, context: context) }
            error(node, "\(context) must be \(shape.name), not \(describe(node))")
        case .command:
            if node.items != nil {
                guard let argv = check(node, .list(.text), context: context) else { return nil }
                if argv.list?.isEmpty ?? true { error(node, "\(context): the argv list is empty: name a program") }
                return .map([Config.Entry(key: "argv", value: argv)])
            }
            if node.entries != nil {
                let c = checkObject(node, RunbookGrammar.commandObject, context: context)
                if let node = node["argv"], node.items?.isEmpty == true { error(node, "\(context).argv is empty: name a program") }
                return c
            }
            if node.scalar != nil, !node.isNull {
                error(node, "\(context) must be an argv list like [\"systemctl\", \"restart\", \"shop\"]; a string is never run through a shell")
            } else {
                error(node, "\(context) must be \(shape.name), not \(node.kindName)")
            }
        }
        return nil
    }

    /// Whether the YAML kind suits the shape, to pick a branch of `either`.
    private func fits(_ node: YAMLNode, _ shape: Shape) -> Bool {
        switch shape {
        case .list, .command: return node.items != nil
        case .object, .dictionary: return node.entries != nil
        case .integer: if let d = node.number { return d == d.rounded() } else { return false }
        case .number: return node.number != nil
        case .percent: return node.number != nil || (node.scalar?.hasSuffix("%") ?? false)
        case .bool: return node.bool != nil
        default: return node.scalar != nil && !node.isNull
        }
    }

    private mutating func textScalar(_ node: YAMLNode, context: String) -> String? {
        guard let s = node.scalar, !node.isNull else {
            error(node, "\(context) must be text, not \(node.kindName)")
            return nil
        }
        return s
    }

    private func describe(_ node: YAMLNode) -> String {
        if let s = node.scalar, !node.isNull { return "'\(s.count > 40 ? String(s.prefix(40)) + "…" : s)'" }
        return node.kindName
    }

    package mutating func checkObject(_ node: YAMLNode, _ object: ObjectShape, context: String) -> Config? {
        guard let entries = node.entries else {
            error(node, "\(context.isEmpty ? "the file" : context) must be a mapping, not \(node.kindName)")
            return nil
        }
        var out: [Config.Entry] = []
        var seen = Set<String>()
        let known = object.fields.map(\.name)
        for e in entries {
            if !seen.insert(e.key).inserted {
                error(e.keyNode, "duplicate key '\(e.key)' in \(context)")
                continue
            }
            guard let f = object.field(e.key) else {
                error(e.keyNode, "unknown key '\(e.key)' in \(context.isEmpty ? "the runbook" : context)\(Suggest.hint(for: e.key, among: known))")
                continue
            }
            // "step 'restart-shop' timeout", "step 'restart-shop' restart.ready", "guards.cooldown".
            let child = context.isEmpty ? e.key : context.hasSuffix("'") ? "\(context) \(e.key)" : "\(context).\(e.key)"
            if let c = check(e.value, f.shape, context: child) {
                out.append(Config.Entry(key: e.key, value: c))
            }
        }
        for f in object.fields where f.required && !seen.contains(f.name) {
            error(node, "\(context.isEmpty ? "runbook" : context) is missing required key '\(f.name)'")
        }
        if !object.exactlyOne.isEmpty {
            let present = object.exactlyOne.filter(seen.contains)
            if present.isEmpty {
                error(node, "\(context.isEmpty ? "mapping" : context) needs exactly one of \(object.exactlyOne.joined(separator: ", ")); it has none")
            } else if present.count > 1 {
                let inFileOrder = entries.filter { object.exactlyOne.contains($0.key) }
                error(inFileOrder[1].keyNode, "\(context) has both '\(inFileOrder[0].key)' and '\(inFileOrder[1].key)': exactly one of \(object.exactlyOne.joined(separator: ", ")) is allowed")
            }
        }
        if !object.atLeastOne.isEmpty, !object.atLeastOne.contains(where: seen.contains) {
            error(node, "\(context) needs at least one of \(object.atLeastOne.joined(separator: ", "))")
        }
        return .map(out)
    }

    /// Compiles a pattern with the same engine the runner uses; returns the problem, if any.
    static func regexProblem(_ pattern: String) -> String? {
        do {
            _ = try NSRegularExpression(pattern: pattern)
            return nil
        } catch {
            return "it does not compile as a regular expression"
        }
    }
}
