import CRunbookSys
import Foundation
import Testing
import RunbookTestSupport

/// No command outlives its engine: a child is bound to the engine's life (PR_SET_PDEATHSIG), so
/// kill -9 of `runbook run` mid-command kills the command too, and the record it leaves is true.
@Suite(.timeLimit(.minutes(5)))
struct EngineDeathTests {
    static let holding = """
        runbook: hold
        steps:
          - id: hold
            phase: mitigate
            command: ["sh", "-c", "echo $$ > DIR/cmd.pid; exec sleep 3600"]
            timeout: 2h
          - id: after
            phase: mitigate
            needs: [hold]
            command: ["touch", "DIR/after-ran"]

        """

    /// Waits (bounded far above any load) until `body` is true.
    static func eventually(_ seconds: Double = 120, _ body: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if body() { return true }
            usleep(20_000)
        }
        return body()
    }

    /// Blocks until `process` has exited, at most `seconds`; true when it did.
    static func waitForExit(_ process: PinnedProcess, seconds: Int32 = 120) -> Bool {
        process.hasExited(within: seconds)
    }

    /// A command that leaves a grandchild in its process group (not bound to the engine's life).
    static let leaving = """
        runbook: hold
        steps:
          - id: hold
            phase: mitigate
            command: ["sh", "-c", "(exec sleep 3600) & echo $! > DIR/gc.pid; echo $$ > DIR/cmd.pid; wait"]
            timeout: 2h

        """

    /// Reads a pid a command wrote to `path`, waiting (bounded far above any load) until it is there.
    static func pid(in path: String) -> Int32? {
        var pid: Int32?
        _ = eventually {
            pid = Int32((try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "")
            return pid != nil
        }
        return pid
    }

    @Test func whatADeadRunLeftInItsStepsProcessGroupIsKilledBeforeItIsFinalised() async throws {
        let dir = try runbookSandbox(Self.leaving, name: "hold")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let state = dir + "/state"
        let run = try LiveProgram([runbookBinary, "run", "hold", "--runbooks", dir + "/rb", "--state-dir", state, "--json", "--yes"])
        var ended = false
        defer { if !ended { run.signal(SIGKILL); _ = run.wait() } }
        let pids = try await offPool { () -> (Int32?, Int32?) in
            _ = run.readLine(containing: "\"event\":\"step.started\"")
            return (Self.pid(in: dir + "/cmd.pid"), Self.pid(in: dir + "/gc.pid"))
        }
        // Pinned while the engine still runs them, so that nothing below reaches a later owner of their pids.
        let (command, grandchild) = (PinnedProcess(try #require(pids.0, "the command never started")),
                                     PinnedProcess(try #require(pids.1, "no grandchild")))
        defer { grandchild.signal(SIGKILL) }
        run.signal(SIGKILL)
        _ = try await offPool { run.wait() }
        ended = true
        #expect(try await offPool { Self.waitForExit(command) }, "the command outlived the engine")
        // The grandchild is not bound to the engine: it is still there until someone ends the run.
        #expect(grandchild.isAlive, "the grandchild died before the run was finalised")
        let history = try await runCLI(["history", "--json", "--state-dir", state])
        #expect(try await offPool { Self.waitForExit(grandchild) }, "finalising the dead run left its step's grandchild running")
        let row = try #require(jsonLines(history.stdout).first)
        #expect(row["outcome"] as? String == "interrupted", "\(history.stdout)")
    }

    @Test func killingRunbookRunKillsTheRunningCommandAndTheRecordSaysSo() async throws {
        let dir = try runbookSandbox(Self.holding, name: "hold")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let state = dir + "/state"
        let run = try LiveProgram([runbookBinary, "run", "hold", "--runbooks", dir + "/rb", "--state-dir", state, "--json", "--yes"])
        var ended = false
        defer { if !ended { run.signal(SIGKILL); _ = run.wait() } }
        let commandPID = try await offPool { () -> Int32? in
            _ = run.readLine(containing: "\"event\":\"step.started\"")
            var pid: Int32?
            _ = Self.eventually {
                pid = Int32((try? String(contentsOfFile: dir + "/cmd.pid", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "")
                return pid != nil
            }
            return pid
        }
        let pid = PinnedProcess(try #require(commandPID, "the command never started"))
        #expect(pid.isAlive)
        run.signal(SIGKILL)
        _ = try await offPool { run.wait() }
        ended = true
        let died = try await offPool { Self.waitForExit(pid) }
        if !died { pid.signal(SIGKILL) }
        #expect(died, "the command outlived the engine that ran it")
        // The next command finalises the dead run: interrupted at `hold`, and `after` never ran.
        let history = try await runCLI(["history", "--json", "--state-dir", state])
        let row = try #require(jsonLines(history.stdout).first)
        #expect(row["outcome"] as? String == "interrupted", "\(history.stdout)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/after-ran"))
    }
}
