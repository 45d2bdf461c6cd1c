import CRunbookSys
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Runs helper programs from tests without Foundation's `Process`, which reaps children it did not
/// start (stealing the engine's exit statuses) and passes on test threads' blocked signals.
public enum Spawn {
    /// The result of a finished program.
    public struct Output: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
        /// stdout and stderr together.
        public var output: String { stdout + stderr }
    }

    /// A started program.
    public struct Child: Sendable {
        public let pid: pid_t
        let stdoutFD: Int32
        let stderrFD: Int32

        /// Reads both streams to the end and waits for the exit status.
        public func wait() -> Output {
            let group = DispatchGroup()
            let box = Collected()
            for (fd, isOut) in [(stdoutFD, true), (stderrFD, false)] {
                group.enter()
                Thread.detachNewThread {
                    var data = Data()
                    var buffer = [UInt8](repeating: 0, count: 65536)
                    while true {
                        let n = read(fd, &buffer, buffer.count)
                        if n <= 0 { break }
                        data.append(contentsOf: buffer[0..<n])
                    }
                    close(fd)
                    box.set(isOut, data)
                    group.leave()
                }
            }
            group.wait()
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1, errno == EINTR {}
            let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
            return Output(status: code, stdout: String(decoding: box.out, as: UTF8.self), stderr: String(decoding: box.err, as: UTF8.self))
        }
    }

    final class Collected: @unchecked Sendable {
        // Guarded by `lock`.
        private let lock = NSLock()
        private var o = Data(), e = Data()
        func set(_ isOut: Bool, _ d: Data) { lock.withLock { if isOut { o = d } else { e = d } } }
        var out: Data { lock.withLock { o } }
        var err: Data { lock.withLock { e } }
    }

    /// Starts `argv` (looked up in PATH), in its own process group, stdin from /dev/null.
    public static func start(_ argv: [String], environment: [String: String] = [:], cwd: String? = nil) throws -> Child {
        let (pid, out, err) = try spawnWithPipes(argv, environment: environment, cwd: cwd)
        return Child(pid: pid, stdoutFD: out, stderrFD: err)
    }

    /// Spawns `argv` with stdout and stderr on pipes; returns the pid and the read ends.
    static func spawnWithPipes(_ argv: [String], environment: [String: String], cwd: String?) throws -> (pid_t, Int32, Int32) {
        var out: [Int32] = [0, 0], err: [Int32] = [0, 0]
        guard crb_pipe_cloexec(&out) == 0, crb_pipe_cloexec(&err) == 0 else { throw POSIXError(.EMFILE) }
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        var cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        var cEnv: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { cArgs.forEach { free($0) }; cEnv.forEach { free($0) } }
        var pid: pid_t = 0
        let rc = crb_spawn_io(&pid, argv[0], &cArgs, &cEnv, cwd, -1, out[1], err[1])
        close(out[1]); close(err[1])
        guard rc == 0 else { close(out[0]); close(err[0]); throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .ENOENT) }
        return (pid, out[0], err[0])
    }

    /// Runs `argv` to the end.
    @discardableResult
    public static func run(_ argv: [String], environment: [String: String] = [:], cwd: String? = nil) throws -> Output {
        try start(argv, environment: environment, cwd: cwd).wait()
    }
}

/// Where tests find the repository's files.
public enum TestPaths {
    /// The repository root: the nearest folder above this source file holding Package.swift.
    public static let repoRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        while url.path != "/" {
            url.deleteLastPathComponent()
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Package.swift").path) { return url.path }
        }
        return FileManager.default.currentDirectoryPath
    }()
}

/// A program whose output is read as it comes, line by line, and which can be signalled or have
/// its stdout closed under it (as `| head -1` does). Blocking: call it off the cooperative pool.
public final class LiveProgram: @unchecked Sendable {
    public let pid: pid_t
    // Touched by one test thread at a time.
    private var stdoutFD: Int32
    private let stderrFD: Int32
    private var buffer: [UInt8] = []
    private let errLock = NSLock()
    private var errData = Data()
    private let errDone = DispatchSemaphore(value: 0)
    /// Every line read so far.
    public private(set) var lines: [String] = []

    public init(_ argv: [String], environment: [String: String] = [:], cwd: String? = nil) throws {
        let (child, out, err) = try Spawn.spawnWithPipes(argv, environment: environment, cwd: cwd)
        pid = child
        stdoutFD = out
        stderrFD = err
        let fd = err
        Thread.detachNewThread { [self] in
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let n = read(fd, &chunk, chunk.count)
                if n <= 0 { break }
                errLock.withLock { errData.append(contentsOf: chunk[0..<n]) }
            }
            close(fd)
            errDone.signal()
        }
    }

    /// The next line of stdout, or nil at its end.
    public func readLine() -> String? {
        while true {
            if let nl = buffer.firstIndex(of: 10) {
                let line = String(decoding: buffer[..<nl], as: UTF8.self)
                buffer.removeSubrange(...nl)
                lines.append(line)
                return line
            }
            guard stdoutFD >= 0 else { return nil }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = read(stdoutFD, &chunk, chunk.count)
            if n <= 0 { return nil }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }

    /// Reads lines until one contains `needle`; nil when stdout ends first.
    public func readLine(containing needle: String) -> String? {
        while let line = readLine() {
            if line.contains(needle) { return line }
        }
        return nil
    }

    /// Closes our end of its stdout: its next write fails with EPIPE.
    public func closeStdout() {
        if stdoutFD >= 0 { close(stdoutFD); stdoutFD = -1 }
    }

    public func signal(_ sig: Int32) { kill(pid, sig) }

    /// Reads stdout to its end (unless closed), waits for the exit, and returns the exit status
    /// (128 + signal when killed) and everything it wrote to stderr.
    public func wait() -> (status: Int32, stderr: String) {
        while readLine() != nil {}
        closeStdout()
        errDone.wait()
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1, errno == EINTR {}
        let code = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (code, errLock.withLock { String(decoding: errData, as: UTF8.self) })
    }
}

/// Runs blocking work (waiting for processes, reading pipes) on a thread of its own, never on the
/// cooperative pool, and awaits its result.
public func offPool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { c in
        Thread.detachNewThread { c.resume(with: Result { try body() }) }
    }
}
