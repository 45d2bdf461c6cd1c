import Foundation
import Testing
@testable import RunbookCore

/// `targets.NAME.prometheus`: hosts from a query's label values, always inside `within`.
struct PrometheusTargetTests {
    /// Answers every query with `hosts`, or throws `failure`; counts the questions.
    final class FakePrometheus: PrometheusHostLookup, @unchecked Sendable {
        let hosts: [String]
        let failure: String?
        private let lock = NSLock()
        private var asked: [PrometheusTargets] = []
        var questions: [PrometheusTargets] { lock.withLock { asked } }

        init(_ hosts: [String], failure: String? = nil) {
            self.hosts = hosts
            self.failure = failure
        }

        struct Refused: Error, CustomStringConvertible { var description: String }

        func hosts(_ source: PrometheusTargets, within: String?) throws -> [String] {
            lock.withLock { asked.append(source) }
            if let failure { throw Refused(description: failure) }
            return hosts
        }
    }

    static let set = "  web: { prometheus: { url: \"http://prom:9090\", query: 'up{job=\"shop\"} == 1', label: instance }, within: inventory }"

    static func runbook(_ targets: String = set) throws -> Runbook {
        let dir = try FleetLoadTests.folder()
        return try RunbookLoader.load(text: FleetLoadTests.yaml(targets: targets, across: "{ targets: web }"), file: dir + "/t.yaml")
    }

    @Test func decodesAQuerySourceAndAsksItOnceBeforeTheRun() throws {
        let rb = try Self.runbook()
        let query = PrometheusTargets(url: "http://prom:9090", query: "up{job=\"shop\"} == 1", label: "instance")
        #expect(rb.targetSet("web")?.source == .prometheus(query))
        let prometheus = FakePrometheus(["web-3", "web-1", "web-3"])
        #expect(try TargetResolver.resolve(rb, params: [:], prometheus: prometheus) == ["web": ["web-3", "web-1"]])
        #expect(prometheus.questions == [query])
    }

    @Test func aQueriedHostOutsideWithinRefusesTheRun() throws {
        let rb = try Self.runbook()
        #expect {
            try TargetResolver.resolve(rb, params: [:], prometheus: FakePrometheus(["web-1", "db-1"]))
        } throws: { ($0 as? TargetError)?.message.contains("host 'db-1' is not in") == true }
    }

    @Test(arguments: [
        (FakePrometheus([]), "no hosts: an empty target list is an error"),
        (FakePrometheus([], failure: "cannot ask Prometheus at http://prom:9090: connection refused"), "cannot ask Prometheus at http://prom:9090: connection refused"),
        (FakePrometheus(["-oProxyCommand=x"]), "label instance of up{job=\"shop\"} == 1 gave host '-oProxyCommand=x' starts with '-'"),
    ])
    func anEmptyAnswerOrNoAnswerRefusesTheRun(prometheus: FakePrometheus, expected: String) throws {
        let rb = try Self.runbook()
        #expect {
            try TargetResolver.resolve(rb, params: [:], prometheus: prometheus)
        } throws: { error in
            let e = error as? TargetError
            return e?.target == "web" && e?.message.contains(expected) == true
        }
    }

    @Test func withoutAPrometheusClientTheRunIsRefusedNotWidened() throws {
        let rb = try Self.runbook()
        #expect(throws: TargetError.self) { try TargetResolver.resolve(rb, params: [:]) }
    }

    @Test func aDrillActsOnEveryHostOfWithin() throws {
        let rb = try Self.runbook()
        #expect(try TargetResolver.resolve(rb, params: [:], prometheus: RehearsedPrometheusLookup()) == ["web": ["web-1", "web-2", "web-3"]])
    }

    @Test(arguments: [
        ("  web: { prometheus: { url: \"http://prom:9090\", query: up, label: instance } }", "takes hosts from a Prometheus query: add within: INVENTORY"),
        ("  web: { prometheus: { url: \"http://prom:9090\", query: up }, within: inventory }", "label"),
        ("  web: { prometheus: { url: \"prom\", query: up, label: instance }, within: inventory }", "has no scheme"),
        ("  web: { prometheus: { url: \"http://prom:9090\", query: up, label: \"in-stance\" }, within: inventory }", "is not a label name"),
        ("  web: { prometheus: { url: \"http://prom:9090\", query: 'up{job=\"{{ alert.labels.job }}\"}', label: instance }, within: inventory }", "must be plain text, not a template"),
        ("  web: { prometheus: { url: \"http://prom:9090\", query: up, label: instance }, group: web, within: inventory }", "group goes with inventory:, not prometheus:"),
        ("  web: { prometheus: { url: \"http://prom:9090\", query: up, label: instance }, inventory: inventory }", "exactly one of"),
    ])
    func refusesBadQuerySourcesWithTheirPosition(targets: String, expected: String) throws {
        let dir = try FleetLoadTests.folder()
        let found = diagnostics(FleetLoadTests.yaml(targets: targets, across: "{ targets: web }"), file: dir + "/t.yaml")
        #expect(found.contains { $0.message.contains(expected) && $0.location.line > 1 }, "\(found)")
    }

    @Test func theGrammarAndTheSpecNameTheSameFields() {
        #expect(RunbookGrammar.prometheusTargets.fields.map(\.name).sorted() == PrometheusTargets.fieldNames.sorted())
    }
}
