/// The runbook format as data: every key the loader accepts, its shape and a one-line doc.
/// Validation, loading and the JSON Schema (`runbook schema`) are all driven from here.
public enum RunbookGrammar {
    static let statusList: Shape = .either([.integer, .list(.integer)])

    static let http = ObjectShape("HTTP request check", [
        field("url", .text, required: true, "URL to request"),
        field("method", .choice(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]), "HTTP method (default GET)"),
        field("headers", .dictionary(.text), "request headers (values are secret: never on the timeline)"),
        field("body", .text, "request body"),
        field("status", statusList, "expected status code or codes (default 200-399)"),
        field("contains", .text, "text the body must contain"),
        field("json", .dictionary(.scalar), "dotted path in the JSON body to expected value"),
        field("max_latency", .duration, "slowest acceptable answer"),
    ])

    static let tcp = ObjectShape("TCP connect check", [
        field("host", .text, required: true, "host to connect to"),
        field("port", .either([.integer, .text]), required: true, "port"),
        field("max_latency", .duration, "slowest acceptable connect"),
    ])

    static let prometheus = ObjectShape("Prometheus instant query check", [
        field("url", .text, required: true, "Prometheus server base URL"),
        field("query", .text, required: true, "PromQL"),
        field("above", .number, "passes when the value is above this"),
        field("below", .number, "passes when the value is below this"),
    ])

    static let metricTrend = ObjectShape("samples a metric and fits a least-squares slope", atLeastOne: ["min_slope", "max_slope"], [
        field("url", .text, required: true, "Prometheus text endpoint (/metrics) or Prometheus server when query is set"),
        field("metric", .text, "metric name in the text endpoint"),
        field("labels", .dictionary(.text), "label values the sample must have"),
        field("query", .text, "PromQL instead of a text endpoint"),
        field("window", .duration, required: true, "how long to sample"),
        field("every", .duration, required: true, "sampling interval"),
        field("min_slope", .rate, "passes when the slope is at least this (leak present); 256KB/s, or 10/s for a count"),
        field("max_slope", .rate, "passes when the slope is at most this (flat)"),
        field("min_r2", .number, "with min_slope: how steady the growth must be, 0 to 1 (default 0.6)"),
    ])

    static let process = ObjectShape("process check from /proc", exactlyOne: ["pid", "pidfile", "name"], [
        field("pid", .either([.integer, .text]), "process id"),
        field("pidfile", .text, "file holding the pid"),
        field("name", .text, "process name (comm)"),
        field("running", .bool, "expected to be running (default true)"),
        field("max_rss", .size, "largest acceptable resident memory"),
        field("max_cpu", .percent, "largest acceptable CPU use"),
    ])

    static let host = ObjectShape("host resource check", atLeastOne: ["disk", "memory", "load"], [
        field("disk", .object(ObjectShape("", atLeastOne: ["max_used", "min_used"], [
            field("path", .text, required: true), field("max_used", .percent, "passes at or below this"),
            field("min_used", .percent, "passes at or above this (the symptom)")])), "disk use of a path"),
        field("memory", .object(ObjectShape("", atLeastOne: ["max_used", "min_used"], [
            field("max_used", .percent, "passes at or below this"), field("min_used", .percent, "passes at or above this (the symptom)")])), "memory use"),
        field("load", .object(ObjectShape("", atLeastOne: ["max", "min"], [
            field("max", .number, "1-minute load average at most"), field("min", .number, "at least (the symptom)")])), "load average"),
    ])

    /// The keys of `check`, one of which a check has.
    public static let checkKinds = ["http", "tcp", "prometheus", "metric_trend", "process", "host", "command"]

    static let check: ObjectShape = ObjectShape("a read-only check", exactlyOne: checkKinds, [
        field("http", .object(http)),
        field("tcp", .object(tcp)),
        field("prometheus", .object(prometheus)),
        field("metric_trend", .object(metricTrend)),
        field("process", .object(process)),
        field("host", .object(host)),
        field("command", .command, "passes on exit code (default 0)"),
    ])

    static let flagHTTP = ObjectShape("HTTP flag service request", [
        field("url", .text, required: true),
        field("method", .choice(["GET", "POST", "PUT", "PATCH", "DELETE"])),
        field("body", .text),
        field("headers", .dictionary(.text)),
    ])

    static let flag = ObjectShape("set a feature flag", exactlyOne: ["file", "http"], [
        field("file", .text, "OpenFeature flagd flag file"),
        field("key", .text, "flag key"),
        field("variant", .text, "variant to make the default"),
        field("state", .choice(["ENABLED", "DISABLED"]), "flag state"),
        field("http", .object(flagHTTP), "HTTP flag service (needs an explicit undo)"),
    ])

    static let restart = ObjectShape("restart a service", exactlyOne: ["command", "systemd", "supervisor", "kubernetes"], [
        field("command", .command, "argv that restarts it"),
        field("pidfile", .text, "the old pid must go and a new one come"),
        field("systemd", .text, "systemd unit (systemctl restart)"),
        field("supervisor", .text, "supervisord program (supervisorctl restart)"),
        field("config", .text, "supervisord config file"),
        field("server", .text, "supervisord server URL"),
        field("kubernetes", .text, "deployment/NAME (kubectl rollout restart and status)"),
        field("namespace", .text, "Kubernetes namespace"),
        field("ready", .object(check), "a check retried until it passes or the step times out"),
    ])

    static let notify = ObjectShape("POST a JSON message to a webhook", [
        field("url", .text, required: true, "webhook URL"),
        field("text", .text, "message (Slack-compatible text)"),
        field("headers", .dictionary(.text)),
    ])

    /// The keys that make a step's action; a step has exactly one.
    public static let actionKinds = ["check", "flag", "restart", "command", "notify", "wait"]

    static func actionFields() -> [ObjectShape.Field] {
        [
            field("check", .object(check), "a read-only check"),
            field("flag", .object(flag), "set a feature flag"),
            field("restart", .object(restart), "restart a service"),
            field("command", .command, "run a command (a change unless read_only)"),
            field("notify", .object(notify), "post to a webhook"),
            field("wait", .duration, "wait this long"),
        ]
    }

    static let undo = ObjectShape("an action that reverses this step", exactlyOne: ["flag", "restart", "command", "notify", "wait"],
        actionFields().filter { $0.name != "check" })

    static let retry = ObjectShape("retry a failed step", [
        field("attempts", .integer, required: true, "total tries, including the first"),
        field("delay", .duration, "delay before the second try (default 1s)"),
        field("backoff", .number, "factor applied to the delay after each try (default 1)"),
        field("jitter", .bool, "randomise delays by up to ±20% (default true)"),
        field("max_delay", .duration, "longest delay between tries"),
    ])

    /// Phases in the order they run.
    public static let phases = ["detect", "diagnose", "mitigate", "verify"]

    static let step = ObjectShape("one step", exactlyOne: actionKinds, [
        field("id", .text, required: true, "unique id, [a-z0-9-]+"),
        field("phase", .choice(phases), required: true),
        field("description", .text),
        field("rules_out", .text, "what a pass of this check rules out (the postmortem says so only then)"),
        field("finding", .text, "what a pass of this check means was found"),
        field("needs", .list(.text), "ids of steps that must finish first"),
        field("when", .text, "expression; the step is skipped when false"),
        field("timeout", .duration, "per attempt (default 30s)"),
        field("retry", .object(retry)),
        field("confirm", .either([.bool, .object(confirmGate)]), "ask a human first: true (a prompt, --yes or a standing approval), or an approval gate"),
        field("continue_on_failure", .bool, "a failure does not stop the run"),
        field("read_only", .bool, "a command step that changes nothing"),
        field("undo", .object(undo)),
        field("across", .object(across), "run on every host of a target set over SSH (targets:)"),
    ] + actionFields())

    static let confirmGate = ObjectShape("an approval gate: the step waits for named approvals", [
        field("approvals", .integer, "distinct approvers needed (default 1); whoever started the run cannot approve it"),
        field("timeout", .duration, "how long to wait (default 15m)"),
        field("on_timeout", .choice(["decline", "proceed"]), "what a timeout means (default decline: the run stops, refused)"),
    ])

    static let param = ObjectShape("an input", [
        field("default", .scalar),
        field("pattern", .regex, "every value must match"),
        field("description", .text),
        field("secret", .bool, "never shown on the timeline"),
        field("required", .bool, "a value must be given"),
        field("type", .choice(["string", "path"]), "path: resolved (.. and symlinks) and kept inside within"),
        field("within", .text, "with type: path, the folder the value must stay inside"),
    ])

    static let trigger = ObjectShape("an alert that starts this runbook", [
        field("alert", .dictionary(.text), required: true, "label matchers: value, =~regex, !=value, !~regex"),
        field("params", .dictionary(.text), "params from the alert: {{ alert.labels.NAME }}"),
    ])

    static let guards = ObjectShape("limits on runs", [
        field("auto", .either([.bool, .choice(["ask"])]), "may run from an alert without a human (default false); ask: the run pauses for approval before its first change"),
        field("cooldown", .duration, "no new run for the same lock key within this"),
        field("max_runs", .object(ObjectShape([field("count", .integer, required: true), field("per", .duration, required: true)])), "at most count runs per window"),
        field("lock", .text, "at most one active run per key"),
        field("max_active", .integer, "at most this many runs of the runbook at once, across all lock keys"),
    ])

    static let alarm = ObjectShape("a check that aborts the run when it passes", [
        field("id", .text, required: true, "unique id, [a-z0-9-]+"),
        field("description", .text),
        field("check", .object(check), required: true, "passes when the alarm fires"),
        field("every", .duration, "how often, from the first change to the end of verify (default 5s)"),
        field("timeout", .duration, "per evaluation (default 30s)"),
    ])

    /// The whole file.
    public static let runbook = ObjectShape("an incident-response runbook", [
        field("runbook", .text, required: true, "name, [a-z0-9-]+"),
        field("title", .text),
        field("description", .text),
        field("severity", .choice(["info", "warning", "critical"])),
        field("owner", .text),
        field("detect", .choice(["any", "all"]), "any (default): one passing detect step confirms; all: every one must pass"),
        field("params", .dictionary(.object(param))),
        field("triggers", .list(.object(trigger))),
        field("guards", .object(guards)),
        field("steps", .list(.object(step)), required: true),
        field("approvals_channel", .text, "webhook URL told when a run pauses for approval (Slack-compatible text)"),
        field("abort_if", .list(.object(alarm)), "alarms: one that passes stops the run, undoes its changes and ends it aborted"),
        field("targets", .dictionary(.object(targetSet)), "named sets of hosts that steps act on with across: (over SSH)"),
    ])

    static let commandObject = ObjectShape("a command", [
        field("argv", .list(.text), required: true, "program and arguments; never run through a shell"),
        field("env", .dictionary(.text), "environment variables"),
        field("cwd", .text, "working directory"),
        field("exit", .either([.integer, .list(.integer)]), "expected exit code (default 0)"),
        field("stdout_contains", .text, "text stdout must contain"),
        field("read_only", .bool, "changes nothing"),
    ])
}
