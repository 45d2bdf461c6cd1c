import Foundation
import Testing
@testable import RunbookCore

/// `targets:` and `across:` are decoded and checked at load, with FILE:LINE:COL.
struct FleetLoadTests {
    static func folder(_ inventory: String = "web-1\nweb-2\nweb-3\n") throws -> String {
        let dir = NSTemporaryDirectory() + "fleet-load-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try inventory.write(toFile: dir + "/inventory", atomically: true, encoding: .utf8)
        return dir
    }

    static func yaml(targets: String, across: String, check: String = "") -> String {
        """
        runbook: t
        params:
          host: { default: web-1, pattern: "[a-z0-9-]+" }
        targets:
        \(targets)
        steps:
          - id: restart
            phase: mitigate
            across: \(across)
            command: [systemctl, restart, shop]
        \(check)
        """
    }

    @Test func decodesTargetsAndAcross() throws {
        let dir = try Self.folder()
        let text = Self.yaml(targets: "  web: { inventory: inventory, user: deploy, max: 10 }",
                             across: "{ targets: web, concurrency: 10%, max_errors: 1, ramp: true, pause: 2s, canary: { hosts: 2, verify: healthy } }",
                             check: "  - id: healthy\n    phase: verify\n    across: { targets: web }\n    check: { http: { url: \"http://{{ target.host }}:8080/health\" } }")
        let rb = try RunbookLoader.load(text: text, file: dir + "/t.yaml")
        let set = try #require(rb.targetSet("web"))
        #expect(set.source == .inventory(path: PathParam.canonical(dir + "/inventory"), group: nil))
        #expect(set.user == "deploy" && set.max == 10)
        let a = try #require(rb.step("restart")?.across)
        #expect(a.concurrency == .percent(10) && a.maxErrors == .count(1) && a.ramp && a.pause == 2)
        #expect(a.canary == AcrossSpec.Canary(hosts: 2, verify: "healthy"))
        #expect(try TargetResolver.resolve(rb, params: [:]) == ["web": ["web-1", "web-2", "web-3"]])
    }

    @Test(arguments: [
        ("  web: { hosts: [\"{{ params.host }}\"] }", "{ targets: web }", "add within: INVENTORY"),
        ("  web: { hosts: [] }", "{ targets: web }", "an empty target list is an error"),
        ("  web: { hosts: [web-1] }", "{ targets: webs }", "no target set 'webs'"),
        ("  web: { hosts: [web-1] }", "{ targets: web, concurrency: lots }", "is not a count or a share"),
        ("  web: { hosts: [web-1] }", "{ targets: web, concurrency: 0 }", "must be at least 1"),
        ("  web: { hosts: [\"-oProxyCommand=x\"] }", "{ targets: web }", "starts with '-'"),
        ("  web: { inventory: missing.ini }", "{ targets: web }", "cannot read the inventory file"),
        ("  web: { inventory: inventory, group: nope }", "{ targets: web }", "has no group 'nope'"),
        ("  web: { hosts: [web-1] }", "{ targets: web, canary: { verify: nope } }", "canary.verify: no step 'nope'"),
    ])
    func refusesBadFleetsWithTheirPosition(targets: String, across: String, expected: String) throws {
        let dir = try Self.folder()
        let found = diagnostics(Self.yaml(targets: targets, across: across), file: dir + "/t.yaml")
        #expect(found.contains { $0.message.contains(expected) && $0.location.line > 1 }, "\(found)")
    }

    @Test func targetHostOutsideAnAcrossStepIsAnError() throws {
        let text = """
        runbook: t
        steps:
          - id: c
            phase: diagnose
            check: { tcp: { host: "{{ target.host }}", port: 22 } }
        """
        #expect(diagnostics(text).contains { $0.message.contains("has no across:") && $0.location.line == 5 })
    }

    @Test func aHostOutsideWithinOrAnEmptySetRefusesTheRun() throws {
        let dir = try Self.folder()
        let text = Self.yaml(targets: "  web: { hosts: [\"{{ params.host }}\"], within: inventory }", across: "{ targets: web }")
        let rb = try RunbookLoader.load(text: text, file: dir + "/t.yaml")
        #expect(try TargetResolver.resolve(rb, params: ["host": .string("web-2")]) == ["web": ["web-2"]])
        #expect(throws: TargetError.self) { try TargetResolver.resolve(rb, params: ["host": .string("evil-1")]) }
        #expect(throws: TargetError.self) { try TargetResolver.resolve(rb, params: ["host": .string("")]) }
        let empty = try Self.folder("# nobody\n")
        let rb2 = try RunbookLoader.load(text: Self.yaml(targets: "  web: { inventory: inventory }", across: "{ targets: web }"), file: empty + "/t.yaml")
        do { _ = try TargetResolver.resolve(rb2, params: [:]); Issue.record("empty set resolved") } catch {
            #expect(error.message.contains("an empty target list is an error"))
        }
    }

    @Test func maxRefusesALargerSet() throws {
        let dir = try Self.folder()
        let rb = try RunbookLoader.load(text: Self.yaml(targets: "  web: { inventory: inventory, max: 2 }", across: "{ targets: web }"), file: dir + "/t.yaml")
        do { _ = try TargetResolver.resolve(rb, params: [:]); Issue.record("over max resolved") } catch {
            #expect(error.message.contains("more than its max 2"))
        }
    }
}
