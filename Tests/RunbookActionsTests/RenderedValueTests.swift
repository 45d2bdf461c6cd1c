import Foundation
import RunbookActions
import RunbookCore
import Testing

/// A value written as a template passes `validate` and is checked once rendered, when the step runs:
/// the step errors (it could not measure) or fails, saying what is wrong, and nothing is sent.
@Suite(.timeLimit(.minutes(10)))
struct RenderedValueTests {
    func finished(_ check: String, params: String, given: [String: String]) async throws -> TimelineEvent? {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let yaml = "runbook: t\nparams:\n\(params)steps:\n  - id: c\n    phase: diagnose\n    check:\n      \(check)\n"
        let r = try await runRunbook(yaml, params: given, in: dir)
        return r.events.last { $0.event == "step.finished" && $0.step == "c" }
    }

    @Test func aRenderedURLWithoutASchemeIsRefusedWhenTheStepRuns() async throws {
        let e = try await finished("http: { url: \"{{ params.base }}/health\" }",
                                   params: "  base: { default: x, pattern: \"[a-z.:/0-9]+\" }\n", given: ["base": "shop.internal"])
        #expect(e?.status == "errored", "\(e?.message ?? "")")
        #expect(e?.message == "bad URL 'shop.internal/health': it has no scheme (write it like http://host:8080/path)", "\(e?.message ?? "")")
    }

    @Test func aRenderedPortOutOfRangeFailsTheStep() async throws {
        let e = try await finished("tcp: { host: 127.0.0.1, port: \"{{ params.port }}\" }",
                                   params: "  port: { default: \"1\", pattern: \"[0-9]+\" }\n", given: ["port": "70000"])
        #expect(e?.status == "failed", "\(e?.message ?? "")")
        #expect(e?.message == "port '70000' is not a number from 1 to 65535", "\(e?.message ?? "")")
    }
}
