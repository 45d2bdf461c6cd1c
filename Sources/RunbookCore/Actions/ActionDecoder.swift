import Foundation

/// Turns an action's checked settings into its `ActionSpec`, range-checking every value once:
/// ports 1-65535, durations and sizes above 0, percentages 0-100, a `min_slope` that is not 0,
/// URLs with a scheme and host, status and exit codes that exist. Templated values are checked
/// after rendering, when the step runs. The grammar pass (`ShapeChecker`) already reported what
/// does not fit its shape; what it dropped decodes to nil here, quietly.
package struct ActionDecoder {
    /// Range problems found, located at the offending value.
    package var diagnostics: [Diagnostic] = []

    package init() {}

    mutating func error(_ location: SourceLocation, _ message: String) {
        diagnostics.append(Diagnostic(location, message))
    }

    /// The action under step key `kind`.
    /// - Parameters:
    ///   - node: the YAML value of the key, for locations.
    ///   - config: the same value as the grammar pass converted it.
    ///   - context: how messages name the step (`step 'a'`).
    package mutating func decode(_ kind: Action.Kind, node: YAMLNode, config: Config, context: String) -> ActionSpec? {
        let name = context.isEmpty ? kind.rawValue : "\(context) \(kind.rawValue)"
        switch kind {
        case .check: return check(node: node, config: config, context: name).map(ActionSpec.check)
        case .command: return command(node: node, config: config, context: name).map(ActionSpec.command)
        case .flag: return flag(FieldReader(node: node, config: config, context: name)).map(ActionSpec.flag)
        case .restart: return restart(FieldReader(node: node, config: config, context: name)).map(ActionSpec.restart)
        case .notify: return notify(FieldReader(node: node, config: config, context: name)).map(ActionSpec.notify)
        case .wait:
            guard let seconds = config.number else { return nil }
            positiveDuration(seconds, node.location, name)
            return .wait(seconds: seconds)
        }
    }

    /// `check: { KIND: ... }`.
    mutating func check(node: YAMLNode, config: Config, context: String) -> CheckSpec? {
        guard let entry = config.entries?.first, let inner = node[entry.key] else { return nil }
        let name = "\(context).\(entry.key)"
        switch entry.key {
        case "http": return http(FieldReader(node: inner, config: entry.value, context: name)).map(CheckSpec.http)
        case "tcp": return tcp(FieldReader(node: inner, config: entry.value, context: name)).map(CheckSpec.tcp)
        case "prometheus": return prometheus(FieldReader(node: inner, config: entry.value, context: name)).map(CheckSpec.prometheus)
        case "metric_trend": return metricTrend(FieldReader(node: inner, config: entry.value, context: name)).map(CheckSpec.metricTrend)
        case "process": return process(FieldReader(node: inner, config: entry.value, context: name)).map(CheckSpec.process)
        case "host": return host(FieldReader(node: inner, config: entry.value, context: name)).map(CheckSpec.host)
        case "command": return command(node: inner, config: entry.value, context: name).map(CheckSpec.command)
        default: return nil
        }
    }

    mutating func http(_ r: FieldReader<HTTPCheckSpec.Field>) -> HTTPCheckSpec? {
        guard let url = r.template(.url) else { return nil }
        checkURL(url, r.location(.url), r.name(.url))
        var s = HTTPCheckSpec(url: url)
        if let m = r.word(.method) { s.method = m }
        s.headers = r.named(.headers)
        s.body = r.template(.body)
        s.status = codes(r.value(.status), 100...599, "an HTTP status", r.location(.status), r.name(.status))
        s.contains = r.template(.contains)
        s.json = (r.value(.json)?.entries ?? []).map { HTTPCheckSpec.JSONExpectation(path: $0.key, value: $0.value.plainValue) }
        s.maxLatency = r.number(.maxLatency)
        positiveDuration(s.maxLatency, r.location(.maxLatency), r.name(.maxLatency))
        return s
    }

    mutating func tcp(_ r: FieldReader<TCPCheckSpec.Field>) -> TCPCheckSpec? {
        guard let host = r.template(.host), let port = numberOrTemplate(r.value(.port)) else { return nil }
        if case .literal(let p) = port, !(1...65535).contains(p) {
            error(r.location(.port), "\(r.name(.port)) \(p) is not a port: write a number from 1 to 65535")
        } else if case .template(let t) = port, t.isLiteral {
            error(r.location(.port), "\(r.name(.port)) '\(t.source)' is not a port: write a number from 1 to 65535")
        }
        let s = TCPCheckSpec(host: host, port: port, maxLatency: r.number(.maxLatency))
        positiveDuration(s.maxLatency, r.location(.maxLatency), r.name(.maxLatency))
        return s
    }

    mutating func prometheus(_ r: FieldReader<PrometheusCheckSpec.Field>) -> PrometheusCheckSpec? {
        guard let url = r.template(.url), let query = r.template(.query) else { return nil }
        checkURL(url, r.location(.url), r.name(.url))
        return PrometheusCheckSpec(url: url, query: query, above: r.number(.above), below: r.number(.below))
    }

    mutating func metricTrend(_ r: FieldReader<MetricTrendSpec.Field>) -> MetricTrendSpec? {
        guard let url = r.template(.url), let window = r.number(.window), let every = r.number(.every) else { return nil }
        checkURL(url, r.location(.url), r.name(.url))
        positiveDuration(window, r.location(.window), r.name(.window))
        positiveDuration(every, r.location(.every), r.name(.every))
        var s = MetricTrendSpec(url: url, metric: r.template(.metric), labels: r.named(.labels), query: r.template(.query),
                                window: window, every: every, minSlope: r.number(.minSlope), maxSlope: r.number(.maxSlope))
        if s.minSlope == 0 {
            error(r.location(.minSlope), "\(r.name(.minSlope)) is 0, so a flat metric would count as a leak: write the growth that means one, like 256KB/s or 10/s")
        }
        if let r2 = r.number(.minR2) {
            s.minR2 = r2
            if !(0...1).contains(r2) { error(r.location(.minR2), "\(r.name(.minR2)) is \(Self.format(r2)): r² is from 0 to 1, like 0.6") }
        }
        return s
    }

    mutating func process(_ r: FieldReader<ProcessCheckSpec.Field>) -> ProcessCheckSpec? {
        let target: ProcessCheckSpec.Target
        if let pid = numberOrTemplate(r.value(.pid)) {
            if case .literal(let p) = pid, p < 1 { error(r.location(.pid), "\(r.name(.pid)) \(p) is not a process id: write a number of 1 or more") }
            if case .template(let t) = pid, t.isLiteral { error(r.location(.pid), "\(r.name(.pid)) '\(t.source)' is not a process id: write a number of 1 or more") }
            target = .pid(pid)
        } else if let f = r.template(.pidfile) {
            target = .pidfile(f)
        } else if let n = r.template(.name) {
            target = .name(n)
        } else {
            return nil
        }
        var s = ProcessCheckSpec(target: target)
        s.running = r.bool(.running) ?? true
        s.maxRSS = r.number(.maxRSS)
        positive(s.maxRSS, r.location(.maxRSS), "\(r.name(.maxRSS)) must be more than 0 bytes: write a size like 512MB")
        s.maxCPU = r.number(.maxCPU)
        percent(s.maxCPU, r.location(.maxCPU), r.name(.maxCPU))
        return s
    }

    mutating func host(_ r: FieldReader<HostCheckSpec.Field>) -> HostCheckSpec? {
        var s = HostCheckSpec()
        if let d = r.child(.disk, HostCheckSpec.Disk.Field.self), let path = d.template(.path) {
            s.disk = HostCheckSpec.Disk(path: path, used: HostCheckSpec.Limits(max: d.number(.maxUsed), min: d.number(.minUsed)))
            percent(d.number(.maxUsed), d.location(.maxUsed), d.name(.maxUsed))
            percent(d.number(.minUsed), d.location(.minUsed), d.name(.minUsed))
        }
        if let m = r.child(.memory, HostCheckSpec.MemoryField.self) {
            s.memory = HostCheckSpec.Limits(max: m.number(.maxUsed), min: m.number(.minUsed))
            percent(m.number(.maxUsed), m.location(.maxUsed), m.name(.maxUsed))
            percent(m.number(.minUsed), m.location(.minUsed), m.name(.minUsed))
        }
        if let l = r.child(.load, HostCheckSpec.LoadField.self) {
            s.load = HostCheckSpec.Limits(max: l.number(.max), min: l.number(.min))
            for key in [HostCheckSpec.LoadField.max, .min] {
                if let v = l.number(key), v < 0 { error(l.location(key), "\(l.name(key)) is \(Self.format(v)): a load average is 0 or more") }
            }
        }
        return s
    }

    /// A command: the grammar pass gives `{argv, ...}` for both the list and the mapping form.
    mutating func command(node: YAMLNode, config: Config, context: String) -> CommandSpec? {
        let r = FieldReader<CommandSpec.Field>(node: node, config: config, context: context)
        guard let items = r.value(.argv)?.list else { return nil }
        let argv = items.compactMap(\.template)
        // An empty list is reported by the grammar pass; an empty program name is not.
        if let first = argv.first, first.isLiteral, first.source.trimmingCharacters(in: .whitespaces).isEmpty {
            let at = (r.node[CommandSpec.Field.argv.rawValue] ?? node).items?.first?.location ?? node.location
            error(at, "\(context): the program name (argv[0]) is empty: name a program")
        }
        var s = CommandSpec(argv: argv)
        s.env = r.named(.env)
        s.cwd = r.template(.cwd)
        s.exit = codes(r.value(.exit), 0...255, "an exit status", r.location(.exit), r.name(.exit)) ?? [0]
        s.stdoutContains = r.template(.stdoutContains)
        s.readOnly = r.bool(.readOnly) ?? false
        return s
    }

    mutating func flag(_ r: FieldReader<FlagSpec.Field>) -> FlagSpec? {
        let provider: FlagSpec.Provider
        if let f = r.template(.file) {
            provider = .file(f)
        } else if let h = r.child(.http, FlagHTTPSpec.Field.self), let url = h.template(.url) {
            checkURL(url, h.location(.url), h.name(.url))
            var spec = FlagHTTPSpec(url: url)
            if let m = h.word(.method) { spec.method = m }
            spec.body = h.template(.body)
            spec.headers = h.named(.headers)
            provider = .http(spec)
        } else {
            return nil
        }
        var setting: FlagSpec.Setting?
        if let v = r.template(.variant) { setting = .variant(v) } else if let s = r.word(.state) { setting = .state(s) }
        if r.has(.variant), r.has(.state) {
            error(r.location(.state), "\(r.context) has both 'variant' and 'state': set one of them")
        }
        if case .file = provider {
            if !r.has(.key) { error(r.node.location, "\(r.context) sets a flag file but names no flag: add key:") }
            if setting == nil { error(r.node.location, "\(r.context) names no value: add variant: (the default variant) or state: (ENABLED or DISABLED)") }
        }
        return FlagSpec(provider: provider, key: r.template(.key), setting: setting)
    }

    mutating func restart(_ r: FieldReader<RestartSpec.Field>) -> RestartSpec? {
        let provider: RestartSpec.Provider
        if let n = r.node[RestartSpec.Field.command.rawValue], let c = r.value(.command),
           let cmd = command(node: n, config: c, context: r.name(.command)) {
            provider = .command(cmd)
        } else if let unit = r.template(.systemd) {
            provider = .systemd(unit: unit)
        } else if let program = r.template(.supervisor) {
            provider = .supervisor(program: program, config: r.template(.config), server: r.template(.server))
        } else if let target = r.template(.kubernetes) {
            provider = .kubernetes(target: target, namespace: r.template(.namespace))
        } else {
            return nil
        }
        var ready: CheckSpec?
        if let n = r.node[RestartSpec.Field.ready.rawValue], let c = r.value(.ready) {
            ready = check(node: n, config: c, context: r.name(.ready))
        }
        return RestartSpec(provider: provider, pidfile: r.template(.pidfile), ready: ready)
    }

    mutating func notify(_ r: FieldReader<NotifySpec.Field>) -> NotifySpec? {
        guard let url = r.template(.url) else { return nil }
        checkURL(url, r.location(.url), r.name(.url))
        return NotifySpec(url: url, text: r.template(.text), headers: r.named(.headers))
    }
}
