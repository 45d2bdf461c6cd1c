import Foundation

/// The one text of a change (SPEC §6.3), the same in a live run, a dry run, a drill, `show`, the
/// confirmation prompt and the postmortem, with templates rendered: `flag KEY: FROM -> TO in FILE`,
/// `restart NAME` (`: pid A -> pid B` once done), `command ARGV...`, `notify URL`.
public enum ChangeText {
    /// An argv as one line: words with spaces (or nothing) quoted.
    public static func argv(_ words: [String]) -> String {
        words.map { $0.isEmpty || $0.contains(" ") ? "'\($0)'" : $0 }.joined(separator: " ")
    }

    /// The name a restart is known by: the unit, program or deployment, else the pidfile's base name, else the argv.
    public static func restartName(_ c: Config, render: (Template) -> String) -> String {
        for k in ["systemd", "supervisor", "kubernetes"] { if let t = c[k]?.template { return render(t) } }
        if let p = c["pidfile"]?.template {
            return ((render(p) as NSString).lastPathComponent as NSString).deletingPathExtension
        }
        return argv((c["command"]?["argv"]?.list ?? []).compactMap { $0.template.map(render) })
    }

    /// The change `action` would make, before it runs. `flags` gives the current flag values where
    /// they are known (a drill's `state:`); an unknown one shows as `?`.
    public static func planned(_ action: Action, render: (Template) -> String, flags: [String: String] = [:]) -> AppliedChange? {
        let c = action.config
        switch action.kind {
        case .flag:
            let key = c["key"]?.template.map(render) ?? "?"
            let byState = c["variant"] == nil
            let to = (byState ? c["state"] : c["variant"])?.template.map(render) ?? "?"
            let what = byState ? "flag \(key) state" : "flag \(key)"
            if let f = c["file"]?.template {
                let path = render(f)
                return AppliedChange(what: what, from: flags[key] ?? "?", to: to, location: path,
                                     automaticUndo: .flagFile(path: path, key: key, field: byState ? "state" : "defaultVariant",
                                                              previous: flags[key].map { JSONText.string($0) } ?? "?"),
                                     simulated: true)
            }
            return AppliedChange(what: what, from: flags[key] ?? "?", to: to, location: c["http"]?["url"]?.template.map(render), simulated: true)
        case .restart:
            return AppliedChange(what: "restart \(restartName(c, render: render))", from: "", to: "", simulated: true)
        case .command:
            guard !action.readOnly else { return nil }
            return AppliedChange(what: "command " + argv((c["argv"]?.list ?? []).compactMap { $0.template.map(render) }), from: "", to: "", simulated: true)
        case .notify:
            return AppliedChange(what: "notify \(c["url"]?.template.map(render) ?? "")", from: "", to: "", simulated: true)
        case .check, .wait:
            return nil
        }
    }

    /// What a step will do, for a confirmation prompt: the change text and, where it runs a program,
    /// the exact argv (`restart shop: runs examples/leaky-shop/restart.sh shop`).
    public static func exact(_ action: Action, render: (Template) -> String) -> String {
        let text = describe(action, render: render)
        let c = action.config
        switch action.kind {
        case .restart:
            if let unit = c["systemd"]?.template.map(render) { return text + ": runs systemctl restart \(unit)" }
            if let p = c["supervisor"]?.template.map(render) { return text + ": runs supervisorctl restart \(p)" }
            if let d = c["kubernetes"]?.template.map(render) { return text + ": runs kubectl rollout restart \(d)" }
            let argv = ChangeText.argv((c["command"]?["argv"]?.list ?? []).compactMap { $0.template.map(render) })
            return text == "restart " + argv ? text : text + ": runs " + argv
        case .flag:
            if let u = c["http"]?["url"]?.template.map(render) { return text + ": \(c["http"]?["method"]?.template.map(render) ?? "PUT") \(u)" }
            return text
        default:
            return text
        }
    }

    /// What a step will do, for a prompt or `show`: its change text, or a rendered summary.
    public static func describe(_ action: Action, render: (Template) -> String) -> String {
        planned(action, render: render)?.summary ?? StepGraph.summary(of: action)
    }
}
