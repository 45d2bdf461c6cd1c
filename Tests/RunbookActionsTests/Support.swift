import Dispatch
import Foundation
import RunbookActions
import RunbookCore

/// A fresh temporary folder, removed by the caller's `defer`.
func temporaryFolder() -> String {
    let path = NSTemporaryDirectory() + "runbook-test-\(UUID().uuidString)"
    try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
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
let repoRoot: String = {
    var url = URL(fileURLWithPath: #filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
    }
    return FileManager.default.currentDirectoryPath
}()

/// Runs the CLI and returns exit status, stdout and stderr.
@discardableResult
func runCLI(_ args: [String], cwd: String? = nil, environment: [String: String] = [:]) throws -> (status: Int32, stdout: String, stderr: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: runbookBinary)
    p.arguments = args
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    var env = ProcessInfo.processInfo.environment
    env["NO_COLOR"] = "1"
    for (k, v) in environment { env[k] = v }
    p.environment = env
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
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

/// A helper server in a child process: started on 127.0.0.1, stopped by `stop()` or when this process ends
/// (it exits when its stdin closes).
final class ChildServer: @unchecked Sendable {
    let process = Process()
    let input = Pipe()
    let output = Pipe()
    /// The first line the child printed (the port for the target server).
    private(set) var firstLine = ""

    init(_ argv: [String], environment: [String: String] = [:]) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = argv
        process.standardInput = input
        process.standardOutput = output
        process.standardError = FileHandle(forWritingAtPath: "/dev/null")
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        process.environment = env
        try process.run()
    }

    /// Starts the test target and reads its port.
    static func target() throws -> (ChildServer, Int) {
        let s = try ChildServer(["python3", repoRoot + "/Tests/Fixtures/target_server.py"])
        var line = Data()
        while true {
            let byte = s.output.fileHandleForReading.readData(ofLength: 1)
            if byte.isEmpty || byte == Data("\n".utf8) { break }
            line.append(byte)
        }
        s.firstLine = String(decoding: line, as: UTF8.self)
        guard let port = Int(s.firstLine) else { s.stop(); throw CocoaError(.fileReadCorruptFile) }
        return (s, port)
    }

    func stop() {
        try? input.fileHandleForWriting.close()
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }
}

/// POSTs to the target server's control endpoints.
func control(_ port: Int, _ path: String) throws {
    var done = false
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", "import urllib.request,sys; urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=b'', method='POST')).read()", "http://127.0.0.1:\(port)\(path)"]
    try p.run()
    p.waitUntilExit()
    done = p.terminationStatus == 0
    if !done { throw CocoaError(.fileWriteUnknown) }
}

/// GETs a URL's body with python (independent of the code under test).
func fetch(_ url: String) throws -> String {
    let p = Process()
    let out = Pipe()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", "import urllib.request,sys; sys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())", url]
    p.standardOutput = out
    try p.run()
    let d = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return String(decoding: d, as: UTF8.self)
}
