/// `check: { http: ... }`: one request, judged on status, body, JSON paths and latency.
public struct HTTPCheckSpec: Sendable, Hashable {
    public var url: Template
    /// `GET` unless set.
    public var method: String = "GET"
    public var headers: [NamedTemplate] = []
    public var body: Template?
    /// Expected codes; nil means any 2xx or 3xx.
    public var status: [Int]?
    public var contains: Template?
    /// Dotted path in the JSON body to the value expected there, in file order.
    public var json: [JSONExpectation] = []
    /// Seconds.
    public var maxLatency: Double?

    public init(url: Template) { self.url = url }

    /// One `json:` entry.
    public struct JSONExpectation: Sendable, Hashable {
        public var path: String
        public var value: Value
    }
}

/// `check: { tcp: ... }`: connect, measure, close.
public struct TCPCheckSpec: Sendable, Hashable {
    public var host: Template
    /// 1-65535; a templated port is checked after rendering.
    public var port: NumberOrTemplate
    /// Seconds.
    public var maxLatency: Double?
}

/// `check: { prometheus: ... }`: an instant query, compared with `above` / `below`.
public struct PrometheusCheckSpec: Sendable, Hashable {
    public var url: Template
    public var query: Template
    public var above: Double?
    public var below: Double?
}

/// `check: { metric_trend: ... }`: samples a metric over a window and fits a slope.
public struct MetricTrendSpec: Sendable, Hashable {
    public var url: Template
    public var metric: Template?
    public var labels: [NamedTemplate] = []
    public var query: Template?
    /// Seconds to sample; more than 0.
    public var window: Double
    /// Seconds between samples; more than 0.
    public var every: Double
    /// Units per second; never 0.
    public var minSlope: Double?
    /// Units per second.
    public var maxSlope: Double?
    /// 0 to 1.
    public var minR2: Double = 0.6
}

/// `check: { process: ... }`: a process from /proc.
public struct ProcessCheckSpec: Sendable, Hashable {
    /// How the process is found: exactly one of `pid`, `pidfile`, `name`.
    public enum Target: Sendable, Hashable {
        case pid(NumberOrTemplate)
        case pidfile(Template)
        case name(Template)
    }

    public var target: Target
    /// Expected to be running (default true).
    public var running: Bool = true
    /// Bytes; more than 0.
    public var maxRSS: Double?
    /// Percent, 0 to 100.
    public var maxCPU: Double?
}

/// `check: { host: ... }`: disk, memory and load against limits.
public struct HostCheckSpec: Sendable, Hashable {
    /// A measured value's bounds: passes at or below `max`, at or above `min`.
    public struct Limits: Sendable, Hashable {
        public var max: Double?
        public var min: Double?
    }

    /// Disk use of the filesystem holding `path`, in percent.
    public struct Disk: Sendable, Hashable {
        public var path: Template
        public var used: Limits
    }

    public var disk: Disk?
    /// Memory use in percent.
    public var memory: Limits?
    /// The 1-minute load average.
    public var load: Limits?
}
