import Foundation
import RunbookCore

/// How the engine reaches hosts: OpenSSH's client, with the user's keys, agent, known_hosts and
/// ssh_config (issue 22).
public struct SSHSettings: Sendable, Hashable {
    /// `--ssh-config FILE`, passed as `ssh -F FILE` (nil: the user's own).
    public var configFile: String?
    /// Folder for control sockets (under the state folder); nil: no connection sharing.
    public var controlDirectory: String?
    /// How long an idle master stays (`ControlPersist`): short for `runbook run`, which closes its
    /// masters when it ends anyway; longer for `serve`.
    public var controlPersist = "30s"
    /// `ConnectTimeout` when the step allows it (never more than the step's timeout).
    public var connectTimeout = 10
    /// `ServerAliveInterval`: a silent host is given up after three missed answers.
    public var serverAliveInterval = 5
    /// The client program.
    public var program = "ssh"

    public init(configFile: String? = nil, controlDirectory: String? = nil) {
        self.configFile = configFile
        self.controlDirectory = controlDirectory
    }
}

/// Builds the argv of one remote command: options that keep ssh from ever asking anything, the
/// host after `--`, and the remote command as one string in which every element is single-quoted
/// for the remote POSIX shell, so that a templated value stays one argument there too.
public enum SSHCommand {
    /// `'...'` for POSIX sh: the text as one word, whatever it holds (`'` becomes `'\''`).
    public static func quote(_ word: String) -> String {
        "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// The remote side: `cd` and `env` when asked, and a watchdog that stops the command when the
    /// host's time is up (the local ssh is stopped at the same moment, so the command stops on
    /// both sides). Every element of `argv` is quoted, so the remote shell parses none of it.
    public static func remote(_ argv: [String], env: [(String, String)] = [], cwd: String? = nil, timeout: Double?) -> String {
        var words: [String] = []
        if !env.isEmpty { words += ["env"] + env.map { quote("\($0.0)=\($0.1)") } }
        words += argv.map(quote)
        let command = words.joined(separator: " ")
        let prefix = cwd.map { "cd \(quote($0)) && " } ?? ""
        guard let timeout else { return prefix + "exec " + command }
        // POSIX sh, no coreutils `timeout` needed: the watchdog's descriptors go to /dev/null so
        // that the session ends with the command, not with the watchdog's sleep.
        let secs = max(1, Int(timeout.rounded(.up)))
        return prefix + command + " & c=$!; (sleep \(secs); kill -TERM $c; sleep 2; kill -KILL $c) </dev/null >/dev/null 2>&1 & w=$!; wait $c; s=$?; kill $w 2>/dev/null; exit $s"
    }

    /// The local argv: `ssh [-F FILE] -o ... [-l USER] -- HOST REMOTE`.
    /// - Parameters:
    ///   - stepTimeout: the step's per-host timeout; `ConnectTimeout` never exceeds it.
    public static func argv(_ target: FleetTarget, remote: String, settings: SSHSettings, stepTimeout: Double) -> [String] {
        var out = [settings.program]
        if let f = settings.configFile { out += ["-F", f] }
        // Below the host's timeout, so that a silent host is reported as unreachable (errored), not as a
        // command that ran too long (timed-out).
        let connect = max(1, min(settings.connectTimeout, Int((stepTimeout * 0.8).rounded(.down))))
        // Command-line options win over any ssh_config: StrictHostKeyChecking=yes is forced.
        var options = [
            "BatchMode=yes", "StrictHostKeyChecking=yes", "ConnectTimeout=\(connect)",
            "ServerAliveInterval=\(settings.serverAliveInterval)", "ServerAliveCountMax=3",
            "LogLevel=ERROR", "RequestTTY=no",
        ]
        if let dir = settings.controlDirectory {
            options += ["ControlMaster=auto", "ControlPath=\(dir)/%C", "ControlPersist=\(settings.controlPersist)"]
        } else {
            options += ["ControlMaster=no", "ControlPath=none"]
        }
        for o in options { out += ["-o", o] }
        if let user = target.user { out += ["-l", user] }
        out += ["-T", "--", target.host, remote]
        return out
    }

    /// What a failed ssh means: 255 is ssh's own failure (the host was not reached: refused,
    /// silent, unknown host key), reported as `errored`.
    public static func unreachable(exitCode: Int32?, stderr: String) -> String? {
        guard exitCode == 255 else { return nil }
        let line = stderr.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.last { !$0.isEmpty } ?? "ssh failed"
        return "ssh: \(line)"
    }
}
