import Foundation
import Testing
@testable import RunbookCore

/// Out-of-range action settings are refused at load, located at the value, with what to write instead.
struct ActionRangeTests {
    struct Case: CustomStringConvertible, Sendable {
        var name: String
        /// The step's action lines, indented four spaces (line 7 of the file is the first).
        var action: String
        var phase = "detect"
        var line: Int
        var column: Int
        var message: String
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(name: "port over 65535", action: "    check: { tcp: { host: db, port: 70000 } }\n", line: 7, column: 37,
             message: "step 'a' check.tcp.port 70000 is not a port: write a number from 1 to 65535"),
        Case(name: "port 0", action: "    check: { tcp: { host: db, port: 0 } }\n", line: 7, column: 37, message: "port 0 is not a port"),
        Case(name: "port that is not a number", action: "    check: { tcp: { host: db, port: http } }\n", line: 7, column: 37,
             message: "port 'http' is not a port"),
        Case(name: "zero max_latency", action: "    check: { http: { url: \"http://x/health\", max_latency: 0s } }\n", line: 7, column: 59,
             message: "step 'a' check.http.max_latency must be more than 0s"),
        Case(name: "negative max_latency", action: "    check: { tcp: { host: db, port: 5432, max_latency: -1s } }\n", line: 7, column: 56,
             message: "step 'a' check.tcp.max_latency is negative ('-1s'): a duration must be more than 0s"),
        Case(name: "zero window", action: "    check: { metric_trend: { url: \"http://x/metrics\", metric: m, window: 0s, every: 1s, min_slope: 1MB/s } }\n",
             line: 7, column: 74, message: "check.metric_trend.window must be more than 0s"),
        Case(name: "min_slope 0", action: "    check: { metric_trend: { url: \"http://x/metrics\", metric: m, window: 10s, every: 1s, min_slope: 0/s } }\n",
             line: 7, column: 101, message: "step 'a' check.metric_trend.min_slope is 0, so a flat metric would count as a leak"),
        Case(name: "min_r2 over 1", action: "    check: { metric_trend: { url: \"http://x/metrics\", metric: m, window: 10s, every: 1s, max_slope: 1KB/s, min_r2: 2 } }\n",
             line: 7, column: 116, message: "min_r2 is 2: r² is from 0 to 1"),
        Case(name: "percentage of 120", action: "    check: { host: { disk: { path: /, max_used: 120% } } }\n", line: 7, column: 49,
             message: "step 'a' check.host.disk.max_used is 120%: a percentage is from 0 to 100"),
        Case(name: "cpu percentage of 150", action: "    check: { process: { pid: 1, max_cpu: 150 } }\n", line: 7, column: 42,
             message: "check.process.max_cpu is 150%: a percentage is from 0 to 100"),
        Case(name: "zero max_rss", action: "    check: { process: { pid: 1, max_rss: 0MB } }\n", line: 7, column: 42,
             message: "check.process.max_rss must be more than 0 bytes"),
        Case(name: "pid 0", action: "    check: { process: { pid: 0 } }\n", line: 7, column: 30, message: "check.process.pid 0 is not a process id"),
        Case(name: "url without a scheme", action: "    check: { http: { url: \"shop.internal/health\" } }\n", line: 7, column: 27,
             message: "step 'a' check.http.url 'shop.internal/health' has no scheme: write it like http://host:8080/path"),
        Case(name: "url without a host", action: "    check: { prometheus: { url: \"http://\", query: up } }\n", line: 7, column: 33,
             message: "check.prometheus.url 'http://' has no host"),
        Case(name: "status that does not exist", action: "    check: { http: { url: \"http://x/\", status: [200, 700] } }\n", line: 7, column: 48,
             message: "check.http.status 700 is not an HTTP status: write a number from 100 to 599"),
        Case(name: "exit status over 255", action: "    check: { command: { argv: [\"true\"], exit: 300 } }\n", line: 7, column: 47,
             message: "check.command.exit 300 is not an exit status"),
        Case(name: "empty argv list", action: "    check: { command: [] }\n", line: 7, column: 23, message: "the argv list is empty: name a program"),
        Case(name: "empty argv in a mapping", action: "    check: { command: { argv: [] } }\n", line: 7, column: 31, message: "argv is empty: name a program"),
        Case(name: "empty program name", action: "    check: { command: [\"\", \"x\"] }\n", line: 7, column: 24,
             message: "the program name (argv[0]) is empty: name a program"),
        Case(name: "zero wait", action: "    wait: 0s\n", phase: "mitigate", line: 7, column: 11, message: "step 'a' wait must be more than 0s"),
        Case(name: "notify url without a scheme", action: "    notify: { url: \"hooks.example.com/x\" }\n", phase: "mitigate", line: 7, column: 20,
             message: "step 'a' notify.url 'hooks.example.com/x' has no scheme"),
        Case(name: "restart ready with a bad port", action: "    restart: { command: [\"true\"], ready: { tcp: { host: x, port: 99999 } } }\n", phase: "mitigate",
             line: 7, column: 66, message: "step 'a' restart.ready.tcp.port 99999 is not a port"),
        Case(name: "flag file without a key", action: "    flag: { file: f.json, variant: \"off\" }\n", phase: "mitigate", line: 7, column: 11,
             message: "step 'a' flag sets a flag file but names no flag: add key:"),
    ]

    @Test(arguments: cases)
    func refusesOutOfRangeValuesAtTheValue(_ c: Case) {
        let yaml = "runbook: t\nparams:\n  service: { default: shop, pattern: \"^[a-z]+$\" }\nsteps:\n  - id: a\n    phase: \(c.phase)\n" + c.action
        let found = diagnostics(yaml)
        let match = found.first { $0.message.contains(c.message) }
        #expect(match != nil, "expected '\(c.message)', got \(found)")
        #expect(match?.location.line == c.line, "line: \(found)")
        #expect(match?.location.column == c.column, "column: \(found)")
    }

    @Test func refusesAZeroOrNegativeStepTimeout() {
        for (timeout, message) in [("0s", "timeout must be more than 0s"), ("-5s", "step 'a' timeout is negative ('-5s')")] {
            let found = diagnostics(minimalHeader + "  - id: a\n    phase: detect\n    timeout: \(timeout)\n    check: { command: [\"true\"] }\n")
            #expect(found.contains { $0.message.contains(message) && $0.location.line == 7 && $0.location.column == 14 }, "\(timeout): \(found)")
        }
    }

    @Test func refusesAZeroAlarmTimeout() {
        let yaml = minimalHeader + "  - id: a\n    phase: detect\n    check: { command: [\"true\"] }\nabort_if:\n  - id: alarm\n    check: { command: [\"true\"] }\n    timeout: 0s\n"
        let found = diagnostics(yaml)
        #expect(found.contains { $0.message.contains("abort_if 'alarm' timeout must be more than 0s") && $0.location.line == 11 }, "\(found)")
    }

    @Test func checksTemplatedValuesOnlyWhenTheStepRuns() throws {
        let rb = try load(minimalHeader + """
          - id: a
            phase: detect
            check: { tcp: { host: db, port: "{{ params.service }}" } }
          - id: b
            phase: detect
            check: { http: { url: "{{ params.service }}/health" } }

        """)
        guard case .check(.tcp(let tcp))? = rb.step("a")?.action.spec else {
            Issue.record("step a is not a tcp check")
            return
        }
        #expect(tcp.port == .template(try Template(parsing: "{{ params.service }}")))
    }

    @Test func acceptsTheEdgesOfEachRange() throws {
        _ = try load(minimalHeader + """
          - id: a
            phase: detect
            check: { tcp: { host: db, port: 65535, max_latency: 1ms } }
          - id: b
            phase: detect
            check: { host: { disk: { path: /, min_used: 0, max_used: 100% }, load: { max: 0 } } }
          - id: c
            phase: detect
            check: { metric_trend: { url: "http://x/metrics", metric: m, window: 1s, every: 1s, max_slope: 0/s, min_r2: 1 } }
          - id: d
            phase: detect
            check: { command: { argv: ["true"], exit: [0, 255] } }

        """)
    }

    @Test func reportsEveryRangeProblemOfAFileInOnePass() {
        let found = diagnostics(minimalHeader + """
          - id: a
            phase: detect
            check: { tcp: { host: db, port: 70000 } }
          - id: b
            phase: detect
            check: { host: { memory: { max_used: 120 } } }

        """)
        #expect(found.filter { $0.message.contains("is not a port") }.count == 1, "\(found)")
        #expect(found.filter { $0.message.contains("a percentage is from 0 to 100") }.count == 1, "\(found)")
    }
}
