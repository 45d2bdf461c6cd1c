import Foundation

/// Draws a runbook's step graph for people and tools: text (`runbook show`), Mermaid and Graphviz
/// dot (`runbook graph`). The graph itself is `Runbook.graph`.
public struct GraphRenderer: Sendable {
    public let runbook: Runbook

    public init(_ runbook: Runbook) {
        self.runbook = runbook
    }

    /// Steps of one phase in file order.
    public func steps(in phase: Phase) -> [Step] { runbook.steps.filter { $0.phase == phase } }

    /// A one-line summary of what a step does: `check http`, `flag image-resize -> off`.
    public static func summary(of action: Action, render: (Template) -> String = { $0.source }) -> String {
        switch action.spec {
        case .check(let check):
            let target: String
            switch check {
            case .http(let h): target = render(h.url)
            case .tcp(let t): target = render(t.host)
            case .prometheus(let p): target = render(p.url)
            case .metricTrend(let m): target = render(m.url)
            case .process(let p):
                switch p.target {
                case .pidfile(let f): target = render(f)
                case .name(let n): target = render(n)
                case .pid: target = ""
                }
            case .host: target = ""
            case .command(let c): target = argvText(c, render: render)
            }
            return "check \(check.kind)\(target.isEmpty ? "" : " \(target)")"
        case .flag(let f):
            let to: String
            switch f.setting {
            case .variant(let v)?: to = render(v)
            case .state(let s)?: to = s
            case nil: to = "?"
            }
            if case .http(let h) = f.provider { return "flag via \(render(h.url))" }
            return "flag \(f.key.map(render) ?? "?") -> \(to)"
        case .restart(let r):
            switch r.provider {
            case .systemd(let unit): return "restart systemd \(render(unit))"
            case .supervisor(let program, _, _): return "restart supervisor \(render(program))"
            case .kubernetes(let target, _): return "restart kubernetes \(render(target))"
            case .command(let c): return "restart \(argvText(c, render: render))"
            }
        case .command(let c): return "\(action.readOnly ? "read-only " : "")command \(argvText(c, render: render))"
        case .notify(let n): return "notify \(render(n.url))"
        case .wait(let seconds): return "wait \(Quantity.formatDuration(seconds))"
        }
    }

    static func argvText(_ c: CommandSpec, render: (Template) -> String = { $0.source }) -> String {
        c.argv.map(render).joined(separator: " ")
    }

    /// A template with the params' defaults filled in (SPEC §6.3); other references stay as written.
    func render(_ t: Template) -> String {
        t.render { ref in
            if case .param(let p) = ref, let d = runbook.param(p)?.defaultValue { return d }
            return .string("{{ \(ref) }}")
        }
    }

    /// The graph for people: phases, steps, needs and conditions.
    public func text() -> String {
        var out = "\(runbook.name): \(runbook.title) [\(runbook.severity)]\n"
        out += "detect: \(runbook.detect.rawValue) (\(runbook.detect == .any ? "one passing detect step confirms the incident" : "every detect step must pass"))\n"
        if runbook.guards.askBeforeChanges { out += "auto: ask (alert runs wait for approval before their first change)\n" }
        if !runbook.abortIf.isEmpty { out += "abort if: \(runbook.abortIf.map(\.id).joined(separator: ", "))\n" }
        out += runbook.targets.map(Self.describe).joined()
        for phase in Phase.allCases {
            let steps = self.steps(in: phase)
            guard !steps.isEmpty else { continue }
            out += "\n\(phase.rawValue)\n"
            for s in steps {
                var line = "  \(s.id): \(s.action.isChange ? ChangeText.describe(s.action, render: render) : Self.summary(of: s.action, render: render))"
                if !s.needs.isEmpty { line += "  needs \(s.needs.joined(separator: ", "))" }
                if let w = s.when { line += "  when \(w)" }
                if s.confirm { line += "  [confirm]" }
                if let g = s.gate {
                    line += "  [approval: \(g.approvals) within \(Quantity.formatDuration(g.timeout)), then \(g.onTimeout.rawValue)]"
                }
                if s.retry.attempts > 1 { line += "  [retry x\(s.retry.attempts)]" }
                if let a = s.across { line += "  [across \(Self.describe(a))]" }
                out += line + "\n"
            }
        }
        return out
    }

    /// Mermaid flowchart: one subgraph per phase, edges for needs and phase order.
    public func mermaid() -> String {
        var out = "flowchart TD\n"
        var previousPhase: Phase?
        for phase in Phase.allCases {
            let steps = self.steps(in: phase)
            guard !steps.isEmpty else { continue }
            out += "  subgraph \(phase.rawValue)[\"\(phase.rawValue)\"]\n"
            for s in steps {
                out += "    \(Self.nodeID(s.id))[\"\(Self.escape(s.id))<br/>\(Self.escape(Self.summary(of: s.action)))\"]\n"
            }
            out += "  end\n"
            if let p = previousPhase { out += "  \(p.rawValue) --> \(phase.rawValue)\n" }
            previousPhase = phase
        }
        for s in runbook.steps {
            for n in s.needs {
                out += "  \(Self.nodeID(n)) --> \(Self.nodeID(s.id))\n"
            }
            if let w = s.when {
                out += "  \(Self.nodeID(s.id)) -.- when_\(Self.nodeID(s.id)){{\"when \(Self.escape(w.description))\"}}\n"
            }
        }
        return out
    }

    /// Graphviz dot: clusters per phase, needs as edges.
    public func dot() -> String {
        var out = "digraph \"\(runbook.name)\" {\n  rankdir=TB;\n  node [shape=box];\n"
        for phase in Phase.allCases {
            let steps = self.steps(in: phase)
            guard !steps.isEmpty else { continue }
            out += "  subgraph cluster_\(phase.rawValue) {\n    label=\"\(phase.rawValue)\";\n"
            for s in steps {
                let label = "\(s.id)\\n\(Self.summary(of: s.action))".replacingOccurrences(of: "\"", with: "\\\"")
                out += "    \"\(s.id)\" [label=\"\(label)\"];\n"
            }
            out += "  }\n"
        }
        for s in runbook.steps {
            for n in s.needs { out += "  \"\(n)\" -> \"\(s.id)\";\n" }
            if let w = s.when { out += "  \"\(s.id)\" [xlabel=\"when \(w.description.replacingOccurrences(of: "\"", with: "\\\""))\"];\n" }
        }
        // Phase order as invisible edges between first steps keeps clusters stacked.
        let firsts = Phase.allCases.compactMap { steps(in: $0).first?.id }
        for (a, b) in zip(firsts, firsts.dropFirst()) { out += "  \"\(a)\" -> \"\(b)\" [style=dashed];\n" }
        return out + "}\n"
    }

    static func nodeID(_ id: String) -> String { "s_" + id.replacingOccurrences(of: "-", with: "_") }
    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "\"", with: "#quot;").replacingOccurrences(of: "<", with: "#lt;").replacingOccurrences(of: ">", with: "#gt;")
            .replacingOccurrences(of: "{", with: "#123;").replacingOccurrences(of: "}", with: "#125;")
    }
}
