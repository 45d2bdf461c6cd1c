import Foundation
import Testing
import RunbookTestSupport

/// `serve --token-file` fails closed: a token file it cannot read as meant stops it from starting.
@Suite(.timeLimit(.minutes(5)))
struct TokenFileTests {
    /// Starts `serve` with `text` as its token file (mode `mode`); bounded, so a server that wrongly
    /// started cannot outlive the test.
    static func serve(tokens text: String, mode: mode_t = 0o600) throws -> (status: Int32, stderr: String) {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/rb", withIntermediateDirectories: true)
        try text.write(toFile: dir + "/tokens", atomically: true, encoding: .utf8)
        chmod(dir + "/tokens", mode)
        let r = try Spawn.run(["timeout", "20", runbookBinary, "serve", "--listen", "127.0.0.1:0", "--token-file", dir + "/tokens",
                               "--runbooks", dir + "/rb", "--state-dir", dir + "/state"])
        return (r.status, r.stderr)
    }

    @Test(arguments: [
        ("alice:tok-onecolon-0123456789", "one colon"),
        ("alice:operator", "one colon"),
        ("dash:reader tok-typo-0123456789", "one colon"),
        ("bob:superuser:token-0123456789abc", "unknown role 'superuser'"),
        ("x", "token of 1 characters"),
        ("carol:operator:short", "token of 5 characters"),
    ])
    func aMalformedLineStopsTheServerNamingTheLine(line: String, says: String) async throws {
        let r = try await offPool { try Self.serve(tokens: "# tokens\n" + line + "\n") }
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("/tokens:2:"), "\(r.stderr)")
        #expect(r.stderr.contains(says), "\(r.stderr)")
    }

    @Test(arguments: [0o644 as mode_t, 0o666, 0o640, 0o604])
    func aTokenFileOpenToOthersIsRefusedNamingTheFix(mode: mode_t) async throws {
        let r = try await offPool { try Self.serve(tokens: "ops:operator:ops-token-0123456789\n", mode: mode) }
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("chmod 600"), "\(r.stderr)")
    }
}
