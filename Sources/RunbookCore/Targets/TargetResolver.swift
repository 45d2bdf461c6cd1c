import Foundation

/// Resolves a runbook's target sets into host lists before any step runs (issue 22, decision 3):
/// an empty set, a host outside `within`, a malformed name or a set over its `max` refuses the run
/// like a bad param.
public enum TargetResolver {
    /// Every target set a step uses, resolved.
    /// - Parameters:
    ///   - params: the run's checked params.
    ///   - alert: the labels and annotations of the alert that started the run, if one did.
    ///   - maxTargets: `serve --max-targets`: most hosts any one set may resolve to.
    ///   - prometheus: asks a Prometheus server for a `prometheus:` set's hosts (nil: such a set refuses the run).
    /// - Throws: `TargetError` naming the set and why.
    public static func resolve(_ runbook: Runbook, params: [String: Value], alert: AlertValues = AlertValues(),
                               maxTargets: Int? = nil, prometheus: (any PrometheusHostLookup)? = nil) throws(TargetError) -> [String: [String]] {
        var out: [String: [String]] = [:]
        let used = Set(runbook.steps.compactMap(\.across?.targets))
        for set in runbook.targets where used.contains(set.name) {
            out[set.name] = try resolve(set, params: params, alert: alert, maxTargets: maxTargets, prometheus: prometheus)
        }
        return out
    }

    /// One set's hosts, in order, without repeats.
    public static func resolve(_ set: TargetSet, params: [String: Value], alert: AlertValues, maxTargets: Int?,
                               prometheus: (any PrometheusHostLookup)? = nil) throws(TargetError) -> [String] {
        func fail(_ why: String) -> TargetError { TargetError(target: set.name, message: why) }
        var hosts: [String] = []
        switch set.source {
        case .hosts(let templates):
            for t in templates {
                let host = t.render { ref in
                    switch ref {
                    case .param(let p): params[p] ?? .null
                    case .alertLabel(let l): alert.labels[l].map(Value.string) ?? .null
                    case .alertAnnotation(let a): alert.annotations[a].map(Value.string) ?? .null
                    default: .null
                    }
                }
                if let why = HostName.problem(host) {
                    throw fail("\(t.isLiteral ? "" : "\(t.source) gave ")\(why)")
                }
                hosts.append(host)
            }
        case .inventory(let path, let group):
            let inventory: Inventory
            do { inventory = try Inventory.load(path: path) } catch { throw fail("\(error)") }
            guard let list = inventory.hosts(group: group) else { throw fail("\(path) has no group '\(group ?? "")'") }
            for h in list { if let why = HostName.problem(h) { throw fail("\(path): \(why)") } }
            hosts = list
        case .prometheus(let query):
            guard let prometheus else { throw fail("no Prometheus client here to ask for its hosts") }
            do { hosts = try prometheus.hosts(query, within: set.within) } catch { throw fail("\(error)") }
            for h in hosts { if let why = HostName.problem(h) { throw fail("label \(query.label) of \(query.query) gave \(why)") } }
        }
        hosts = Inventory.unique(hosts)
        if hosts.isEmpty { throw fail("no hosts: an empty target list is an error, never \"all hosts\"") }
        if let within = set.within {
            let allowed: Set<String>
            do { allowed = Set(try Inventory.load(path: within).all) } catch { throw fail("within: \(error)") }
            if let outside = hosts.first(where: { !allowed.contains($0) }) {
                throw fail("host '\(outside)' is not in \(within): an alert or a caller cannot point the engine at a machine nobody listed")
            }
        }
        if let max = set.max, hosts.count > max {
            throw fail("\(hosts.count) hosts, more than its max \(max): refused (blast radius)")
        }
        if let maxTargets, hosts.count > maxTargets {
            throw fail("\(hosts.count) hosts, more than --max-targets \(maxTargets): refused (blast radius)")
        }
        return hosts
    }
}

/// The labels and annotations of the alert behind a run (empty for other runs).
public struct AlertValues: Sendable, Hashable {
    public var labels: [String: String]
    public var annotations: [String: String]

    public init(labels: [String: String] = [:], annotations: [String: String] = [:]) {
        self.labels = labels
        self.annotations = annotations
    }
}

/// A target set that cannot be resolved: the run is refused before any step runs (exit 2).
public struct TargetError: Error, Sendable, CustomStringConvertible {
    /// The set's name.
    public var target: String
    public var message: String
    public var description: String { "targets.\(target): \(message)" }
}
