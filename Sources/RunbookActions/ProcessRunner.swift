import CRunbookSys
import Dispatch
import Foundation
import RunbookCore

#if canImport(Glibc)
import Glibc
#endif

/// How a child process ended.
public struct ProcessResult: Sendable {
    /// Exit status, when it exited.
    public var exitCode: Int32?
    /// Signal, when one killed it.
    public var signal: Int32?
    public var stdout: String
    public var stderr: String
    /// True when output beyond the cap was dropped.
    public var truncated: Bool
    public var duration: Double
    /// Set when the program could not be started at all.
    public var spawnError: String?
}

/// Runs argv commands without a shell, each as the leader of its own process group, and waits for
/// them with a pidfd read source: a waiting child holds no thread.
public enum ProcessRunner {
    /// Output kept per stream; the rest is counted and dropped.
    public static let outputCap = 64 * 1024

    /// Starts `argv`.
    /// - Parameters:
    ///   - environment: extra variables on top of this process's environment.
    ///   - queue: where `completion` runs (the child gets a serial queue targeting it).
    ///   - completion: called once.
    /// - Returns: a handle whose `cancel()` kills the whole process group (TERM, then KILL after a grace period).
    public static func run(argv: [String], environment: [String: String] = [:], cwd: String? = nil, queue: DispatchQueue,
                           completion: @escaping @Sendable (ProcessResult) -> Void) -> any Cancellable {
        let started = Date()
        guard let program = argv.first, !program.isEmpty else {
            queue.async { completion(ProcessResult(stdout: "", stderr: "", truncated: false, duration: 0, spawnError: "empty argv")) }
            return NothingToCancel()
        }
        var outPipe: [Int32] = [0, 0], errPipe: [Int32] = [0, 0]
        guard crb_pipe_cloexec(&outPipe) == 0, crb_pipe_cloexec(&errPipe) == 0 else {
            let message = String(cString: strerror(errno))
            queue.async { completion(ProcessResult(stdout: "", stderr: "", truncated: false, duration: 0, spawnError: "pipe: \(message)")) }
            return NothingToCancel()
        }
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        let envStrings = env.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let rc = withCStrings(argv) { cArgv in
            withCStrings(envStrings) { cEnv in
                crb_spawn(&pid, program, cArgv, cEnv, cwd, outPipe[1], errPipe[1])
            }
        }
        close(outPipe[1])
        close(errPipe[1])
        if rc != 0 {
            close(outPipe[0]); close(errPipe[0])
            let why = rc == ENOENT ? "program not found: \(program)" : "cannot start \(program): \(String(cString: strerror(rc)))"
            queue.async { completion(ProcessResult(exitCode: nil, signal: nil, stdout: "", stderr: "", truncated: false, duration: 0, spawnError: why)) }
            return NothingToCancel()
        }
        // The child's own serial queue: its output and exit sources must never run at once.
        let own = DispatchQueue(label: "runbook.process.\(pid)", target: queue)
        let child = RunningChild(pid: pid, queue: own, started: started, completion: completion)
        child.begin(outFD: outPipe[0], errFD: errPipe[0])
        return child
    }

    static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        pointers.append(nil)
        defer { for p in pointers { free(p) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}

/// One child: its output sources, its exit source and its kill switch.
final class RunningChild: Cancellable, @unchecked Sendable {
    // All mutable state is touched only on `queue`.
    let pid: pid_t
    let queue: DispatchQueue
    let started: Date
    var completion: (@Sendable (ProcessResult) -> Void)?
    var out = Data(), err = Data()
    var truncated = false
    var sources: [any DispatchSourceRead] = []
    var exitSource: (any DispatchSourceRead)?
    var killTimer: (any DispatchSourceTimer)?
    var pollTimer: (any DispatchSourceTimer)?
    var pidfd: Int32 = -1
    var fds: [Int32] = []

    init(pid: pid_t, queue: DispatchQueue, started: Date, completion: @escaping @Sendable (ProcessResult) -> Void) {
        self.pid = pid
        self.queue = queue
        self.started = started
        self.completion = completion
    }

    func begin(outFD: Int32, errFD: Int32) {
        queue.async { [self] in
            fds = [outFD, errFD]
            for fd in fds {
                _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
                let source = DispatchSource.makeReadSource(fileDescriptor: fd, queue: queue)
                source.setEventHandler { [self] in drain(fd, toStdout: fd == outFD) }
                // Close only once the source is gone: closing earlier lets a new descriptor reuse the
                // number while libdispatch still unregisters the old one, and the new source goes deaf.
                source.setCancelHandler { close(fd) }
                source.resume()
                sources.append(source)
            }
            pidfd = crb_pidfd_open(pid)
            if pidfd >= 0 {
                let s = DispatchSource.makeReadSource(fileDescriptor: pidfd, queue: queue)
                let fd = pidfd
                s.setEventHandler { [self] in reap() }
                s.setCancelHandler { close(fd) }
                s.resume()
                exitSource = s
            } else {
                pollForExit()
            }
        }
    }

    /// Fallback without pidfds: a timer polls waitpid, still without a blocked thread.
    func pollForExit() {
        let t = DispatchSource.makeTimerSource(queue: queue)
        t.schedule(deadline: .now() + .milliseconds(20), repeating: .milliseconds(20))
        t.setEventHandler { [self] in reap() }
        t.resume()
        pollTimer = t
    }

    func drain(_ fd: Int32, toStdout: Bool) {
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            let room = ProcessRunner.outputCap - (toStdout ? out.count : err.count)
            if room < n { truncated = true }
            if room > 0 {
                if toStdout { out.append(contentsOf: buffer[0..<min(n, room)]) } else { err.append(contentsOf: buffer[0..<min(n, room)]) }
            }
        }
    }

    func reap() {
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        // ECHILD: something else in this process reaped it (a SIGCHLD handler that waits for any child).
        // Report that rather than spin on a pidfd that stays readable.
        let stolen = r == -1 && errno == ECHILD
        guard r == pid || stolen else { return }
        // Read what is buffered now; a daemon started by the command may keep the pipes open, so do not wait for EOF.
        drain(fds[0], toStdout: true)
        drain(fds[1], toStdout: false)
        for s in sources { s.cancel() }
        exitSource?.cancel()
        killTimer?.cancel()
        pollTimer?.cancel()
        let exited = (status & 0x7f) == 0
        let result = ProcessResult(
            exitCode: stolen ? nil : exited ? (status >> 8) & 0xff : nil, signal: stolen || exited ? nil : status & 0x7f,
            stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: err, as: UTF8.self),
            truncated: truncated, duration: Date().timeIntervalSince(started),
            spawnError: stolen ? "exit status lost: the process was reaped elsewhere" : nil)
        completion?(result)
        completion = nil
    }

    /// Kills the whole process group: TERM now, KILL after two seconds if anything is left.
    func cancel() {
        queue.async { [self] in
            guard completion != nil else { return }
            kill(-pid, SIGTERM)
            let t = DispatchSource.makeTimerSource(queue: queue)
            t.schedule(deadline: .now() + .seconds(2))
            t.setEventHandler { [self] in kill(-pid, SIGKILL); t.cancel() }
            t.resume()
            // Cancelled at reap: a late SIGKILL must never reach a group id the kernel has reused.
            killTimer?.cancel()
            killTimer = t
        }
    }
}
