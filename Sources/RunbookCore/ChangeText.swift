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
    public static func restartName(_ r: RestartSpec, render: (Template) -> String) -> String {
        switch r.provider {
        case .systemd(let t), .supervisor(let t, _, _), .kubernetes(let t, _): return render(t)
        case .command(let c):
            if let p = r.pidfile {
                return ((render(p) as NSString).lastPathComponent as NSString).deletingPathExtension
            }
            return argv(c.argv.map(render))
        }
    }

    /// The change `action` would make, before it runs. `flags` gives the current flag values where
    /// they are known (a drill's `state:`); an unknown one shows as `?`.
    public static func planned(_ action: Action, render: (Template) -> String, flags: [String: String] = [:]) -> AppliedChange? {
        switch action.spec {
        case .flag(let f):
            let key = f.key.map(render) ?? "?"
            let to: String
            switch f.setting {
            case .variant(let v)?: to = render(v)
            case .state(let s)?: to = s
            case nil: to = "?"
            }
            let byState = f.setting?.field != "defaultVariant"
            let what = byState ? "flag \(key) state" : "flag \(key)"
            switch f.provider {
            case .file(let file):
                let path = render(file)
                return AppliedChange(what: what, from: flags[key] ?? "?", to: to, location: path,
                                     automaticUndo: .flagFile(path: path, key: key, field: byState ? "state" : "defaultVariant",
                                                              previous: flags[key].map { JSONText.string($0) } ?? "?"),
                                     simulated: true)
            case .http(let h):
                return AppliedChange(what: what, from: flags[key] ?? "?", to: to, location: render(h.url), simulated: true)
            }
        case .restart(let r):
            return AppliedChange(what: "restart \(restartName(r, render: render))", from: "", to: "", simulated: true)
        case .command(let c):
            guard !action.readOnly else { return nil }
            return AppliedChange(what: "command " + argv(c.argv.map(render)), from: "", to: "", simulated: true)
        case .notify(let n):
            return AppliedChange(what: "notify \(render(n.url))", from: "", to: "", simulated: true)
        case .check, .wait:
            return nil
        }
    }

    /// What a step will do, for a confirmation prompt: the change text and, where it runs a program,
    /// the exact argv (`restart shop: runs examples/leaky-shop/restart.sh shop`).
    public static func exact(_ action: Action, render: (Template) -> String) -> String {
        let text = describe(action, render: render)
        switch action.spec {
        case .restart(let r):
            switch r.provider {
            case .systemd(let unit): return text + ": runs systemctl restart \(render(unit))"
            case .supervisor(let p, _, _): return text + ": runs supervisorctl restart \(render(p))"
            case .kubernetes(let d, _): return text + ": runs kubectl rollout restart \(render(d))"
            case .command(let c):
                let argv = ChangeText.argv(c.argv.map(render))
                return text == "restart " + argv ? text : text + ": runs " + argv
            }
        case .flag(let f):
            if case .http(let h) = f.provider { return text + ": \(h.method) \(render(h.url))" }
            return text
        default:
            return text
        }
    }

    /// What a step will do, for a prompt or `show`: its change text, or a rendered summary.
    public static func describe(_ action: Action, render: (Template) -> String) -> String {
        planned(action, render: render)?.summary ?? GraphRenderer.summary(of: action)
    }
}
