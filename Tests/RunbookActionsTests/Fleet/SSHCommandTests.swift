import Foundation
import Testing
import RunbookCore
import RunbookTestSupport
@testable import RunbookActions

/// The ssh argv and the remote command string: every element one word for the remote shell.
struct SSHCommandTests {
    static let hostile = [
        "; rm -rf /", "$(touch /tmp/pwned)", "`id`", "a'b", "'", "''", "\\", "\"quoted\"", "x\ny", "*", "~root", "$HOME",
        "a b\tc", "-n", "--", "", "!event", "{a,b}", "#comment", "&& true", "| cat", "> /tmp/x", "é ü 中",
    ]

    @Test(arguments: hostile)
    func aHostileValueStaysOneLiteralArgumentForPOSIXSh(_ value: String) async throws {
        // The remote side is a POSIX shell reading the string: run the same string in dash and bash.
        let remote = SSHCommand.remote(["printf", "%s\\n---\\n", value, "end"], timeout: nil)
        for shell in ["/bin/sh", "/bin/bash"] where FileManager.default.isExecutableFile(atPath: shell) {
            let r = try Spawn.run([shell, "-c", remote])
            #expect(r.status == 0)
            #expect(r.stdout == "\(value)\n---\nend\n---\n", "\(shell): \(remote)")
        }
    }

    @Test func theWatchdogKeepsTheExitStatusAndQuotesEnvAndCwd() async throws {
        let remote = SSHCommand.remote(["sh", "-c", "echo \"$X\"; pwd; exit 3"], env: [("X", "a'b $(c)")], cwd: "/tmp", timeout: 30)
        let r = try Spawn.run(["/bin/sh", "-c", remote])
        #expect(r.status == 3)
        #expect(r.stdout == "a'b $(c)\n/tmp\n")
    }

    @Test func theArgvForcesBatchModeAndHostKeyCheckingAndPutsTheHostAfterDashDash() {
        var settings = SSHSettings(configFile: "/etc/fleet/ssh_config", controlDirectory: "/var/lib/runbook/ssh/serve")
        settings.connectTimeout = 10
        let argv = SSHCommand.argv(FleetTarget(host: "web-1", user: "deploy"), remote: "'true'", settings: settings, stepTimeout: 5)
        #expect(argv.prefix(3) == ["ssh", "-F", "/etc/fleet/ssh_config"])
        for option in ["BatchMode=yes", "StrictHostKeyChecking=yes", "ControlMaster=auto", "ControlPath=/var/lib/runbook/ssh/serve/%C",
                       "ControlPersist=30s", "ConnectTimeout=4", "ServerAliveInterval=5"] {
            #expect(argv.contains(option), "\(option) missing from \(argv)")
        }
        #expect(Array(argv.suffix(5)) == ["deploy", "-T", "--", "web-1", "'true'"])
        // ConnectTimeout is 10 s by default and never more than the step's timeout.
        #expect(SSHCommand.argv(FleetTarget(host: "h"), remote: "", settings: settings, stepTimeout: 60).contains("ConnectTimeout=10"))
        #expect(SSHCommand.argv(FleetTarget(host: "h"), remote: "", settings: settings, stepTimeout: 1).contains("ConnectTimeout=1"))
    }
}
