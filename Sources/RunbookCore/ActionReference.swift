/// One value a step reports for `when` and templates (`steps.ID.output.NAME`).
public struct OutputField: Sendable {
    public var name: String
    /// `number`, `bool` or `text`.
    public var type: String
    /// Unit of a number, when it has one (`ms`, `bytes`, `%`, `bytes/s`).
    public var unit: String?
    public var meaning: String

    init(_ name: String, _ type: String, _ unit: String? = nil, _ meaning: String) {
        self.name = name
        self.type = type
        self.unit = unit
        self.meaning = meaning
    }
}

/// Every action and check kind with its fields (from `RunbookGrammar`), its outputs and an example:
/// one table that drives validation of `steps.ID.output.NAME`, the JSON Schema's descriptions and
/// `docs/actions.md` (`runbook reference`).
public enum ActionReference {
    public struct Entry: Sendable {
        /// `check.http`, `flag`, `restart`, ...
        public var key: String
        public var title: String
        public var shape: Shape
        public var outputs: [OutputField]
        /// Outputs named by the step's own settings (`json.PATH` of an http check).
        public var dynamicPrefix: String?
        public var example: String
    }

    static let commandOutputs = [
        OutputField("exit_code", "number", nil, "the exit status"),
        OutputField("stdout", "text", nil, "standard output, trimmed, at most 1 KiB (head and tail)"),
        OutputField("duration_ms", "number", "ms", "how long it ran"),
    ]

    public static let entries: [Entry] = [
        Entry(key: "check.http", title: "HTTP request", shape: .object(RunbookGrammar.http), outputs: [
            OutputField("status", "number", nil, "the response status code"),
            OutputField("latency_ms", "number", "ms", "time to the full answer"),
        ], dynamicPrefix: "json.", example: """
            check:
              http: { url: "{{ params.base_url }}/health/db", status: 200, json: { "db.up": true }, max_latency: 500ms }
            """),
        Entry(key: "check.tcp", title: "TCP connect", shape: .object(RunbookGrammar.tcp), outputs: [
            OutputField("latency_ms", "number", "ms", "time to connect"),
        ], example: """
            check:
              tcp: { host: db.internal, port: 5432, max_latency: 200ms }
            """),
        Entry(key: "check.prometheus", title: "Prometheus instant query", shape: .object(RunbookGrammar.prometheus), outputs: [
            OutputField("value", "number", nil, "the first series' value"),
            OutputField("series", "number", nil, "how many series the query returned"),
        ], example: """
            check:
              prometheus: { url: "http://prometheus:9090", query: 'rate(http_requests_total{code=~"5.."}[5m])', above: 5 }
            """),
        Entry(key: "check.metric_trend", title: "trend of a metric over a window", shape: .object(RunbookGrammar.metricTrend), outputs: [
            OutputField("slope_bytes_per_s", "number", "metric units/s", "least-squares slope (bytes/s for a memory metric)"),
            OutputField("r2", "number", nil, "how steady the trend is, 0 to 1"),
            OutputField("samples", "number", nil, "samples taken"),
            OutputField("first", "number", nil, "first sample"),
            OutputField("last", "number", nil, "last sample"),
        ], example: """
            check:
              metric_trend: { url: "{{ params.base_url }}/metrics", metric: process_resident_memory_bytes,
                              window: 10s, every: 500ms, min_slope: 256KB/s }
            """),
        Entry(key: "check.process", title: "process from /proc", shape: .object(RunbookGrammar.process), outputs: [
            OutputField("running", "bool", nil, "whether it runs"),
            OutputField("pid", "number", nil, "its pid"),
            OutputField("rss_bytes", "number", "bytes", "resident memory"),
            OutputField("cpu_percent", "number", "%", "CPU use over a short sample"),
        ], example: """
            check:
              process: { pidfile: /run/worker.pid, max_cpu: 90% }
            """),
        Entry(key: "check.host", title: "host disk, memory and load", shape: .object(RunbookGrammar.host), outputs: [
            OutputField("disk_used_percent", "number", "%", "use of the filesystem holding disk.path, as df counts it"),
            OutputField("memory_used_percent", "number", "%", "MemTotal - MemAvailable"),
            OutputField("load1", "number", nil, "1-minute load average"),
        ], example: """
            check:
              host: { disk: { path: /var/log, min_used: 85% } }
            """),
        Entry(key: "check.command", title: "command (read-only check)", shape: .command, outputs: commandOutputs, example: """
            check:
              command: { argv: ["pg_isready", "-h", "{{ params.db_host }}"], exit: 0 }
            """),
        Entry(key: "command", title: "command (a change unless read_only)", shape: .command, outputs: commandOutputs, example: """
            command: ["systemctl", "reload", "nginx"]
            undo: { command: ["systemctl", "reload", "nginx"] }
            """),
        Entry(key: "flag", title: "feature flag (flagd file or HTTP service)", shape: .object(RunbookGrammar.flag), outputs: [
            OutputField("from", "text", nil, "the value before (flag files)"),
            OutputField("to", "text", nil, "the value after (flag files)"),
        ], example: """
            flag: { file: "{{ params.flags_file }}", key: image-resize, variant: "off" }
            """),
        Entry(key: "restart", title: "restart a service and wait until it is ready", shape: .object(RunbookGrammar.restart), outputs: [
            OutputField("old_pid", "number", nil, "pid before (pidfile, supervisor)"),
            OutputField("new_pid", "number", nil, "pid after"),
            OutputField("ready_ms", "number", "ms", "restart to ready"),
        ], example: """
            restart:
              supervisor: shop
              ready: { http: { url: "{{ params.base_url }}/health", status: 200 } }
            """),
        Entry(key: "notify", title: "post to a webhook", shape: .object(RunbookGrammar.notify), outputs: [
            OutputField("status", "number", nil, "the webhook's status code"),
        ], example: """
            notify: { url: "{{ params.chat_webhook }}", text: "memory-leak mitigated on {{ params.service }}" }
            """),
        Entry(key: "wait", title: "wait", shape: .duration, outputs: [], example: """
            wait: 30s
            """),
        Entry(key: "targets", title: "named sets of hosts (top level, for across:)", shape: .object(RunbookGrammar.targetSet), outputs: [], example: """
            targets:
              web: { inventory: inventory.ini, group: web, user: deploy, max: 50 }
              from-alert: { hosts: ["{{ alert.labels.instance }}"], within: inventory.ini }
            """),
        Entry(key: "across", title: "run a command, check or restart on every host over SSH", shape: .object(RunbookGrammar.across), outputs: [
            OutputField("hosts", "number", nil, "hosts resolved"),
            OutputField("failed", "number", nil, "hosts that failed, timed out or could not be reached"),
            OutputField("not_started", "number", nil, "hosts never started (the step stopped first)"),
            OutputField("failed_hosts", "text", nil, "the failed hosts, comma-separated"),
        ], example: """
            across: { targets: web, concurrency: 10%, max_errors: 1, ramp: true, canary: { hosts: 1, verify: shop-healthy } }
            restart: { systemd: shop.service }
            timeout: 60s   # per host
            """),
    ]

    /// What an `across:` step reports (its action's own outputs are per host, on the timeline).
    public static var acrossOutputs: [String] { entries.first { $0.key == "across" }?.outputs.map(\.name) ?? [] }

    /// The entry for a step's action (`check.http`, `flag`, ...).
    public static func entry(for action: Action) -> Entry? {
        let key = action.kind == .check ? "check." + (action.checkKind ?? "") : action.kind.rawValue
        return entries.first { $0.key == key }
    }

    /// The outputs a step doing `action` reports: a host check only those of what it measures.
    public static func outputs(of action: Action) -> [OutputField] {
        guard let e = entry(for: action) else { return [] }
        guard case .check(.host(let host)) = action.spec else { return e.outputs }
        var measured: [String] = []
        if host.disk != nil { measured.append("disk_used_percent") }
        if host.memory != nil { measured.append("memory_used_percent") }
        if host.load != nil { measured.append("load1") }
        return e.outputs.filter { measured.contains($0.name) }
    }

    /// Whether a step doing `action` reports output `name`.
    public static func hasOutput(_ action: Action, _ name: String) -> Bool {
        guard let e = entry(for: action) else { return true }
        if let p = e.dynamicPrefix, name.hasPrefix(p) { return true }
        return outputs(of: action).contains { $0.name == name }
    }

    /// `status (number), latency_ms (number, ms)`, for messages and the schema.
    public static func outputList(_ e: Entry) -> String {
        var items = e.outputs.map { o in "\(o.name) (\(o.type)\(o.unit.map { ", \($0)" } ?? ""))" }
        if let p = e.dynamicPrefix { items.append("\(p)PATH (each json: path)") }
        return items.isEmpty ? "none" : items.joined(separator: ", ")
    }

    /// `docs/actions.md`: every action and check, its fields with types and units, its outputs and an example.
    public static func markdown() -> String {
        var md = """
            # Actions and checks

            Generated from the runbook grammar by `runbook reference`; a test fails when this file is stale.
            Durations: `250ms`, `30s`, `10m`, `1h`. Sizes: `512KB`, `1MB`, `2GB`. Rates: a size per time
            (`1MB/s`, `10MB/min`) or a count per time (`10/s`, `600/min`). Percentages: `80` or `80%`.
            A step reads another's outputs as `steps.ID.output.NAME` in `when` and in templates;
            `steps.ID.passed`, `.failed`, `.errored`, `.skipped` and `.status` are there for every step.
            `validate` refuses values out of range, at their line and column: a port outside 1-65535, a
            duration or size of 0 or less, a percentage outside 0-100, a `min_slope` of 0, a URL without
            a scheme and host, an HTTP status outside 100-599, an exit status outside 0-255, an empty
            argv. A value written as a template is checked once rendered, when the step runs.

            """
        for e in entries {
            md += "\n## `\(e.key)`: \(e.title)\n\n"
            if case .object(let o) = e.shape {
                md += "| field | type | meaning |\n|---|---|---|\n"
                for f in o.fields {
                    md += "| `\(f.name)`\(f.required ? " (required)" : "") | \(f.shape.name) | \(f.doc.isEmpty ? "-" : f.doc) |\n"
                }
                if !o.exactlyOne.isEmpty { md += "\nExactly one of \(o.exactlyOne.map { "`\($0)`" }.joined(separator: ", ")).\n" }
                if !o.atLeastOne.isEmpty { md += "\nAt least one of \(o.atLeastOne.map { "`\($0)`" }.joined(separator: ", ")).\n" }
            } else {
                md += "Value: \(e.shape.name).\n"
            }
            md += "\nOutputs: "
            if e.outputs.isEmpty && e.dynamicPrefix == nil {
                md += "none.\n"
            } else {
                md += "\n\n| output | type | unit | meaning |\n|---|---|---|---|\n"
                for o in e.outputs { md += "| `\(o.name)` | \(o.type) | \(o.unit ?? "-") | \(o.meaning) |\n" }
                if let p = e.dynamicPrefix { md += "| `\(p)PATH` | as in the body | - | the value at each path named under `json:` |\n" }
            }
            md += "\nExample:\n\n```yaml\n\(e.example)\n```\n"
        }
        return md
    }
}
