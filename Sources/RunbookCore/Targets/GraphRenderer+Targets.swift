import Foundation

/// `runbook show` prints the target sets and each `across:` step's rate control.
extension GraphRenderer {
    /// `targets web: inventory /etc/inv.ini group web (user deploy, max 50)`.
    static func describe(_ set: TargetSet) -> String {
        var line = "targets \(set.name): "
        switch set.source {
        case .hosts(let list): line += list.map(\.source).joined(separator: ", ")
        case .inventory(let path, let group): line += "inventory \(path)\(group.map { " group \($0)" } ?? "")"
        case .prometheus(let p): line += "label \(p.label) of \(p.query) at \(p.url)"
        }
        var extras: [String] = []
        if let w = set.within { extras.append("within \(w)") }
        if let u = set.user { extras.append("user \(u)") }
        if let m = set.max { extras.append("max \(m)") }
        return line + (extras.isEmpty ? "" : " (\(extras.joined(separator: ", ")))") + "\n"
    }

    /// `web, concurrency 10%, max_errors 1, ramp, canary 1 then shop-healthy`.
    static func describe(_ a: AcrossSpec) -> String {
        var parts = [a.targets, "concurrency \(a.concurrency)", "max_errors \(a.maxErrors)"]
        if a.ramp { parts.append("ramp") }
        if a.pause > 0 { parts.append("pause \(Quantity.formatDuration(a.pause))") }
        if let c = a.canary { parts.append("canary \(c.hosts)\(c.verify.map { " then \($0)" } ?? "")") }
        return parts.joined(separator: ", ")
    }
}
