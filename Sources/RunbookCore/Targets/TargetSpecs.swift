import Foundation

/// `targets.NAME`: a set of hosts a step can act on, declared once per runbook (issue 22).
///
/// Host names are the names `ssh` is given, so ssh_config `Host` aliases work. A host that comes
/// from a template (a param, an alert label) must also be listed in the `within` inventory.
public struct TargetSet: Sendable, Hashable {
    /// Where the hosts come from.
    public enum Source: Sendable, Hashable {
        /// `hosts: [...]`: names, templates allowed.
        case hosts([Template])
        /// `inventory: FILE` (absolute once loaded) and an optional Ansible `group`.
        case inventory(path: String, group: String?)
        /// `prometheus: { url, query, label }`: the label's values over the query's result vector.
        case prometheus(PrometheusTargets)
    }

    /// The key under `targets:`.
    public var name: String
    public var source: Source
    /// `within: FILE` (absolute once loaded): every resolved host must be listed there.
    public var within: String?
    /// `user:` passed to ssh as `-l USER` (else the ssh_config's).
    public var user: String?
    /// `max:` most hosts a step may act on; a larger resolved set refuses the run.
    public var max: Int?
    public var location: SourceLocation

    public init(name: String, source: Source, location: SourceLocation) {
        self.name = name
        self.source = source
        self.location = location
    }

    /// True when a host may come from outside the file (a template, a query): such sets need `within`.
    public var isTemplated: Bool {
        switch source {
        case .hosts(let list): return list.contains { !$0.isLiteral }
        case .prometheus: return true
        case .inventory: return false
        }
    }
}

/// `targets.NAME.prometheus`: hosts are the values of `label` over the instant query's result
/// vector (`up{job="shop"} == 1`, label `instance`), asked once before the run starts.
public struct PrometheusTargets: Sendable, Hashable {
    /// The Prometheus server's base URL.
    public var url: String
    /// The PromQL instant query.
    public var query: String
    /// The label whose values name the hosts.
    public var label: String

    public init(url: String, query: String, label: String) {
        self.url = url
        self.query = query
        self.label = label
    }
}

/// A count or a share of the hosts: `concurrency: 5`, `concurrency: 10%`.
public enum HostAmount: Sendable, Hashable, CustomStringConvertible {
    case count(Int)
    case percent(Double)

    /// At least `minimum` when a share rounds down (`10%` of 5 hosts is 1 at a time, not 0).
    public func of(_ hosts: Int, roundingUp: Bool, minimum: Int) -> Int {
        switch self {
        case .count(let n): return Swift.max(minimum, n)
        case .percent(let p):
            let exact = Double(hosts) * p / 100
            return Swift.max(minimum, Int(roundingUp ? exact.rounded(.up) : exact.rounded(.down)))
        }
    }

    public var description: String {
        switch self {
        case .count(let n): String(n)
        case .percent(let p): (p == p.rounded() ? String(Int(p)) : String(p)) + "%"
        }
    }

    /// Reads `5` or `10%`; nil for anything else.
    public static func parse(_ text: String) -> HostAmount? {
        let t = text.trimmingCharacters(in: .whitespaces)
        if t.hasSuffix("%") {
            guard let p = Double(t.dropLast().trimmingCharacters(in: .whitespaces)), p.isFinite else { return nil }
            return .percent(p)
        }
        guard let n = Int(t) else { return nil }
        return .count(n)
    }
}

/// A step's `across:`: the same action on every host of a target set, with rate control.
public struct AcrossSpec: Sendable, Hashable {
    /// The target set's name.
    public var targets: String
    /// Hosts at once (default 1).
    public var concurrency: HostAmount = .count(1)
    /// Failures tolerated; one more stops the step (default 0: the first failure stops it).
    public var maxErrors: HostAmount = .count(0)
    /// Batches of 1, 2, 4... up to `concurrency`.
    public var ramp = false
    /// The first hosts, then a check that must pass before the rest start.
    public var canary: Canary?
    /// Seconds between batches.
    public var pause: Double = 0
    public var location: SourceLocation

    /// `canary: { hosts, verify }`.
    public struct Canary: Sendable, Hashable {
        /// How many hosts go first (default 1).
        public var hosts: Int = 1
        /// A check step's id, run on each canary host once they are done.
        public var verify: String?

        public init(hosts: Int = 1, verify: String? = nil) {
            self.hosts = hosts
            self.verify = verify
        }
    }

    public init(targets: String, location: SourceLocation) {
        self.targets = targets
        self.location = location
    }
}

extension TargetSet: SpecFields {
    public enum Field: String, CaseIterable, Sendable { case hosts, inventory, prometheus, group, within, user, max }
}

extension PrometheusTargets: SpecFields {
    public enum Field: String, CaseIterable, Sendable { case url, query, label }
}

extension AcrossSpec: SpecFields {
    public enum Field: String, CaseIterable, Sendable {
        case targets, concurrency, ramp, canary, pause
        case maxErrors = "max_errors"
    }
}

extension AcrossSpec.Canary: SpecFields {
    public enum Field: String, CaseIterable, Sendable { case hosts, verify }
}

extension Step {
    /// How long one attempt may take as a whole. `timeout` is per host for an `across:` step, whose
    /// own limit is a backstop: every host one after another, each with its check, plus the pauses.
    public func attemptLimit(hosts: Int) -> Double {
        guard let across else { return timeout }
        let n = Double(max(1, hosts))
        return n * timeout * 2 + n * across.pause + 30
    }
}
