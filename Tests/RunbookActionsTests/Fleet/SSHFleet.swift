import Foundation
import RunbookTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Throwaway OpenSSH hosts for fleet tests: one `sshd -D` listening on loopback addresses
/// 127.0.0.2, 127.0.0.3... (one a host) with generated host and user keys, and an ssh_config with
/// a `Host web-N` alias a host, plus `refused` (nothing listens), `blackhole` (a socket that never
/// answers) and `stranger` (a host whose key is not in known_hosts). Everything lives in a temp
/// folder; `stop()` ends sshd and removes it (call it in a `defer`).
final class SSHFleet: @unchecked Sendable {
    let dir: String
    let hosts: [String]
    let sshConfig: String
    let port: Int
    private var servers: [ChildServer] = []
    private let blackhole: Int32

    /// The probe a host runs: `probe.sh STATE HOST SECONDS FAILING`; it counts hosts running at
    /// once (`STATE/max`), logs `start HOST`/`end HOST` in `STATE/log` and fails when HOST is in
    /// the comma list FAILING. `SECONDS` of `hang` sleeps for 1000 s with a marker in its argv.
    var probe: String { dir + "/probe.sh" }
    var state: String { dir + "/state" }

    init(count: Int) throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/sshd") else { throw SSHFleetError.noSSHD }
        // Short: ssh's control sockets must fit in 108 bytes.
        dir = "/tmp/rbf-" + String(UUID().uuidString.prefix(8)).lowercased()
        try FileManager.default.createDirectory(atPath: dir + "/state", withIntermediateDirectories: true)
        _ = mkdir("/run/sshd", 0o755)
        for key in ["host_key", "id"] {
            let r = try Spawn.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fleet-test", "-f", dir + "/" + key])
            guard r.status == 0 else { throw SSHFleetError.setup("ssh-keygen: \(r.stderr)") }
        }
        try FileManager.default.copyItem(atPath: dir + "/id.pub", toPath: dir + "/authorized_keys")
        let hostKey = try String(contentsOfFile: dir + "/host_key.pub", encoding: .utf8).split(separator: " ").prefix(2).joined(separator: " ")
        try "fleet-sshd \(hostKey)\n".write(toFile: dir + "/known_hosts", atomically: true, encoding: .utf8)
        let port = freePort()
        self.port = port
        hosts = (1...count).map { "web-\($0)" }
        // sshd listens on at most 16 sockets: one sshd per 16 hosts.
        for (n, first) in stride(from: 1, through: count, by: 16).enumerated() {
            let listenLines = (first...min(count, first + 15)).map { "ListenAddress 127.0.0.\($0 + 1):\(port)" }.joined(separator: "\n")
            try """
                \(listenLines)
                HostKey \(dir)/host_key
                AuthorizedKeysFile \(dir)/authorized_keys
                PidFile none
                StrictModes no
                UsePAM no
                PasswordAuthentication no
                KbdInteractiveAuthentication no
                PermitRootLogin prohibit-password
                MaxStartups 500
                MaxSessions 200
                LogLevel ERROR

                """.write(toFile: dir + "/sshd_config.\(n)", atomically: true, encoding: .utf8)
        }

        // A socket that takes connections and never says a word: a silent host.
        // Close-on-exec: a child spawned meanwhile (Prometheus in another test) must not inherit it.
        let hole = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        blackhole = hole
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(hole, $0, len) } }
        _ = listen(hole, 64)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(hole, $0, &len) } }
        let silentPort = Int(UInt16(bigEndian: addr.sin_port))

        var config = (1...count).map { "Host web-\($0)\n  HostName 127.0.0.\($0 + 1)\n" }.joined()
        config += """
            Host refused
              HostName 127.0.0.1
              Port \(freePort())
            Host blackhole
              HostName 127.0.0.1
              Port \(silentPort)
            Host stranger
              HostName 127.0.0.2
              HostKeyAlias stranger
            Host *
              Port \(port)
              User \(String(cString: getpwuid(getuid())!.pointee.pw_name))
              IdentityFile \(dir)/id
              IdentitiesOnly yes
              UserKnownHostsFile \(dir)/known_hosts
              GlobalKnownHostsFile /dev/null
              HostKeyAlias fleet-sshd
              StrictHostKeyChecking no

            """
        sshConfig = dir + "/ssh_config"
        try config.write(toFile: sshConfig, atomically: true, encoding: .utf8)
        try """
            #!/bin/sh
            # probe.sh STATE HOST SECONDS FAILING
            d=$1; h=$2; s=$3
            ( flock 9; n=$(( $(cat "$d/running" 2>/dev/null || echo 0) + 1 )); echo $n > "$d/running"
              m=$(cat "$d/max" 2>/dev/null || echo 0); [ "$n" -gt "$m" ] && echo $n > "$d/max"; echo "start $h" >> "$d/log" ) 9>"$d/lock"
            if [ "$s" = hang ]; then sleep 1000 fleet-hang-marker-$h; else sleep "$s"; fi
            ( flock 9; echo $(( $(cat "$d/running") - 1 )) > "$d/running"; echo "end $h" >> "$d/log" ) 9>"$d/lock"
            case ",$4," in *",$h,"*) echo "$h fails on purpose" >&2; exit 1;; esac
            echo "$h ok"

            """.write(toFile: dir + "/probe.sh", atomically: true, encoding: .utf8)
        try """
            #!/bin/sh
            # argv.sh OUT HOST ARGS...: writes the argument count and each argument, one a line
            out=$1; h=$2; shift 2
            { echo "$#"; for a in "$@"; do printf '%s\\n' "$a"; done; } > "$out-$h"

            """.write(toFile: dir + "/argv.sh", atomically: true, encoding: .utf8)
        servers = try stride(from: 1, through: count, by: 16).enumerated().map { n, _ in
            try ChildServer.daemon(["/usr/sbin/sshd", "-D", "-e", "-f", dir + "/sshd_config.\(n)"])
        }
    }

    /// A fleet of `count` hosts whose sshd answers; stopped again, and an error thrown, when it never does.
    static func ready(count: Int) async throws -> SSHFleet {
        let fleet = try SSHFleet(count: count)
        guard await fleet.ready() else {
            fleet.stop()
            throw SSHFleetError.setup("sshd did not answer within its time")
        }
        return fleet
    }

    /// Waits until every host answers over ssh (sshd is up); false after `seconds`.
    func ready(seconds: Double = 240) async -> Bool {
        let config = sshConfig, last = hosts.last ?? "web-1"
        return await waitUntil(seconds) {
            (try? Spawn.run(["ssh", "-F", config, "-o", "BatchMode=yes", "-o", "ConnectTimeout=20", last, "true"]))?.status == 0
        }
    }

    /// `STATE/log` lines.
    var log: [String] {
        ((try? String(contentsOfFile: state + "/log", encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// Most hosts seen running at once.
    var maxRunning: Int {
        Int(((try? String(contentsOfFile: state + "/max", encoding: .utf8)) ?? "0").trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    }

    /// A runbooks folder holding `NAME.yaml` (`FLEET` in the text becomes this folder), and an
    /// inventory listing every host.
    func runbooks(_ yaml: String, name: String = "fleet", inventory: String? = nil) throws -> String {
        let rb = dir + "/rb"
        try FileManager.default.createDirectory(atPath: rb, withIntermediateDirectories: true)
        try (inventory ?? hosts.joined(separator: "\n") + "\n").write(toFile: rb + "/inventory", atomically: true, encoding: .utf8)
        try yaml.replacingOccurrences(of: "FLEET", with: dir).write(toFile: rb + "/\(name).yaml", atomically: true, encoding: .utf8)
        return rb
    }

    /// `runbook run NAME --json --yes` against these hosts; the JSON timeline and the exit status.
    func run(_ name: String = "fleet", runbooks: String, _ extra: [String] = []) async throws -> (status: Int32, events: [[String: Any]], stderr: String) {
        let r = try await runCLI(["run", name, "--runbooks", runbooks, "--state-dir", dir + "/st", "--json", "--yes", "--ssh-config", sshConfig] + extra)
        return (r.status, jsonLines(r.stdout), r.stderr)
    }

    func stop() {
        servers.forEach { $0.stop() }
        close(blackhole)
        try? FileManager.default.removeItem(atPath: dir)
    }
}

enum SSHFleetError: Error {
    case noSSHD
    case setup(String)
}

extension Array where Element == [String: Any] {
    /// Events named `name`, optionally of one status.
    func named(_ name: String, status: String? = nil) -> [[String: Any]] {
        filter { $0["event"] as? String == name && (status == nil || $0["status"] as? String == status) }
    }

    /// The `target` of each event named `name`, in order.
    func targets(_ name: String, status: String? = nil) -> [String] {
        named(name, status: status).compactMap { $0["target"] as? String }
    }

    var outcome: String? { named("run.finished").first?["outcome"] as? String }
}
