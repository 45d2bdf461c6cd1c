/// What a step does, decoded from its settings and range-checked once, when the runbook loads.
///
/// Executors, renderers and the state machine read these fields; nothing reads a setting by its
/// key after the decoder (`ActionDecoder`). Fields that may hold `{{ }}` stay `Template` and are
/// checked after rendering, when the step runs.
public enum ActionSpec: Sendable, Hashable {
    /// A read-only check.
    case check(CheckSpec)
    /// Set a feature flag.
    case flag(FlagSpec)
    /// Restart a service and wait until it is ready.
    case restart(RestartSpec)
    /// Run a program (a change unless `read_only`).
    case command(CommandSpec)
    /// POST a message to a webhook.
    case notify(NotifySpec)
    /// Wait this many seconds.
    case wait(seconds: Double)

    /// The step key that holds this action.
    public var kind: Action.Kind {
        switch self {
        case .check: .check
        case .flag: .flag
        case .restart: .restart
        case .command: .command
        case .notify: .notify
        case .wait: .wait
        }
    }

    /// Whether carrying it out may start a process that outlives its owner (a command, a restart,
    /// anything not known to run in-process). Waits and network checks never do.
    public var mayStartProcesses: Bool {
        switch self {
        case .wait: false
        case .check(.http), .check(.tcp), .check(.prometheus), .check(.metricTrend): false
        default: true
        }
    }
}

/// One check, by kind.
public enum CheckSpec: Sendable, Hashable {
    /// An HTTP request.
    case http(HTTPCheckSpec)
    /// A TCP connect.
    case tcp(TCPCheckSpec)
    /// A Prometheus instant query.
    case prometheus(PrometheusCheckSpec)
    /// A metric's slope over a window.
    case metricTrend(MetricTrendSpec)
    /// A process from /proc.
    case process(ProcessCheckSpec)
    /// Host disk, memory and load.
    case host(HostCheckSpec)
    /// A command judged on its exit status and output.
    case command(CommandSpec)

    /// The key under `check:` (`http`, `metric_trend`, ...), as in `RunbookGrammar.checkKinds`.
    public var kind: String {
        switch self {
        case .http: "http"
        case .tcp: "tcp"
        case .prometheus: "prometheus"
        case .metricTrend: "metric_trend"
        case .process: "process"
        case .host: "host"
        case .command: "command"
        }
    }
}

/// A header or an environment variable: a name and a template for its value.
public struct NamedTemplate: Sendable, Hashable {
    public var name: String
    public var value: Template

    public init(name: String, value: Template) {
        self.name = name
        self.value = value
    }
}

/// A setting that is either a literal number, checked at load, or a template, checked after rendering.
public enum NumberOrTemplate: Sendable, Hashable {
    /// Written as a number: range-checked at load.
    case literal(Int)
    /// Written with `{{ }}`: checked once rendered.
    case template(Template)

    /// The value as text after rendering.
    public func render(_ render: (Template) -> String) -> String {
        switch self {
        case .literal(let n): String(n)
        case .template(let t): render(t)
        }
    }

    /// The text as written in the runbook.
    public var source: String {
        switch self {
        case .literal(let n): String(n)
        case .template(let t): t.source
        }
    }
}
