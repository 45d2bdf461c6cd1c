import Foundation
import Testing

/// `runbook validate` refuses out-of-range action settings with FILE:LINE:COL, a message that says
/// what to write, and exit 2, before any run could trip over them mid-incident.
@Suite(.timeLimit(.minutes(10)))
struct ValidateRangeTests {
    struct Case: CustomStringConvertible, Sendable {
        var name: String
        /// Lines 5 onwards of the file: one step.
        var step: String
        /// `LINE:COL: error: MESSAGE-START`.
        var expected: String
        var description: String { name }
    }

    static let cases: [Case] = [
        Case(name: "port 70000", step: "  - id: db\n    phase: detect\n    check:\n      tcp: { host: db.internal, port: 70000 }\n",
             expected: "8:39: error: step 'db' check.tcp.port 70000 is not a port: write a number from 1 to 65535"),
        Case(name: "zero timeout", step: "  - id: db\n    phase: detect\n    timeout: 0s\n    check: { command: [\"true\"] }\n",
             expected: "7:14: error: timeout must be more than 0s"),
        Case(name: "negative timeout", step: "  - id: db\n    phase: detect\n    timeout: -30s\n    check: { command: [\"true\"] }\n",
             expected: "7:14: error: step 'db' timeout is negative ('-30s'): a duration must be more than 0s, like 500ms or 10s"),
        Case(name: "min_slope 0", step: "  - id: leak\n    phase: diagnose\n    check:\n      metric_trend: { url: \"http://shop/metrics\", metric: rss, window: 10s, every: 1s, min_slope: 0KB/s }\n",
             expected: "8:99: error: step 'leak' check.metric_trend.min_slope is 0, so a flat metric would count as a leak: write the growth that means one"),
        Case(name: "empty argv", step: "  - id: bounce\n    phase: mitigate\n    command: []\n",
             expected: "7:14: error: step 'bounce' command: the argv list is empty: name a program"),
        Case(name: "percentage of 120", step: "  - id: disk\n    phase: detect\n    check:\n      host: { disk: { path: /var, max_used: 120% } }\n",
             expected: "8:45: error: step 'disk' check.host.disk.max_used is 120%: a percentage is from 0 to 100"),
    ]

    @Test(arguments: cases)
    func validateRejectsOutOfRangeValuesWithTheirPosition(_ c: Case) async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/range.yaml"
        try ("runbook: range\nparams:\n  service: { default: shop, pattern: \"^[a-z]+$\" }\nsteps:\n" + c.step)
            .write(toFile: file, atomically: true, encoding: .utf8)
        let r = try await runCLI(["validate", file])
        #expect(r.status == 2, "\(r.stdout)\(r.stderr)")
        #expect(r.stderr.contains("\(file):\(c.expected)"), "\(r.stderr)")
    }
}
