import Dispatch
import Foundation
import RunbookActions
import RunbookCore
import Testing

@Suite(.timeLimit(.minutes(10)))
struct ProcessRunnerTests {
    func run(_ argv: [String], env: [String: String] = [:], cancelAfter: Double? = nil) async -> ProcessResult {
        await withCheckedContinuation { (c: CheckedContinuation<ProcessResult, Never>) in
            let q = DispatchQueue(label: "t")
            let handle = ProcessRunner.run(argv: argv, environment: env, queue: q) { c.resume(returning: $0) }
            if let t = cancelAfter { q.asyncAfter(deadline: .now() + t) { handle.cancel() } }
        }
    }

    @Test func capturesExitStatusAndOutput() async {
        let r = await run(["sh", "-c", "echo out; echo err >&2; exit 3"])
        #expect(r.exitCode == 3)
        #expect(r.stdout == "out\n")
        #expect(r.stderr == "err\n")
        #expect(r.signal == nil)
    }

    @Test func killsTheWholeProcessGroupOnCancel() async throws {
        let marker = "runbook-orphan-check-\(UUID().uuidString.prefix(8))"
        // The background sleep says its pid before the leader becomes `sleep 101`.
        let r = await run(["sh", "-c", "sleep 100 & echo $!; exec sleep 101 # \(marker)", marker], cancelAfter: 3)
        #expect(r.signal == SIGTERM)
        let pid = try #require(Int32(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)), "no pid: \(r.stdout)")
        // The process now at that pid is the group's `sleep 100`, or that one has exited.
        let sleeper = PinnedProcess(pid) { argv, _ in argv == ["sleep", "100"] }
        #expect(await waitUntil(30) { sleeper.hasExited() }, "the background sleep \(pid) of the group survived")
        sleeper.signal(SIGKILL)
    }

    @Test func passesHostileTextAsOneLiteralArgument() async {
        let hostile = "a b; rm -rf / $(id) `id` | cat && echo pwned"
        let r = await run(["printf", "[%s]", hostile])
        #expect(r.stdout == "[\(hostile)]")
    }

    @Test func capsOutput() async {
        let r = await run(["sh", "-c", "head -c 200000 /dev/zero | tr '\\0' x"])
        #expect(r.stdout.utf8.count == ProcessRunner.outputCap)
        #expect(r.truncated)
    }

    @Test func reportsAMissingProgram() async {
        let r = await run(["/nonexistent/program"])
        #expect(r.spawnError?.contains("not found") == true)
    }

    @Test func doesNotWaitForDaemonsThatKeepThePipesOpen() async {
        // The daemon sleeps 300 s: returning far sooner (a margin no load reaches) shows it was not waited for.
        let r = await run(["sh", "-c", "sleep 300 & echo $!; exit 0"])
        #expect(r.exitCode == 0)
        #expect(r.duration < 240, "waited for the background sleep to close the pipe")
        // End exactly the daemon this test started.
        if let pid = Int32(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) {
            PinnedProcess(pid) { argv, _ in argv == ["sleep", "300"] }.signal(SIGKILL)
        }
    }
}
