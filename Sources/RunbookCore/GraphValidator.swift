/// The checks that need the whole runbook: ids, `needs`, cycles, and the names templates and `when` read.
struct GraphValidator {
    let runbook: Runbook
    let stepNodes: [YAMLNode]
    var diagnostics: [Diagnostic] = []
    /// Params already warned about (one warning each).
    var warned = Set<String>()

    /// The templates the grammar pass parsed, by position.
    let parsed: [SourceLocation: Template]

    init(runbook: Runbook, root: YAMLNode, templates: [SourceLocation: Template] = [:]) {
        self.runbook = runbook
        self.parsed = templates
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
        let ids = runbook.graph.index.keys
        for (step, node) in zip(runbook.steps, stepNodes) {
            let needNodes = node["needs"]?.items ?? []
            for (need, needNode) in zip(step.needs, needNodes) {
                if need == step.id {
                    error(needNode.location, "step '\(step.id)' needs itself")
                } else if let target = runbook.step(need) {
                    if target.phaseDeclared, step.phaseDeclared, target.phase > step.phase {
                        error(needNode.location, "step '\(step.id)' (\(step.phase.rawValue)) needs '\(need)', which is in the later phase \(target.phase.rawValue): needs may only point to the same or an earlier phase")
                    }
                } else {
                    error(needNode.location, "unknown step '\(need)' in needs\(Suggest.hint(for: need, among: ids))")
                }
            }
        }
        reportCycles()
        for (step, node) in zip(runbook.steps, stepNodes) {
            checkReferences(of: step, node: node)
        }
    }

    /// Names each cycle of the graph once, at the `needs` of the step where it closes: `a -> b -> a`.
    mutating func reportCycles() {
        for cycle in runbook.graph.cycles {
            guard let closing = cycle.last, let i = runbook.graph.index[closing], i < stepNodes.count else { continue }
            error(stepNodes[i]["needs"]?.location ?? runbook.steps[i].location, "needs form a cycle: \(cycle.joined(separator: " -> "))")
        }
    }

    /// Steps certain to have finished before `step` starts: earlier phases and `needs` ancestors.
    func finishedBefore(_ step: Step) -> Set<String> {
        Set(runbook.steps.lazy.filter { $0.phase < step.phase }.map(\.id)).union(runbook.graph.ancestors(of: step.id))
    }

    mutating func checkReferences(of step: Step, node: YAMLNode) {
        var uses: [(Reference, SourceLocation)] = []
        if let w = node["when"], let e = step.when { uses += e.references.map { ($0, w.location) } }
        for key in RunbookGrammar.actionKinds + ["undo"] {
            guard let n = node[key] else { continue }
            for (t, loc) in templates(in: n) { uses += t.references.map { ($0, loc) } }
        }
        guard !uses.isEmpty else { return }
        let paramNames = runbook.params.map(\.name)
        // Only steps that read other steps pay for the ancestor walk.
        let before = uses.contains { $0.0.step != nil } ? finishedBefore(step) : []
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
                if case .stepOutput(_, let name) = ref, let target = runbook.step(s), !ActionReference.hasOutput(target.action, name),
                   target.across == nil || !ActionReference.acrossOutputs.contains(name),
                   let entry = ActionReference.entry(for: target.action) {
                    var shown = entry
                    shown.outputs = ActionReference.outputs(of: target.action)
                    error(loc, "step '\(s)' (\(entry.key)) has no output '\(name)'\(Suggest.hint(for: name, among: shown.outputs.map(\.name))); its outputs: \(ActionReference.outputList(shown))")
                } else if runbook.step(s) == nil {
                    error(loc, "unknown step '\(s)' in '\(ref)'\(Suggest.hint(for: s, among: runbook.graph.index.keys))")
                } else if s == step.id {
                    error(loc, "step '\(step.id)' cannot read its own result ('\(ref)')")
                } else if !before.contains(s), step.phaseDeclared, runbook.step(s)?.phaseDeclared ?? true {
                    error(loc, "'\(ref)': step '\(s)' is not certain to finish before '\(step.id)' starts: add it to needs, or move it to an earlier phase")
                }
            case .runID:
                break
            case .alertLabel, .alertAnnotation:
                error(loc, "'\(ref)' is only available in triggers[].params; map it onto a param and use params.NAME")
            case .targetHost:
                if step.across == nil, !runbook.steps.contains(where: { $0.across?.canary?.verify == step.id }) {
                    error(loc, "step '\(step.id)' uses {{ target.host }} but has no across: (only a step run on hosts, or a canary's verify check, has a target)")
                }
            }
        }
    }

    /// Every template-bearing scalar below a node, with its position: the grammar pass's parse
    /// where it made one (text settings), else parsed here (a `{{` in a value the grammar keeps literal).
    func templates(in node: YAMLNode) -> [(Template, SourceLocation)] {
        switch node.kind {
        case .scalar(let s, _):
            guard s.contains("{{"), let t = parsed[node.location] ?? (try? Template(parsing: s)) else { return [] }
            return [(t, node.location)]
        case .sequence(let items): return items.flatMap { templates(in: $0) }
        case .mapping(let entries): return entries.flatMap { templates(in: $0.value) }
        }
    }
}
