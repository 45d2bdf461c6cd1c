import Foundation
import RunbookCore
import RunbookRuntime

/// The runbooks as the console shows them: triggers, guards, params and steps, each with its graph.
enum RunbookJSON {
    static func list(_ runbooks: [Runbook]) -> String {
        "[" + runbooks.map(one).joined(separator: ",") + "]"
    }

    static func one(_ rb: Runbook) -> String {
        let s = JSONText.string
        let params = rb.params.map { p in
            "{\"name\":\(s(p.name)),\"required\":\(p.required),\"secret\":\(p.secret),\"default\":\(p.defaultValue.map { s(p.secret ? "***" : $0.description) } ?? "null"),\"pattern\":\(p.pattern.map(s) ?? "null"),\"description\":\(s(p.description))}"
        }
        let triggers = rb.triggers.map { t in
            s(t.matchers.map { "\($0.label)\($0.op.rawValue)\($0.value)" }.joined(separator: ", "))
        }
        var guards: [String] = []
        let g = rb.guards
        guards.append(g.askBeforeChanges ? "auto: ask (alert runs wait for approval before changes)" : g.auto ? "auto: alert runs start on their own" : "auto: false (alerts do not start it)")
        if let c = g.cooldown { guards.append("cooldown \(Quantity.formatDuration(c))") }
        if let m = g.maxRuns { guards.append("at most \(m.count) runs per \(Quantity.formatDuration(m.per))") }
        if let l = g.lock { guards.append("lock \(l)") }
        if let a = g.maxActive { guards.append("at most \(a) active") }
        let steps = rb.steps.map { st in
            "{\"id\":\(s(st.id)),\"phase\":\"\(st.phase.rawValue)\",\"needs\":[\(st.needs.map(s).joined(separator: ","))],\"when\":\(st.when.map { s($0.description) } ?? "null"),\"confirm\":\(st.confirm),\"change\":\(st.action.isChange),\"gate\":\(st.gate.map { "{\"approvals\":\($0.approvals),\"timeout_s\":\(Int($0.timeout))}" } ?? "null"),\"summary\":\(s(GraphRenderer.summary(of: st.action)))}"
        }
        return "{\"name\":\(s(rb.name)),\"title\":\(s(rb.title)),\"description\":\(s(rb.description)),\"severity\":\(s(rb.severity)),\"owner\":\(s(rb.owner)),"
            + "\"params\":[\(params.joined(separator: ","))],\"triggers\":[\(triggers.joined(separator: ","))],\"guards\":[\(guards.map(s).joined(separator: ","))],"
            + "\"steps\":[\(steps.joined(separator: ","))],\"graph_svg\":\(s(StepGraphSVG.render(rb)))}"
    }
}

/// The step graph as SVG, from the runbook's one `StepGraph`: a column per phase, a box per step
/// (`data-step` names it, so the page can mark what ran and which `when` branch was taken), an
/// arrow per need and between phases.
enum StepGraphSVG {
    static let boxW = 170, boxH = 44, gapX = 50, gapY = 16, top = 28

    static func render(_ rb: Runbook) -> String {
        var pos: [String: (x: Int, y: Int)] = [:]
        var nodes = "", labels = ""
        var column = 0, tallest = 0
        for phase in Phase.allCases {
            let steps = rb.steps.filter { $0.phase == phase }
            guard !steps.isEmpty else { continue }
            let x = 10 + column * (boxW + gapX)
            labels += "<text class=\"phase\" x=\"\(x)\" y=\"16\">\(xml(phase.rawValue))</text>"
            for (row, st) in steps.enumerated() {
                let y = top + row * (boxH + gapY)
                pos[st.id] = (x, y)
                let title = st.id + (st.when.map { " — when \($0.description)" } ?? "") + (st.confirm ? " — confirm" : "") + (st.gate != nil ? " — approval gate" : "")
                nodes += "<g class=\"step\" data-step=\"\(xml(st.id))\"><title>\(xml(title))</title>"
                    + "<rect x=\"\(x)\" y=\"\(y)\" width=\"\(boxW)\" height=\"\(boxH)\" rx=\"6\"/>"
                    + "<text x=\"\(x + 8)\" y=\"\(y + 18)\">\(xml(clip(st.id, 22)))</text>"
                    + "<text class=\"sub\" x=\"\(x + 8)\" y=\"\(y + 34)\">\(xml(clip(st.when.map { "when \($0.description)" } ?? GraphRenderer.summary(of: st.action), 26)))</text></g>"
                tallest = max(tallest, y + boxH)
            }
            column += 1
        }
        var edges = ""
        for st in rb.steps {
            guard let to = pos[st.id] else { continue }
            for n in rb.graph.needs[st.id] ?? st.needs {
                guard let from = pos[n] else { continue }
                if from.x == to.x {
                    // Within a phase: down from the step needed (boxes in between are stepped round on the left).
                    let mid = from.x - (to.y - from.y > boxH + gapY ? 10 : -boxW / 2)
                    edges += "<path class=\"need\" d=\"M\(from.x + boxW / 2) \(from.y + boxH) C\(mid) \(from.y + boxH + gapY) \(mid) \(to.y - gapY) \(to.x + boxW / 2) \(to.y)\" marker-end=\"url(#arrow)\"/>"
                } else {
                    edges += "<path class=\"need\" d=\"M\(from.x + boxW) \(from.y + boxH / 2) L\(to.x) \(to.y + boxH / 2)\" marker-end=\"url(#arrow)\"/>"
                }
            }
        }
        let width = max(200, 10 + column * (boxW + gapX))
        return "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"graph\" role=\"img\" aria-label=\"step graph of \(xml(rb.name))\" viewBox=\"0 0 \(width) \(tallest + 10)\" width=\"\(width)\" height=\"\(tallest + 10)\">"
            + "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0 0 L10 5 L0 10 z\"/></marker></defs>"
            + labels + edges + nodes + "</svg>"
    }

    static func clip(_ s: String, _ n: Int) -> String { s.count > n ? String(s.prefix(n - 1)) + "…" : s }

    /// Text safe inside XML content and attribute values.
    static func xml(_ s: String) -> String {
        var out = ""
        for ch in Escape.text(s) {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(ch)
            }
        }
        return out
    }
}
