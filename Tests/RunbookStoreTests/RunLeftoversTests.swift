import Foundation
import RunbookCore
import RunbookStoreContract
import Testing

/// A new owner kills what the last owner's running steps left, and looks only where a process can be.
struct RunLeftoversTests {
    /// A `sleep` marked as step `step` of run `run`, as the engine marks a step's processes.
    static func markedSleep(run: String, step: String) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/sleep")
        p.arguments = ["300"]
        p.environment = ["PATH": "/usr/bin:/bin", RunLeftovers.variable: RunLeftovers.mark(runID: run, step: step)]
        try p.run()
        return p
    }

    static func events(_ run: String, running step: String) -> [TimelineEvent] {
        var started = TimelineEvent(time: Date(), run: run, event: "step.started")
        started.step = step
        return [TimelineEvent(time: Date(), run: run, event: "run.started"), started]
    }

    @Test func aRunningStepsMarkedProcessIsKilledAndAStepThatStartsNoneIsNotLookedFor() async throws {
        let run = "r-leftovers-\(UInt32.random(in: 0...UInt32.max))"
        let p = try Self.markedSleep(run: run, step: "cmd")
        defer { if p.isRunning { p.terminate() } }
        // The child shows its own environment once it has exec'd `sleep`; until then, the parent's.
        let mark = RunLeftovers.variable + "=" + RunLeftovers.mark(runID: run, step: "cmd")
        for _ in 0..<2000 {
            var seen = false
            ProcessScan.forEachProcess(withEnvironmentEntry: mark) { if $0 == p.processIdentifier { seen = true } }
            if seen { break }
            try await Task.sleep(for: .milliseconds(5))
        }
        // The step's action starts no process (say it is a wait): nothing is scanned, nothing killed.
        #expect(RunLeftovers.kill(runID: run, events: Self.events(run, running: "cmd"), mayHaveProcesses: { _ in false }) == 0)
        #expect(p.isRunning)
        // A step that may have left processes: its marked process dies.
        let killed = RunLeftovers.kill(runID: run, events: Self.events(run, running: "cmd"), mayHaveProcesses: { $0 == "cmd" })
        #expect(killed == 1)
        if killed == 0 { p.terminate() }
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            Thread { p.waitUntilExit(); c.resume() }.start()
        }
        #expect(p.terminationReason == .uncaughtSignal && p.terminationStatus == SIGKILL)
    }

    @Test func waitsAndNetworkChecksStartNoProcessCommandsAndRestartsMay() throws {
        let rb = try RunbookLoader.load(text: """
            runbook: kinds
            steps:
              - { id: w, phase: diagnose, wait: 1s }
              - { id: h, phase: diagnose, check: { http: { url: "http://127.0.0.1:9/" } } }
              - { id: t, phase: diagnose, check: { tcp: { host: 127.0.0.1, port: 9 } } }
              - { id: c, phase: diagnose, check: { command: ["true"] } }
              - { id: m, phase: mitigate, command: ["true"] }
            """, file: "kinds.yaml")
        let starts = Dictionary(uniqueKeysWithValues: rb.steps.map { ($0.id, $0.action.spec.mayStartProcesses) })
        #expect(starts == ["w": false, "h": false, "t": false, "c": true, "m": true])
    }
}
