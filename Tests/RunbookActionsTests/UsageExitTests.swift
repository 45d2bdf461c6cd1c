import Foundation
import Testing

/// Usage errors exit 2, as every command's `--help` says (not ArgumentParser's 64).
@Suite(.timeLimit(.minutes(5)))
struct UsageExitTests {
    @Test(arguments: [
        ["run", "memory-leak", "--bogus"],
        ["run"],
        ["approve"],
        ["history", "--limit", "many"],
        ["frobnicate"],
    ])
    func aUsageErrorExitsTwoAndSaysWhy(args: [String]) throws {
        let r = try runCLI(args + ["--runbooks", repoRoot + "/runbooks"])
        #expect(r.status == 2, "\(args): exit \(r.status) \(r.stderr)")
        #expect(r.stderr.contains("Error:") || r.stderr.contains("error:"), "\(r.stderr)")
        #expect(r.stderr.contains("Usage:") || r.stderr.contains("--help"), "\(r.stderr)")
    }

    @Test func helpAndVersionExitZero() async throws {
        await #expect(try runCLI(["--help"]).status == 0)
        await #expect(try runCLI(["run", "--help"]).status == 0)
        await #expect(try runCLI(["--version"]).status == 0)
    }
}
