import Foundation

/// Loads runbook files: YAML with positions, the grammar's structural checks, then the semantic checks.
public enum RunbookLoader {
    /// Loads and validates one file.
    /// - Throws: `LoadError` with every problem found in the file.
    public static func load(path: String) throws -> Runbook {
        let text = try readText(path: path)
        return try load(text: text, file: path)
    }

    /// Loads and validates several files at once, on as many cores as there are (a folder of
    /// runbooks is read at every start of a command); the results are in the order of `paths`.
    public static func load(paths: [String]) -> [Result<Runbook, any Error>] {
        let results = LoadResults(count: paths.count)
        DispatchQueue.concurrentPerform(iterations: paths.count) { i in
            results.set(i, Result { try load(path: paths[i]) })
        }
        return results.values
    }

    /// Reads a file as UTF-8 text, refusing files over the size limit before reading them.
    public static func readText(path: String) throws -> String {
        let top = SourceLocation(file: path, line: 1, column: 1)
        // One stat(2): FileManager's attributes would also look up the owner's user and group names.
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw LoadError([Diagnostic(top, errno == EACCES ? "cannot read the file (permissions?)" : "no such file")])
        }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw LoadError([Diagnostic(top, "is a folder, not a runbook file")]) }
        if Int(st.st_size) > YAMLReader.maxFileBytes {
            throw LoadError([Diagnostic(top, "file is \(st.st_size) bytes; runbooks are limited to 1 MiB (\(YAMLReader.maxFileBytes) bytes)")])
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LoadError([Diagnostic(top, "cannot read the file (permissions?)")])
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            throw LoadError([Diagnostic(top, "file is not UTF-8 text")])
        }
        // A byte order mark is not part of the text (as Foundation's decoding drops it).
        return text.unicodeScalars.first == "\u{FEFF}" ? String(text.unicodeScalars.dropFirst()) : text
    }

    /// Loads and validates YAML text; `file` is used in locations.
    /// - Throws: `LoadError` with every problem found.
    public static func load(text: String, file: String) throws -> Runbook {
        let root = try YAMLReader.parse(text, file: file)
        // The one pass over the grammar: it reports what does not fit and converts the rest, which
        // the builder then decodes into the model (actions into their typed specs, range-checked).
        var checker = ShapeChecker()
        let tree = checker.checkObject(root, RunbookGrammar.runbook, context: "")
        guard root.entries != nil, let tree else { throw LoadError(checker.diagnostics) }
        var builder = RunbookBuilder(file: file, diagnostics: checker.diagnostics, templates: checker.templates)
        let runbook = builder.build(root, tree)
        if !builder.diagnostics.isEmpty { throw LoadError(dedupe(builder.diagnostics)) }
        return runbook
    }

    private static func dedupe(_ d: [Diagnostic]) -> [Diagnostic] {
        var seen = Set<Diagnostic>()
        return d.filter { seen.insert($0).inserted }
    }
}

/// Turns a structurally checked tree into the model, adding the semantic checks.
package struct RunbookBuilder {
    let file: String
    var diagnostics: [Diagnostic]
    /// The templates the grammar pass parsed, by position.
    var templates: [SourceLocation: Template] = [:]

    mutating func error(_ location: SourceLocation, _ message: String) {
        diagnostics.append(Diagnostic(location, message))
    }

    func text(_ node: YAMLNode?) -> String? {
        guard let node, !node.isNull else { return nil }
        return node.scalar
    }

    /// Builds the model from the file's YAML (for locations) and the grammar pass's `tree` of it.
    mutating func build(_ root: YAMLNode, _ tree: Config) -> Runbook {
        let name = text(root["runbook"]) ?? ""
        if let node = root["runbook"], node.scalar != nil, !Self.isIdentifier(name) {
            error(node.location, "runbook name '\(name)' must be lower-case letters, digits and '-' ([a-z0-9-]+)")
        }
        var runbook = Runbook(
            name: name, title: text(root["title"]) ?? name, description: text(root["description"]) ?? "",
            severity: text(root["severity"]) ?? "warning", owner: text(root["owner"]) ?? "",
            params: buildParams(root["params"]), triggers: [], guards: Guards(), steps: [], file: file)
        runbook.detect = text(root["detect"]).flatMap(DetectPolicy.init(rawValue:)) ?? .any
        runbook.triggers = buildTriggers(root["triggers"], params: runbook.params)
        runbook.targets = buildTargets(root["targets"], tree["targets"], params: runbook.params)
        runbook.steps = buildSteps(root["steps"], tree["steps"])
        checkFleet(runbook)
        runbook.abortIf = buildAlarms(root["abort_if"], tree["abort_if"], stepIDs: Set(runbook.steps.map(\.id)))
        if let c = root["approvals_channel"], let t = tree["approvals_channel"]?.template {
            runbook.approvalsChannel = t
            var urls = ActionDecoder()
            urls.checkURL(t, c.location, "approvals_channel")
            diagnostics += urls.diagnostics
        }
        runbook.guards = buildGuards(root["guards"], params: runbook.params)
        var validator = GraphValidator(runbook: runbook, root: root, templates: templates)
        validator.validate()
        diagnostics += validator.diagnostics.filter { !$0.isWarning }
        runbook.warnings = validator.diagnostics.filter(\.isWarning)
        return runbook
    }

    static func isIdentifier(_ s: String) -> Bool {
        !s.isEmpty && s.utf8.allSatisfy { ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 45 }
    }

    mutating func buildParams(_ node: YAMLNode?) -> [ParamSpec] {
        guard let entries = node?.entries else { return [] }
        var out: [ParamSpec] = []
        for e in entries {
            let p = e.value
            var def: Value?
            if let d = p["default"] {
                if d.isNull { def = nil } else if let b = d.bool { def = .bool(b) } else if let n = d.number { def = .number(n) } else if let s = d.scalar { def = .string(s) }
            }
            let pattern = text(p["pattern"])
            if let pattern, let def, ShapeChecker.regexProblem(pattern) == nil, !Self.matches(pattern, def.description) {
                error(p["default"]!.location, "default '\(def)' of param '\(e.key)' does not match its pattern \(pattern)")
            }
            var spec = ParamSpec(name: e.key, defaultValue: def, pattern: pattern, secret: p["secret"]?.bool ?? false,
                                 required: p["required"]?.bool ?? false, description: text(p["description"]) ?? "")
            spec.isPath = text(p["type"]) == "path"
            spec.within = text(p["within"])
            if spec.isPath, spec.within == nil {
                error(p["type"]!.location, "param '\(e.key)' has type: path but no within: name the folder its value must stay inside")
            }
            if !spec.isPath, let w = p["within"] {
                error(w.location, "within: applies to type: path only; add type: path to param '\(e.key)'")
            }
            out.append(spec)
        }
        return out
    }

    /// Whole-value regular expression match: the pattern must match all of `value` (`^` and `$` are
    /// optional). The end is `\z`, not `$`, which would also match before a final line terminator.
    package static func matches(_ pattern: String, _ value: String) -> Bool {
        guard let re = RegexCache.shared.regex("^(?:\(pattern))\\z") else { return false }
        return re.firstMatch(in: value, range: NSRange(value.startIndex..., in: value)) != nil
    }

    mutating func buildTriggers(_ node: YAMLNode?, params: [ParamSpec]) -> [Trigger] {
        guard let items = node?.items else { return [] }
        var out: [Trigger] = []
        for item in items {
            var matchers: [LabelMatcher] = []
            if let alert = item["alert"] {
                if let entries = alert.entries {
                    if entries.isEmpty { error(alert.location, "trigger has no label matchers: name at least one, like alertname: AppMemoryHigh") }
                    for e in entries {
                        guard let spec = e.value.scalar, !e.value.isNull else { continue }
                        let m = LabelMatcher(label: e.key, spec: spec)
                        if m.op == .matches || m.op == .notMatches, let problem = ShapeChecker.regexProblem("^(?:\(m.value))$") {
                            error(e.value.location, "label matcher for '\(e.key)': bad pattern '\(m.value)': \(problem)")
                        }
                        matchers.append(m)
                    }
                } else if alert.isNull {
                    error(alert.location, "trigger has no label matchers: name at least one, like alertname: AppMemoryHigh")
                }
            }
            var mapped: [(String, Template)] = []
            for e in item["params"]?.entries ?? [] {
                guard let s = e.value.scalar, let t = try? Template(parsing: s) else { continue }
                if !params.contains(where: { $0.name == e.key }) {
                    error(e.keyNode.location, "trigger sets param '\(e.key)', which the runbook does not declare\(Suggest.hint(for: e.key, among: params.map(\.name)))")
                }
                for r in t.references {
                    switch r {
                    case .alertLabel, .alertAnnotation: break
                    case .param(let p) where params.contains { $0.name == p }: break
                    default: error(e.value.location, "'\(r)' cannot be used in trigger params: only alert.labels.NAME and alert.annotations.NAME")
                    }
                }
                mapped.append((e.key, t))
            }
            out.append(Trigger(matchers: matchers, params: mapped, location: item.location))
        }
        return out
    }

    mutating func buildGuards(_ node: YAMLNode?, params: [ParamSpec]) -> Guards {
        var g = Guards()
        guard let node, node.entries != nil else { return g }
        g.auto = node["auto"]?.bool ?? (node["auto"]?.scalar == "ask")
        g.askBeforeChanges = node["auto"]?.scalar == "ask"
        g.cooldown = text(node["cooldown"]).flatMap(Quantity.duration)
        if let m = node["max_active"], let n = m.number {
            g.maxActive = Int(n)
            if n < 1 { error(m.location, "guards.max_active must be at least 1") }
        }
        if let m = node["max_runs"], let c = m["count"]?.number, let p = text(m["per"]).flatMap(Quantity.duration) {
            g.maxRuns = (Int(c), p)
            if c < 1 { error(m["count"]!.location, "max_runs.count must be at least 1") }
        }
        if let l = node["lock"], let s = text(l), let t = try? Template(parsing: s) {
            g.lock = t
            for r in t.references {
                switch r {
                case .param(let p) where !params.contains(where: { $0.name == p }):
                    error(l.location, "unknown param '\(p)' in guards.lock\(Suggest.hint(for: p, among: params.map(\.name)))")
                case .param, .runID: break
                default: error(l.location, "'\(r)' cannot be used in guards.lock: only params and run.id")
                }
            }
        }
        return g
    }

    mutating func buildSteps(_ node: YAMLNode?, _ tree: Config?) -> [Step] {
        guard let items = node?.items else { return [] }
        if items.isEmpty, let node { error(node.location, "steps is empty: a runbook needs at least one step") }
        var out: [Step] = []
        // The grammar pass keeps one entry per item (null where an item is not a mapping).
        let configs = tree?.list ?? []
        for (i, item) in items.enumerated() where item.entries != nil {
            let config = i < configs.count ? configs[i] : .null
            // The step's own keys, read only through `Step.Field`; its action is `buildAction`'s.
            let step = FieldReader<Step.Field>(node: item, config: config, context: "step")
            let id = text(step[.id]) ?? ""
            if let n = step[.id], n.scalar != nil, !n.isNull, !Self.isIdentifier(id) {
                error(n.location, "step id '\(id)' must be lower-case letters, digits and '-' ([a-z0-9-]+)")
            }
            let declaredPhase = text(step[.phase]).flatMap(Phase.init(rawValue:))
            let phase = declaredPhase ?? .diagnose
            var when: Expression?
            if let w = step[.when], let s = text(w) {
                do { when = try Expression.parse(s) } catch {
                    let quoted: Int
                    if case .scalar(_, let plain) = w.kind { quoted = plain ? 0 : 1 } else { quoted = 0 }
                    var loc = w.location
                    if !s.contains("\n") { loc.column += error.offset + quoted }
                    var message = error.message
                    for (word, op) in [("and", "&&"), ("or", "||"), ("not", "!")] where message.contains("'\(word)'") {
                        message += ": write \(op) for \(word)"
                        break
                    }
                    self.error(loc, "bad when expression: \(message)")
                }
            }
            var retry = RetryPolicy()
            if let node = step[.retry] {
                let r = FieldReader<RetryPolicy.Field>(node: node, config: step.value(.retry) ?? .null, context: "retry")
                retry.attempts = max(1, Int(r[.attempts]?.number ?? 1))
                if let a = r[.attempts]?.number, a < 1 { error(r[.attempts]!.location, "retry.attempts must be at least 1 (it counts the first try)") }
                retry.delay = text(r[.delay]).flatMap(Quantity.duration) ?? 1
                retry.backoff = r[.backoff]?.number ?? 1
                if retry.backoff < 1, let b = r[.backoff] { error(b.location, "retry.backoff must be 1 or more") }
                retry.jitter = r[.jitter]?.bool ?? true
                retry.maxDelay = text(r[.maxDelay]).flatMap(Quantity.duration)
            }
            let readOnly = step[.readOnly]?.bool ?? false
            let context = "step '\(id)'"
            let action = buildAction(item, config, readOnly: readOnly, context: context) ?? Action(.wait(seconds: 0), readOnly: true)
            // A wait's own duration does not count against the default timeout.
            var waitTime = 0.0
            if case .wait(let seconds) = action.spec { waitTime = seconds }
            let timeout = text(step[.timeout]).flatMap(Quantity.duration) ?? (Step.defaultTimeout + waitTime)
            if let t = step[.timeout], timeout <= 0 { error(t.location, "timeout must be more than 0s: write how long one attempt may take, like 30s") }
            if let t = step[.timeout], action.kind == .wait, timeout <= waitTime {
                error(t.location, "timeout \(Quantity.formatDuration(timeout)) is not longer than the wait \(Quantity.formatDuration(waitTime)): the step could never pass")
            }
            if action.kind == .check, readOnly { error(step[.readOnly]!.location, "read_only is for command steps; checks are always read-only") }
            if declaredPhase != nil, phase == .detect || phase == .diagnose || phase == .verify, action.isChange {
                error(item.location, "step '\(id)' changes the world (\(action.kind.rawValue)) in the \(phase.rawValue) phase: changes belong in mitigate (mark a harmless command read_only: true)")
            }
            let undo = step[.undo].flatMap { buildAction($0, step.value(.undo) ?? .null, readOnly: false, context: context + " undo") }
            let gate = buildGate(step[.confirm])
            if gate != nil, !action.isChange, let c = step[.confirm] {
                error(c.location, "an approval gate guards a change: step '\(id)' changes nothing (\(action.kind.rawValue))")
            }
            out.append(Step(
                id: id, phase: phase, description: text(step[.description]) ?? "",
                needs: step[.needs]?.items?.compactMap { text($0) } ?? [], when: when, timeout: timeout, retry: retry,
                confirm: step[.confirm]?.bool ?? false, continueOnFailure: step[.continueOnFailure]?.bool ?? false,
                action: action, undo: undo, location: item.location,
                rulesOut: text(step[.rulesOut]), finding: text(step[.finding]), phaseDeclared: declaredPhase != nil))
            out[out.count - 1].gate = gate
            if let a = step[.across], let c = step.value(.across) { out[out.count - 1].across = buildAcross(a, c, context: context) }
        }
        return out
    }

    /// `confirm: { approvals, timeout, on_timeout }` (nil for `confirm: true|false`).
    mutating func buildGate(_ node: YAMLNode?) -> ApprovalGate? {
        guard let node, node.entries != nil else { return nil }
        var g = ApprovalGate()
        if let a = node["approvals"], let n = a.number {
            g.approvals = Int(n)
            if n < 1 || n > 20 { error(a.location, "confirm.approvals must be between 1 and 20") }
        }
        if let t = node["timeout"], let d = text(t).flatMap(Quantity.duration) {
            g.timeout = d
            if d <= 0 { error(t.location, "confirm.timeout must be more than 0s") }
        }
        if let o = text(node["on_timeout"]).flatMap(ApprovalGate.OnTimeout.init(rawValue:)) { g.onTimeout = o }
        return g
    }

    mutating func buildAlarms(_ node: YAMLNode?, _ tree: Config?, stepIDs: Set<String>) -> [Alarm] {
        var out: [Alarm] = []
        var seen = Set<String>()
        let configs = tree?.list ?? []
        for (i, item) in (node?.items ?? []).enumerated() where item.entries != nil {
            let config = i < configs.count ? configs[i] : .null
            guard let id = text(item["id"]),
                  let action = buildAction(item, config, readOnly: true, context: "abort_if '\(id)'"), action.kind == .check else { continue }
            if !Self.isIdentifier(id) { error(item["id"]!.location, "alarm id '\(id)' must be lower-case letters, digits and '-' ([a-z0-9-]+)") }
            if stepIDs.contains(id) || !seen.insert(id).inserted {
                error(item["id"]!.location, "alarm id '\(id)' is already used by a \(stepIDs.contains(id) ? "step" : "alarm"): ids must be unique")
            }
            let every = text(item["every"]).flatMap(Quantity.duration) ?? 5
            if let e = item["every"], every <= 0 { error(e.location, "every must be more than 0s") }
            let timeout = text(item["timeout"]).flatMap(Quantity.duration) ?? Step.defaultTimeout
            if let t = item["timeout"], timeout <= 0 { error(t.location, "abort_if '\(id)' timeout must be more than 0s: write how long one evaluation may take, like 10s") }
            out.append(Alarm(id: id, action: action, every: max(0.01, every), timeout: timeout, location: item.location))
        }
        return out
    }

    /// The action of a step, undo or alarm mapping: `node` and the grammar pass's `config` of it.
    /// Range problems are reported here, once.
    mutating func buildAction(_ node: YAMLNode, _ config: Config, readOnly: Bool, context: String) -> Action? {
        for kind in RunbookGrammar.actionKinds {
            guard let value = node[kind], let converted = config[kind], let k = Action.Kind(rawValue: kind) else { continue }
            var decoder = ActionDecoder()
            let spec = decoder.decode(k, node: value, config: converted, context: context)
            diagnostics += decoder.diagnostics
            guard let spec else { return nil }
            var commandReadOnly = false
            if case .command(let c) = spec { commandReadOnly = c.readOnly }
            return Action(spec, readOnly: readOnly || commandReadOnly)
        }
        return nil
    }
}

/// The results of `RunbookLoader.load(paths:)`, each written once by the worker that loaded it.
private final class LoadResults: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var slots: [Result<Runbook, any Error>?]

    init(count: Int) { slots = Array(repeating: nil, count: count) }

    func set(_ i: Int, _ r: Result<Runbook, any Error>) { lock.withLock { slots[i] = r } }

    var values: [Result<Runbook, any Error>] { lock.withLock { slots.map { $0! } } }
}

/// Compiled patterns, kept: an alert payload of thousands of alerts matches the same few patterns
/// thousands of times.
final class RegexCache: @unchecked Sendable {
    static let shared = RegexCache()
    // Guarded by `lock`. NSRegularExpression is immutable and safe to share across threads.
    private let lock = NSLock()
    private var compiled: [String: NSRegularExpression] = [:]

    func regex(_ pattern: String) -> NSRegularExpression? {
        if let r = lock.withLock({ compiled[pattern] }) { return r }
        guard let r = try? NSRegularExpression(pattern: pattern) else { return nil }
        lock.withLock {
            if compiled.count > 4096 { compiled.removeAll() }
            compiled[pattern] = r
        }
        return r
    }
}
