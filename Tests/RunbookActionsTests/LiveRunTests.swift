import Dispatch
import Foundation
import RunbookActions
import RunbookCore
import RunbookTestSupport
import Testing

/// Whole runs on the Dispatch driver with the live executor: real processes, real files.
@Suite(.timeLimit(.minutes(10)))
struct LiveRunTests {
    func flagRunbook(_ dir: String, verifyPasses: Bool) -> String {
        """
        runbook: t
        steps:
          - id: off
            phase: mitigate
            flag: { file: \(dir)/flags.json, key: image-resize, variant: "off" }
          - id: check
            phase: verify
            check: { command: ["\(verifyPasses ? "true" : "false")"] }

        """
    }

    @Test func failedVerifyRestoresTheFlagFileByteForByte() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try flagFileText.write(toFile: dir + "/flags.json", atomically: true, encoding: .utf8)
        let r = try await runRunbook(flagRunbook(dir, verifyPasses: false), in: dir)
        #expect(r.outcome == .failed)
        #expect(r.events.contains { $0.event == "change.applied" && $0.from == "on" && $0.to == "off" })
        #expect(r.events.contains { $0.event == "undo.finished" && $0.status == "passed" })
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/flags.json")) == Data(flagFileText.utf8))
    }

    @Test func passedVerifyLeavesTheFlagChanged() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try flagFileText.write(toFile: dir + "/flags.json", atomically: true, encoding: .utf8)
        let r = try await runRunbook(flagRunbook(dir, verifyPasses: true), in: dir)
        #expect(r.outcome == .mitigated)
        let (value, _) = try FlagFileReader.locate(in: Data(contentsOf: URL(fileURLWithPath: dir + "/flags.json")), key: "image-resize", field: "defaultVariant")
        #expect(value == "\"off\"")
    }

    @Test func killsAHungCommandAndItsChildrenAtTheTimeout() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let marker = "hung-\(UUID().uuidString.prefix(8))"
        let yaml = """
        runbook: t
        steps:
          - id: hang
            phase: diagnose
            check: { command: ["sh", "-c", "sleep 97 & sleep 98; echo \(marker)"] }
            timeout: 500ms

        """
        let r = try await runRunbook(yaml, in: dir)
        #expect(r.status("hang") == "timed-out")
        #expect(r.outcome == .completed)
        #expect(await waitUntil(5) { !processAlive(matching: "sleep 97") && !processAlive(matching: "sleep 98") })
    }

    @Test func aParamWithShellMetacharactersIsOneLiteralArgument() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let yaml = """
        runbook: t
        params:
          name: { default: x }
        steps:
          - id: echo
            phase: diagnose
            check: { command: ["printf", "<%s>", "{{ params.name }}"] }

        """
        let hostile = "$(touch \(dir)/pwned); `touch \(dir)/pwned2` | rm -rf \(dir) && echo \"hi\""
        let r = try await runRunbook(yaml, params: ["name": hostile], in: dir)
        let out = r.events.first { $0.step == "echo" && $0.event == "step.finished" }?.stdout
        #expect(out == "<\(hostile)>")
        #expect(!FileManager.default.fileExists(atPath: dir + "/pwned"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/pwned2"))
    }

    @Test func dryRunLeavesEveryFileUntouched() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try flagFileText.write(toFile: dir + "/flags.json", atomically: true, encoding: .utf8)
        let yaml = """
        runbook: t
        steps:
          - id: look
            phase: detect
            check: { command: ["true"] }
          - id: off
            phase: mitigate
            flag: { file: \(dir)/flags.json, key: image-resize, variant: "off" }
          - id: touch
            phase: mitigate
            command: ["touch", "\(dir)/made"]
          - id: restart
            phase: mitigate
            needs: [off]
            restart: { command: ["touch", "\(dir)/restarted"] }
          - id: flat
            phase: verify
            check: { command: ["true"] }

        """
        let before = try FileManager.default.attributesOfItem(atPath: dir + "/flags.json")[.modificationDate] as? Date
        let r = try await runRunbook(yaml, dryRun: true, in: dir)
        #expect(r.outcome == .mitigated)
        #expect(r.status("look") == "passed")
        #expect(r.status("off") == "would-change")
        #expect(r.status("touch") == "would-change")
        #expect(r.status("restart") == "would-change")
        let offEvent = r.events.first { $0.step == "off" && $0.event == "step.finished" }
        #expect(offEvent?.message == "would set flag image-resize: on -> off in \(dir)/flags.json")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/flags.json")) == Data(flagFileText.utf8))
        #expect(try FileManager.default.attributesOfItem(atPath: dir + "/flags.json")[.modificationDate] as? Date == before)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["flags.json"])
        #expect(!r.events.contains { $0.event == "change.applied" })
    }

    @Test func aThousandWaitingStepsDoNotMeanAThousandThreads() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/rb", withIntermediateDirectories: true)
        let yaml = "runbook: waits\nsteps:\n" + (0..<1000).map { "  - id: w\($0)\n    phase: mitigate\n    wait: 2s\n" }.joined()
        try yaml.write(toFile: dir + "/rb/waits.yaml", atomically: true, encoding: .utf8)
        // A child process of its own, so other tests' threads do not count.
        let child = try Spawn.start([runbookBinary, "run", "waits", "--runbooks", dir + "/rb", "--state-dir", dir + "/state", "--json"])
        // Sample on a thread of its own, so a busy test pool cannot starve it.
        let peakBox = PeakBox()
        Thread.detachNewThread {
            while true {
                let n = ThreadSampler.threads(of: "\(child.pid)")
                if n == 0 { break }
                peakBox.record(n)
                usleep(20_000)
            }
        }
        // Waited for on a thread of its own: parked here, it held a cooperative thread (one of two on
        // a 2-core machine) for the whole run.
        let result = try await offPool { child.wait() }
        let peak = peakBox.value
        #expect(result.status == 0)
        #expect(peak > 0)
        #expect(peak < 32, "peak threads \(peak)")
        let runFile = try FileManager.default.contentsOfDirectory(atPath: dir + "/state/runs").first { $0.hasSuffix(".jsonl") } ?? ""
        let events = try String(contentsOfFile: dir + "/state/runs/" + runFile, encoding: .utf8)
        #expect(events.components(separatedBy: "\"status\":\"passed\"").count - 1 == 1000)
        // With no --max-parallel, waits are not capped: all 1,000 start before the first one ends.
        let lines = events.split(separator: "\n")
        let lastStart = lines.lastIndex { $0.contains("\"event\":\"step.started\"") } ?? 0
        let firstEnd = lines.firstIndex { $0.contains("\"event\":\"step.finished\"") } ?? 0
        #expect(lastStart < firstEnd, "waits were held back by the process cap")
    }

    @Test func interruptStopsTheRunAndUndoes() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try flagFileText.write(toFile: dir + "/flags.json", atomically: true, encoding: .utf8)
        let yaml = """
        runbook: t
        steps:
          - id: off
            phase: mitigate
            flag: { file: \(dir)/flags.json, key: image-resize, variant: "off" }
          - id: slow
            phase: mitigate
            needs: [off]
            command: ["sleep", "30"]

        """
        let r = try await runRunbook(yaml, in: dir, interruptWhenStarted: "slow")
        #expect(r.outcome == .interrupted)
        #expect(r.status("slow") == "failed")
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/flags.json")) == Data(flagFileText.utf8))
        #expect(RunOutcome.interrupted.exitCode == 130)
    }
}

/// The largest count seen, shared with the sampling thread.
final class PeakBox: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var peak = 0
    func record(_ n: Int) { lock.withLock { peak = max(peak, n) } }
    var value: Int { lock.withLock { peak } }
}

/// Reads thread counts from /proc.
enum ThreadSampler {
    static func threads(of pid: String = "self") -> Int {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = s.split(separator: "\n").first(where: { $0.hasPrefix("Threads:") }) else { return 0 }
        return Int(line.dropFirst(8).trimmingCharacters(in: .whitespaces)) ?? 0
    }
}
