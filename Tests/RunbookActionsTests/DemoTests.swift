import Foundation
import RunbookTestSupport
import Testing

/// The reference incident end to end: examples/memory-leak/demo.sh against the real leaky shop.
@Suite(.timeLimit(.minutes(10)))
struct DemoTests {
    @Test func memoryLeakDemoMitigatesTheShop() async throws {
        let state = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: state) }
        let binDir = (runbookBinary as NSString).deletingLastPathComponent
        try #require(FileManager.default.isExecutableFile(atPath: binDir + "/leaky-shop"), "leaky-shop is not built beside runbook")
        let r = try Spawn.run(["bash", repoRoot + "/examples/memory-leak/demo.sh"],
                              environment: ["DEMO_BIN": binDir, "RUNBOOK_STATE_DIR": state, "KEEP_DEMO": "1", "NO_COLOR": "1"])
        #expect(r.status == 0, "demo failed:\n\(r.stdout.suffix(3000))\n\(r.stderr.suffix(2000))")

        let history = try await runCLI(["history", "--json", "--state-dir", state])
        let run = try #require(jsonLines(history.stdout).first)
        #expect(run["runbook"] as? String == "memory-leak")
        #expect(run["outcome"] as? String == "mitigated")
        let runID = try #require(run["id"] as? String)

        let events = await jsonLines(try runCLI(["timeline", runID, "--json", "--state-dir", state]).stdout)
        let flag = events.first { $0["event"] as? String == "change.applied" && $0["step"] as? String == "disable-image-resize" }
        #expect(flag?["from"] as? String == "on")
        #expect(flag?["to"] as? String == "off")
        let restart = events.first { $0["event"] as? String == "change.applied" && $0["step"] as? String == "restart-shop" }
        let from = restart?["from"] as? String, to = restart?["to"] as? String
        #expect(from != nil && to != nil && from != to, "pid did not change: \(String(describing: restart))")
        let flat = events.last { $0["event"] as? String == "step.finished" && $0["step"] as? String == "memory-flat" }
        #expect(flat?["status"] as? String == "passed")
        if let slope = (flat?["output"] as? [String: Any])?["slope_bytes_per_s"] as? Double {
            #expect(slope < 100 * 1024, "memory still grows: \(slope) B/s")
        } else { Issue.record("no slope recorded for memory-flat") }
        // The flag file the shop reads says off.
        let flagsFile = try #require((events.first?["params"] as? [String: String])?["flags_file"])
        let flags = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: flagsFile))) as? [String: Any]
        #expect(((flags?["flags"] as? [String: Any])?["image-resize"] as? [String: Any])?["defaultVariant"] as? String == "off")
        try? FileManager.default.removeItem(atPath: (flagsFile as NSString).deletingLastPathComponent)

        let postmortem = try await runCLI(["postmortem", runID, "--state-dir", state, "--runbooks", repoRoot + "/runbooks"]).stdout
        for section in ["## Issue Summary", "## Timeline", "## Root Cause and Resolution", "## Corrective and Preventative Measures"] {
            #expect(postmortem.contains(section), "postmortem lacks \(section)")
        }
        let timelineEntries = postmortem.split(separator: "\n").filter { $0.range(of: #"^- \d\d:\d\d:\d\d - "#, options: .regularExpression) != nil }
        #expect(timelineEntries.count >= 5, "\(timelineEntries.count) timeline entries")
    }
}
