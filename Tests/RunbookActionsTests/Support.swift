import Dispatch
import Foundation
import RunbookActions
import RunbookCore
import CRunbookSys
import RunbookTestSupport

/// A fresh temporary folder, removed by the caller's `defer`.
func temporaryFolder() -> String {
    let path = NSTemporaryDirectory() + "runbook-test-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

/// A temporary folder for one test: the runbook `rb/NAME.yaml` (`DIR` in its text becomes the
/// folder), an empty `rb/drills/`, `flags.json` holding `flagFileText`, and a token file `tokens`
/// when `tokens` is given. The caller removes it.
func runbookSandbox(_ yaml: String, name: String, tokens: String? = nil) throws -> String {
    let dir = temporaryFolder()
    try FileManager.default.createDirectory(atPath: dir + "/rb/drills", withIntermediateDirectories: true)
    try yaml.replacingOccurrences(of: "DIR", with: dir).write(toFile: dir + "/rb/\(name).yaml", atomically: true, encoding: .utf8)
    try flagFileText.write(toFile: dir + "/flags.json", atomically: true, encoding: .utf8)
    if let tokens { try writeTokenFile(tokens, to: dir + "/tokens") }
    return dir
}

/// The built `runbook` executable, beside the test bundle.
let runbookBinary: String = {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
    while dir.path != "/" {
        let candidate = dir.appendingPathComponent("runbook").path
        if FileManager.default.isExecutableFile(atPath: candidate), !candidate.hasSuffix(".xctest") { return candidate }
        dir.deleteLastPathComponent()
    }
    return "runbook"
}()

/// The repository root.
let repoRoot = TestPaths.repoRoot

/// Runs the CLI and returns exit status, stdout and stderr.
@discardableResult
func runCLI(_ args: [String], cwd: String? = nil, environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
    var env = environment
    env["NO_COLOR"] = "1"
    let r = try Spawn.run([runbookBinary] + args, environment: env, cwd: cwd)
    return (r.status, r.stdout, r.stderr)
}

/// `runCLI` from async code: the command runs and is waited for on a thread of its own, never on one
/// of Swift concurrency's few cooperative threads (with two cores there are two, and a test that
/// held one for a whole run starved every other test of the suite on a busy machine).
func runCLI(_ args: [String], cwd: String? = nil, environment: [String: String] = [:]) async throws -> (status: Int32, stdout: String, stderr: String) {
    try await offPool { try runCLI(args, cwd: cwd, environment: environment) }
}

/// Parses JSON Lines output into objects.
func jsonLines(_ text: String) -> [[String: Any]] {
    text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
}

/// Whether any process whose command line contains `needle` is alive.
func processAlive(matching needle: String) -> Bool {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return false }
    for pid in entries where Int(pid) != nil {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { continue }
        let cmd = String(decoding: data.map { $0 == 0 ? 32 : $0 }, as: UTF8.self)
        if let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), stat.contains(") Z ") { continue }
        if cmd.contains(needle) { return true }
    }
    return false
}

let flagFileText = """
{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "flags": {
    "image-resize": {
      "state": "ENABLED",
      "variants": { "on": true, "off": false },
      "defaultVariant": "on",
      "targeting": { "if": [ { "in": ["@beta", { "var": "email" }] }, "off", null ] }
    },
    "other":   {"state":"ENABLED","variants":{"a":1,"b":2},"defaultVariant":"b"}
  },
  "metadata": { "owner": "web" }
}

"""

/// A helper server in a child process, in a process group of its own: started on 127.0.0.1, stopped by
/// `stop()` (the whole group), or when this process ends (it exits when its stdin closes).
/// Spawned with an empty signal mask: Foundation's Process would pass on test threads' blocked SIGTERM.
final class ChildServer: @unchecked Sendable {
    let pid: pid_t
    private let stdinWrite: Int32
    private let stdoutRead: Int32
    private let lock = NSLock()
    private var stopped = false

    init(_ argv: [String]) throws {
        var input: [Int32] = [0, 0], output: [Int32] = [0, 0]
        guard crb_pipe_cloexec(&input) == 0, crb_pipe_cloexec(&output) == 0 else { throw CocoaError(.fileWriteUnknown) }
        let devnull = open("/dev/null", O_WRONLY | O_CLOEXEC)
        var child: pid_t = 0
        let full = ["/usr/bin/env"] + argv
        var cArgs: [UnsafeMutablePointer<CChar>?] = full.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        let rc = crb_spawn_io(&child, "/usr/bin/env", &cArgs, nil, nil, input[0], output[1], devnull)
        close(input[0]); close(output[1]); close(devnull)
        guard rc == 0 else { close(input[1]); close(output[0]); throw CocoaError(.executableLoad) }
        pid = child
        stdinWrite = input[1]
        stdoutRead = output[0]
    }

    /// Reads one line the child printed.
    func readLine() -> String {
        var line = [UInt8]()
        var byte: UInt8 = 0
        var n = 0
        while true {
            n = read(stdoutRead, &byte, 1)
            if n != 1 || byte == 10 { break }
            line.append(byte)
        }
        if n <= 0 { lock.withLock { eof = true } }
        return String(decoding: line, as: UTF8.self)
    }

    /// Starts the test target and reads its port.
    static func target() throws -> (ChildServer, Int) {
        let s = try ChildServer(["python3", repoRoot + "/Tests/Fixtures/target_server.py"])
        guard let port = Int(s.readLine()) else { s.stop(); throw CocoaError(.fileReadCorruptFile) }
        return (s, port)
    }

    /// Runs a server that does not watch its stdin under a shell that kills it when stdin closes,
    /// so it goes away with the test process even after a crash.
    /// Its output goes to `log` when given (to say why it did not start), else nowhere.
    static func daemon(_ argv: [String], log: String? = nil) throws -> ChildServer {
        let quote = { (s: String) in "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'" }
        let quoted = argv.map(quote).joined(separator: " ")
        let sink = log.map(quote) ?? "/dev/null"
        return try ChildServer(["bash", "-c", "\(quoted) >>\(sink) 2>&1 & p=$!; cat >/dev/null; kill $p 2>/dev/null; wait $p"])
    }

    /// Starts `runbook serve` on 127.0.0.1 port 0 and reads the port it bound from its output; the rest
    /// of its output is drained so it never blocks on a full pipe.
    static func serve(_ args: [String]) async throws -> (ChildServer, Int) {
        let child = try ChildServer([runbookBinary, "serve", "--listen", "127.0.0.1:0"] + args)
        guard let port = try await child.servePort() else { child.stop(); throw CocoaError(.fileReadCorruptFile) }
        return (child, port)
    }

    /// Reads `runbook serve`'s output until it names the port it bound; then drains the rest.
    func servePort() async throws -> Int? {
        let port = try await offPool { () -> Int? in
            while true {
                let line = self.readLine()
                if let r = line.range(of: "listening on http://127.0.0.1:") { return Int(line[r.upperBound...]) }
                if line.isEmpty, !self.isOpen { return nil }
            }
        }
        drainOutput()
        return port
    }

    /// False once stdout reached its end.
    var isOpen: Bool { lock.withLock { !eof } }
    private var eof = false

    /// Reads and drops the rest of stdout on a thread of its own.
    func drainOutput() {
        let fd = stdoutRead
        lock.withLock { draining = true }
        Thread.detachNewThread {
            var buffer = [UInt8](repeating: 0, count: 65536)
            while read(fd, &buffer, buffer.count) > 0 {}
            close(fd)
        }
    }
    private var draining = false

    /// Stops the whole group: TERM, then KILL after five seconds.
    func stop() {
        let first = lock.withLock { () -> Bool in defer { stopped = true }; return !stopped }
        guard first else { return }
        close(stdinWrite)
        kill(-pid, SIGTERM)
        // The leader is reaped only after the group's KILL: while it is a zombie its pid (the group's
        // id) stays reserved, so the KILL cannot reach a later group that took that number.
        for _ in 0..<100 {
            if EngineTrustTests.processState(pid).map({ $0 == "Z" || $0 == "X" }) ?? true { break }
            usleep(50_000)
        }
        kill(-pid, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
        if !lock.withLock({ draining }) { close(stdoutRead) }
    }
}

/// Kills the processes a (dead) engine process started for its steps: each carries the engine's
/// cookie `RUNBOOK_STEP_COOKIE=ENGINEPID-N` in its environment. Nothing else is touched.
func killProcesses(startedByEngine engine: pid_t) {
    let needle = Array("\u{0}RUNBOOK_STEP_COOKIE=\(engine)-".utf8)
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return }
    for name in entries {
        guard let pid = Int32(name), pid != getpid(),
              let env = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { continue }
        let bytes = [0] + [UInt8](env)
        if bytes.count >= needle.count, (0...(bytes.count - needle.count)).contains(where: { bytes[$0..<($0 + needle.count)].elementsEqual(needle) }) {
            kill(pid, SIGKILL)
        }
    }
}

/// POSTs to the target server's control endpoints.
func control(_ port: Int, _ path: String) throws {
    let r = try Spawn.run(["python3", "-c", "import urllib.request,sys; urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=b'', method='POST')).read()", "http://127.0.0.1:\(port)\(path)"])
    if r.status != 0 { throw CocoaError(.fileWriteUnknown) }
}

/// GETs a URL's body with python (independent of the code under test).
func fetch(_ url: String) throws -> String {
    try Spawn.run(["python3", "-c", "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())", url]).stdout
}

/// A port nothing listens on right now.
func freePort() -> Int {
    // Close-on-exec: a daemon spawned meanwhile by another test must not keep the port bound.
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) } }
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// Polls until `condition` holds or `seconds` pass.
func waitUntil(_ seconds: Double, _ condition: () -> Bool) async -> Bool {
    let end = Date().addingTimeInterval(seconds)
    while Date() < end {
        if condition() { return true }
        try? await Task.sleep(for: .milliseconds(100))
    }
    return condition()
}

/// The TCP ports that `root` or any of its descendants listen on (from /proc), for servers started
/// on port 0 that do not say which port they got.
func listeningPorts(under root: pid_t) -> [Int] {
    // Processes under root, by parent links.
    var parent: [Int32: Int32] = [:]
    for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
        guard let pid = Int32(name), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { continue }
        let fields = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
        if fields.count > 1, let ppid = Int32(fields[1]) { parent[pid] = ppid }
    }
    func under(_ pid: Int32) -> Bool {
        var p = pid
        for _ in 0..<64 {
            if p == root { return true }
            guard let up = parent[p], up > 1 else { return false }
            p = up
        }
        return false
    }
    var inodes = Set<String>()
    for pid in parent.keys where under(pid) {
        for fd in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? [] {
            if let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)"), target.hasPrefix("socket:[") {
                inodes.insert(String(target.dropFirst(8).dropLast()))
            }
        }
    }
    var ports: [Int] = []
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in ((try? String(contentsOfFile: table, encoding: .utf8)) ?? "").split(separator: "\n").dropFirst() {
            let f = line.split(separator: " ")
            // local_address is f[1] (HEX_IP:HEX_PORT), st is f[3] (0A = LISTEN), inode is f[9].
            guard f.count > 9, f[3] == "0A", inodes.contains(String(f[9])),
                  let portHex = f[1].split(separator: ":").last, let port = Int(portHex, radix: 16) else { continue }
            ports.append(port)
        }
    }
    return Array(Set(ports)).sorted()
}

/// Waits until `root` (or a descendant) listens on a TCP port, and returns it. A Prometheus-family
/// daemon (Prometheus, Alertmanager) that logs to `log` says the port it bound ("Listening on"
/// address=HOST:PORT): that line is read too, so a machine that hides /proc's socket tables does
/// not matter. The margin is far above a loaded machine's start-up time.
func waitForListeningPort(under root: pid_t, log: String? = nil, seconds: Double = 180) async -> Int? {
    var found: Int?
    _ = await waitUntil(seconds) {
        found = log.flatMap(loggedListeningPort) ?? listeningPorts(under: root).first
        return found != nil
    }
    return found
}

/// The port in a Prometheus-style `msg="Listening on" address=127.0.0.1:PORT` log line.
func loggedListeningPort(_ log: String) -> Int? {
    guard let text = try? String(contentsOfFile: log, encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.contains("msg=\"Listening on\"") {
        guard let r = line.range(of: "address=") else { continue }
        let address = line[r.upperBound...].prefix { !$0.isWhitespace }
        if let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]), port > 0 { return port }
    }
    return nil
}

/// The last lines of a daemon's log, for a failure message.
func logTail(_ log: String, lines: Int = 15) -> String {
    let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? "(no log at \(log))"
    return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
}

/// Writes a token file readable by its owner only, as `serve` requires.
func writeTokenFile(_ text: String, to path: String) throws {
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    guard chmod(path, 0o600) == 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
}

/// A JSON object's field as text ("" when the object or field is missing, or not a string), for
/// expectations on messages.
func jsonText(_ object: [String: Any]?, _ key: String) -> String { object?[key] as? String ?? "" }
