/// The checks that need the whole runbook: ids, `needs`, cycles, and the names templates and `when` read.
struct GraphValidator {
    let runbook: Runbook
    let stepNodes: [YAMLNode]
    var diagnostics: [Diagnostic] = []
    /// Params already warned about (one warning each).
    var warned = Set<String>()

    init(runbook: Runbook, root: YAMLNode) {
        self.runbook = runbook
        self.stepNodes = root["steps"]?.items?.filter { $0.entries != nil } ?? []
    }

    mutating func error(_ location: SourceLocation, _ message: String) {
        diagnostics.append(Diagnostic(location, message))
    }

    mutating func validate() {
        var firstSeen: [String: SourceLocation] = [:]
        for (step, node) in zip(runbook.steps, stepNodes) where !step.id.isEmpty {
            if let first = firstSeen[step.id] {
                error(node["id"]?.location ?? step.location, "duplicate step id '\(step.id)' (first defined at line \(first.line))")
            } else {
                firstSeen[step.id] = step.location
            }
        }
        let ids = Set(runbook.steps.map(\.id))
        let byID = Dictionary(runbook.steps.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for (step, node) in zip(runbook.steps, stepNodes) {
            let needNodes = node["needs"]?.items ?? []
            for (need, needNode) in zip(step.needs, needNodes) {
                if need == step.id {
                    error(needNode.location, "step '\(step.id)' needs itself")
                } else if let target = byID[need] {
                    if target.phaseDeclared, step.phaseDeclared, target.phase > step.phase {
                        error(needNode.location, "step '\(step.id)' (\(step.phase.rawValue)) needs '\(need)', which is in the later phase \(target.phase.rawValue): needs may only point to the same or an earlier phase")
                    }
                } else {
                    error(needNode.location, "unknown step '\(need)' in needs\(Suggest.hint(for: need, among: ids))")
                }
            }
        }
        reportCycles(byID: byID)
        for (step, node) in zip(runbook.steps, stepNodes) {
            checkReferences(of: step, node: node, byID: byID)
        }
    }

    /// Finds each cycle once and names it: `a -> b -> a`.
    mutating func reportCycles(byID: [String: Step]) {
        var state: [String: Int] = [:]  // 1 visiting, 2 done
        var stack: [String] = []
        var reported = Set<Set<String>>()
        func visit(_ id: String, _ me: inout GraphValidator) {
            state[id] = 1
            stack.append(id)
            for need in byID[id]?.needs ?? [] where byID[need] != nil && need != id {
                if state[need] == 1 {
                    let cycle = Array(stack[stack.lastIndex(of: need)!...]) + [need]
                    if reported.insert(Set(cycle)).inserted, let step = byID[need] {
                        let node = me.stepNodes[me.runbook.steps.firstIndex { $0.id == need }!]
                        let location = node["needs"]?.location ?? step.location
                        me.error(location, "needs form a cycle: \(cycle.joined(separator: " -> "))")
                    }
                } else if state[need] == nil {
                    visit(need, &me)
                }
            }
            stack.removeLast()
            state[id] = 2
        }
        for step in runbook.steps where state[step.id] == nil && !step.id.isEmpty {
            visit(step.id, &self)
        }
    }

    /// Steps certain to have finished before `step` starts: earlier phases and `needs` ancestors.
    func finishedBefore(_ step: Step, byID: [String: Step]) -> Set<String> {
        var out = Set(runbook.steps.lazy.filter { $0.phase < step.phase }.map(\.id))
        var queue = step.needs
        var seen = Set<String>()
        while let n = queue.popLast() {
            guard seen.insert(n).inserted, let s = byID[n] else { continue }
            out.insert(n)
            queue += s.needs
        }
        return out
    }

    mutating func checkReferences(of step: Step, node: YAMLNode, byID: [String: Step]) {
        var uses: [(Reference, SourceLocation)] = []
        if let w = node["when"], let e = step.when { uses += e.references.map { ($0, w.location) } }
        for key in RunbookGrammar.actionKinds + ["undo"] {
            guard let n = node[key] else { continue }
            for (t, loc) in Self.templates(in: n) { uses += t.references.map { ($0, loc) } }
        }
        guard !uses.isEmpty else { return }
        let paramNames = runbook.params.map(\.name)
        // Only steps that read other steps pay for the ancestor walk.
        let before = uses.contains { $0.0.step != nil } ? finishedBefore(step, byID: byID) : []
        for (ref, loc) in uses {
            switch ref {
            case .param(let p):
                if !paramNames.contains(p) {
                    error(loc, "unknown param '\(p)'\(Suggest.hint(for: p, among: paramNames)); declare it under params:")
                } else if step.action.isChange || step.undo != nil, let spec = runbook.param(p), spec.pattern == nil, !spec.isPath,
                          !warned.contains(p) {
                    warned.insert(p)
                    diagnostics.append(Diagnostic(loc, "param '\(p)' reaches change step '\(step.id)' with neither pattern: nor type: path; an alert label or API caller could pass any value: add a pattern (whole value) or type: path with within:", warning: true))
                }
            case .stepState(let s, _), .stepOutput(let s, _):
                if case .stepOutput(_, let name) = ref, let target = byID[s], !ActionReference.hasOutput(target.action, name),
                   let entry = ActionReference.entry(for: target.action) {
                    var shown = entry
                    shown.outputs = ActionReference.outputs(of: target.action)
                    error(loc, "step '\(s)' (\(entry.key)) has no output '\(name)'\(Suggest.hint(for: name, among: shown.outputs.map(\.name))); its outputs: \(ActionReference.outputList(shown))")
                } else if byID[s] == nil {
                    error(loc, "unknown step '\(s)' in '\(ref)'\(Suggest.hint(for: s, among: byID.keys))")
                } else if s == step.id {
                    error(loc, "step '\(step.id)' cannot read its own result ('\(ref)')")
                } else if !before.contains(s), step.phaseDeclared, byID[s]?.phaseDeclared ?? true {
                    error(loc, "'\(ref)': step '\(s)' is not certain to finish before '\(step.id)' starts: add it to needs, or move it to an earlier phase")
                }
            case .runID:
                break
            case .alertLabel, .alertAnnotation:
                error(loc, "'\(ref)' is only available in triggers[].params; map it onto a param and use params.NAME")
            }
        }
    }

    /// Every template-bearing scalar below a node, with its position.
    static func templates(in node: YAMLNode) -> [(Template, SourceLocation)] {
        switch node.kind {
        case .scalar(let s, _):
            guard s.contains("{{"), let t = try? Template(parsing: s) else { return [] }
            return [(t, node.location)]
        case .sequence(let items): return items.flatMap { templates(in: $0) }
        case .mapping(let entries): return entries.flatMap { templates(in: $0.value) }
        }
    }
}
