/// The runbook keys each spec type decodes. The decoder reads settings only through these enums,
/// so a misspelt key does not compile, and `ActionSpecFieldsTests` holds them equal to the grammar
/// (`RunbookGrammar`), which stays the one source of the JSON Schema and `docs/actions.md`.
public protocol SpecFields {
    associatedtype Field: RawRepresentable, CaseIterable, Sendable where Field.RawValue == String
}

extension SpecFields {
    /// Every key the type takes, in declaration order.
    public static var fieldNames: [String] { Field.allCases.map(\.rawValue) }
}

extension HTTPCheckSpec: SpecFields {
    public enum Field: String, CaseIterable, Sendable {
        case url, method, headers, body, status, contains, json
        case maxLatency = "max_latency"
    }
}

extension TCPCheckSpec: SpecFields {
    public enum Field: String, CaseIterable, Sendable {
        case host, port
        case maxLatency = "max_latency"
    }
}

extension PrometheusCheckSpec: SpecFields {
    public enum Field: String, CaseIterable, Sendable { case url, query, above, below }
}

extension MetricTrendSpec: SpecFields {
    public enum Field: String, CaseIterable, Sendable {
        case url, metric, labels, query, window, every
        case minSlope = "min_slope", maxSlope = "max_slope", minR2 = "min_r2"
    }
}

extension ProcessCheckSpec: SpecFields {
    public enum Field: String, CaseIterable, Sendable {
        case pid, pidfile, name, running
        case maxRSS = "max_rss", maxCPU = "max_cpu"
    }
}

extension HostCheckSpec: SpecFields {
    public enum Field: String, CaseIterable, Sendable { case disk, memory, load }

    /// The keys of `memory:`.
    public enum MemoryField: String, CaseIterable, Sendable {
        case maxUsed = "max_used", minUsed = "min_used"
    }

    /// The keys of `load:`.
    public enum LoadField: String, CaseIterable, Sendable { case max, min }

    public static var memoryFieldNames: [String] { MemoryField.allCases.map(\.rawValue) }
    public static var loadFieldNames: [String] { LoadField.allCases.map(\.rawValue) }
}

extension HostCheckSpec.Disk: SpecFields {
    public enum Field: String, CaseIterable, Sendable {
        case path
        case maxUsed = "max_used", minUsed = "min_used"
    }
}

extension CommandSpec: SpecFields {
    public enum Field: String, CaseIterable, Sendable {
        case argv, env, cwd, exit
        case stdoutContains = "stdout_contains", readOnly = "read_only"
    }
}

extension FlagSpec: SpecFields {
    public enum Field: String, CaseIterable, Sendable { case file, key, variant, state, http }
}

extension FlagHTTPSpec: SpecFields {
    public enum Field: String, CaseIterable, Sendable { case url, method, body, headers }
}

extension RestartSpec: SpecFields {
    public enum Field: String, CaseIterable, Sendable {
        case command, pidfile, systemd, supervisor, config, server, kubernetes, namespace, ready
    }
}

extension NotifySpec: SpecFields {
    public enum Field: String, CaseIterable, Sendable { case url, text, headers }
}

extension Step: SpecFields {
    /// The keys of a step mapping other than its action (`check`, `command`, ...), which
    /// `ActionDecoder` reads; `ActionSpecFieldsTests` holds them equal to `RunbookGrammar.step`.
    public enum Field: String, CaseIterable, Sendable {
        case id, phase, description, finding, needs, when, timeout, retry, confirm, undo, across
        case rulesOut = "rules_out"
        case continueOnFailure = "continue_on_failure"
        case readOnly = "read_only"
    }
}

extension RetryPolicy: SpecFields {
    public enum Field: String, CaseIterable, Sendable {
        case attempts, delay, backoff, jitter
        case maxDelay = "max_delay"
    }
}
