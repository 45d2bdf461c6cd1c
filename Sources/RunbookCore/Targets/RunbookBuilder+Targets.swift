import Foundation

/// Loading `targets:` and `across:`, and the checks that tie them together (issue 22).
extension RunbookBuilder {
    /// The runbook file's folder: relative inventory paths start there.
    var folder: String {
        let dir = (PathParam.canonical(file) as NSString).deletingLastPathComponent
        return dir.isEmpty ? "/" : dir
    }

    func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : PathParam.canonical(folder + "/" + path)
    }

    /// `targets: { NAME: { hosts | inventory, group, within, user, max } }`.
    mutating func buildTargets(_ node: YAMLNode?, _ tree: Config?, params: [ParamSpec]) -> [TargetSet] {
        let paramNames = params.map(\.name)
        guard let entries = node?.entries else { return [] }
        var out: [TargetSet] = []
        for e in entries {
            guard let config = tree?[e.key], e.value.entries != nil else { continue }
            let r = FieldReader<TargetSet.Field>(node: e.value, config: config, context: "targets.\(e.key)")
            if !Self.isIdentifier(e.key) {
                error(e.keyNode.location, "target set name '\(e.key)' must be lower-case letters, digits and '-' ([a-z0-9-]+)")
            }
            let source: TargetSet.Source
            if let list = r.value(.hosts)?.list {
                let hosts = list.compactMap(\.template)
                if hosts.isEmpty { error(r.location(.hosts), "targets.\(e.key).hosts is empty: an empty target list is an error, never \"all hosts\"") }
                for (i, t) in hosts.enumerated() where t.isLiteral {
                    if let why = HostName.problem(t.source) {
                        error(e.value["hosts"]?.items?[i].location ?? r.location(.hosts), "targets.\(e.key).hosts: \(why)")
                    }
                }
                for t in hosts {
                    for ref in t.references {
                        switch ref {
                        case .param(let p) where paramNames.contains(p): break
                        case .param(let p): error(r.location(.hosts), "unknown param '\(p)' in targets.\(e.key).hosts\(Suggest.hint(for: p, among: paramNames))")
                        case .alertLabel, .alertAnnotation: break
                        default: error(r.location(.hosts), "'\(ref)' cannot be used in targets.\(e.key).hosts: only params.NAME, alert.labels.NAME and alert.annotations.NAME")
                        }
                    }
                }
                source = .hosts(hosts)
            } else if let inv = r.template(.inventory) {
                if !inv.isLiteral { error(r.location(.inventory), "targets.\(e.key).inventory must be a file name, not a template") }
                let path = absolute(inv.source)
                checkInventory(path, r.location(.inventory), "targets.\(e.key).inventory", group: r.template(.group)?.source)
                source = .inventory(path: path, group: r.template(.group)?.source)
            } else if let q = r.child(.prometheus, PrometheusTargets.Field.self) {
                guard let query = buildPrometheusTargets(q) else { continue }
                source = .prometheus(query)
            } else {
                continue
            }
            var set = TargetSet(name: e.key, source: source, location: e.keyNode.location)
            if r.has(.group), !(r.has(.inventory)) { error(r.location(.group), "targets.\(e.key).group goes with inventory:, not \(r.has(.hosts) ? "hosts" : "prometheus"):") }
            if let w = r.template(.within) {
                set.within = absolute(w.source)
                checkInventory(set.within!, r.location(.within), "targets.\(e.key).within", group: nil)
            } else if set.isTemplated {
                let from = r.has(.prometheus) ? "a Prometheus query" : "a template"
                error(r.location(r.has(.prometheus) ? .prometheus : .hosts), "targets.\(e.key) takes hosts from \(from): add within: INVENTORY, so that an alert, a caller or a query cannot point the engine at a machine nobody listed")
            }
            set.user = r.template(.user)?.source
            if let m = r.number(.max) {
                set.max = Int(m)
                if m < 1 { error(r.location(.max), "targets.\(e.key).max must be at least 1") }
            }
            out.append(set)
        }
        return out
    }

    /// `prometheus: { url, query, label }`: literal texts (nothing from an alert reaches the query),
    /// a URL that parses, a label name Prometheus accepts.
    mutating func buildPrometheusTargets(_ r: FieldReader<PrometheusTargets.Field>) -> PrometheusTargets? {
        guard let url = r.template(.url), let query = r.template(.query), let label = r.template(.label) else { return nil }
        for (key, t) in [(PrometheusTargets.Field.url, url), (.query, query), (.label, label)] where !t.isLiteral {
            error(r.location(key), "\(r.name(key)) must be plain text, not a template: hosts from a query are asked once, before the run")
        }
        if let problem = ActionDecoder.urlProblem(url.source) {
            error(r.location(.url), "\(r.name(.url)) '\(url.source)' \(problem) (write it like http://prometheus:9090)")
        }
        let l = label.source.unicodeScalars
        let isName = !l.isEmpty && l.allSatisfy { $0 == "_" || ($0.isASCII && CharacterSet.alphanumerics.contains($0)) } && !CharacterSet.decimalDigits.contains(l.first!)
        if !isName { error(r.location(.label), "\(r.name(.label)) '\(Escape.text(label.source))' is not a label name (letters, digits and _, not starting with a digit)") }
        return PrometheusTargets(url: url.source, query: query.source, label: label.source)
    }

    /// The inventory exists and parses now, so `validate` reports a typo at its line.
    mutating func checkInventory(_ path: String, _ at: SourceLocation, _ name: String, group: String?) {
        do {
            let inv = try Inventory.load(path: path)
            if let group, inv.hosts(group: group) == nil {
                error(at, "\(name): \(path) has no group '\(group)'\(Suggest.hint(for: group, among: Array(inv.groups.keys))); its groups: \(inv.groups.keys.sorted().joined(separator: ", "))")
            }
        } catch {
            self.error(at, "\(name): \(error)")
        }
    }

    /// A step's `across:`.
    mutating func buildAcross(_ node: YAMLNode, _ config: Config, context: String) -> AcrossSpec? {
        let r = FieldReader<AcrossSpec.Field>(node: node, config: config, context: "\(context) across")
        guard let targets = r.template(.targets)?.source else { return nil }
        var s = AcrossSpec(targets: targets, location: node.location)
        for key in [AcrossSpec.Field.concurrency, .maxErrors] {
            guard let text = r.value(key)?.template?.source else { continue }
            guard let amount = HostAmount.parse(text) else {
                error(r.location(key), "\(r.name(key)) '\(text)' is not a count or a share: write a number like 5 or a percentage like 10%")
                continue
            }
            switch amount {
            case .count(let n) where key == .concurrency && n < 1: error(r.location(key), "\(r.name(key)) must be at least 1")
            case .count(let n) where n < 0: error(r.location(key), "\(r.name(key)) must be 0 or more")
            case .percent(let p) where p <= 0 && key == .concurrency || p < 0 || p > 100:
                error(r.location(key), "\(r.name(key)) \(amount) must be a share from \(key == .concurrency ? "above 0" : "0") to 100%")
            default: break
            }
            if key == .concurrency { s.concurrency = amount } else { s.maxErrors = amount }
        }
        s.ramp = r.bool(.ramp) ?? false
        if let p = r.number(.pause) { s.pause = p }
        if let c = r.child(.canary, AcrossSpec.Canary.Field.self) {
            var canary = AcrossSpec.Canary()
            if let n = c.number(.hosts) {
                canary.hosts = Int(n)
                if n < 1 { error(c.location(.hosts), "\(c.name(.hosts)) must be at least 1") }
            }
            canary.verify = c.template(.verify)?.source
            s.canary = canary
        }
        return s
    }

    /// Cross-checks: `across.targets` names a set, `canary.verify` a check step; only commands,
    /// command-like restarts and checks act on hosts; `target.host` only where there is a host.
    mutating func checkFleet(_ runbook: Runbook) {
        let names = runbook.targets.map(\.name)
        for step in runbook.steps {
            guard let across = step.across else { continue }
            if !names.contains(across.targets) {
                error(across.location, "step '\(step.id)' across: no target set '\(across.targets)'\(Suggest.hint(for: across.targets, among: names)); declare it under targets:")
            }
            switch step.action.spec {
            case .command, .check: break
            case .restart(let r):
                if case .kubernetes = r.provider { error(step.location, "step '\(step.id)': a kubernetes restart does not run on hosts; drop across:") }
            default:
                error(step.location, "step '\(step.id)' across: runs commands, checks and restarts on hosts, not \(step.action.kind.rawValue)")
            }
            if let v = across.canary?.verify {
                if let target = runbook.step(v) {
                    if target.action.kind != .check { error(across.location, "step '\(step.id)' canary.verify '\(v)' is a \(target.action.kind.rawValue) step: name a check step") }
                } else {
                    error(across.location, "step '\(step.id)' canary.verify: no step '\(v)'\(Suggest.hint(for: v, among: runbook.steps.map(\.id)))")
                }
            }
        }
    }
}

/// What a host name may look like: what ssh takes as a destination, and nothing that it would
/// read as an option or that a shell would read as syntax.
public enum HostName {
    /// Why `name` cannot be a host, or nil when it can.
    public static func problem(_ name: String) -> String? {
        if name.isEmpty { return "an empty host name" }
        if name.hasPrefix("-") { return "host '\(Escape.text(name))' starts with '-' (ssh would read it as an option)" }
        if name.utf8.count > 253 { return "host name longer than 253 bytes" }
        let ok = name.unicodeScalars.allSatisfy { u in
            (u >= "a" && u <= "z") || (u >= "A" && u <= "Z") || (u >= "0" && u <= "9") || ".-_:[]%".unicodeScalars.contains(u)
        }
        return ok ? nil : "host '\(Escape.text(name))' holds characters a host name cannot (letters, digits and . - _ : [ ] % only)"
    }
}
