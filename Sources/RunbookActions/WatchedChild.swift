import CRunbookSys
import Dispatch
import Foundation
import RunbookCore

#if canImport(Glibc)
import Glibc
#endif

/// A spawn as the runner holds it: waiting for a slot, then running. Cancelling it before it
/// starts withdraws it; after, stops the process tree.
final class PendingSpawn: Cancellable, @unchecked Sendable {
    let argv: [String]
    let environment: [String: String]
    let cwd: String?
    let queue: DispatchQueue
    let completion: @Sendable (ProcessResult) -> Void
    unowned let watcher: ChildWatcher
    /// Tries so far after "text file busy" (touched only by the spawn path, one at a time).
    var attempts = 0
    // Guarded by `lock`.
    private let lock = NSLock()
    private var child: WatchedChild?
    private var cancelled = false

    init(argv: [String], environment: [String: String], cwd: String?, queue: DispatchQueue,
         completion: @escaping @Sendable (ProcessResult) -> Void, watcher: ChildWatcher) {
        self.argv = argv
        self.environment = environment
        self.cwd = cwd
        self.queue = queue
        self.completion = completion
        self.watcher = watcher
    }

    func started(_ c: WatchedChild) {
        let stopNow = lock.withLock { () -> Bool in
            child = c
            return cancelled
        }
        if stopNow { c.cancel() }
    }

    func cancel() {
        let c = lock.withLock { () -> WatchedChild? in
            cancelled = true
            return child
        }
        if let c { c.cancel() } else { _ = watcher.withdraw(self) }
    }
}

/// One watched child.
final class WatchedChild: Cancellable, @unchecked Sendable {
    let id: UInt64
    let pid: pid_t
    let cookie: String
    let queue: DispatchQueue
    let started: Date
    unowned let watcher: ChildWatcher
    // Watcher thread only:
    var outFD: Int32 = -1
    var errFD: Int32 = -1
    var pidfd: Int32 = -1
    var out = Data(), err = Data()
    var truncated = false
    var ended = false
    var completion: (@Sendable (ProcessResult) -> Void)?
    // Guarded by the watcher's lock:
    var killOwed = false
    var reported = false

    init(id: UInt64, pid: pid_t, cookie: String, queue: DispatchQueue, started: Date,
         completion: @escaping @Sendable (ProcessResult) -> Void, watcher: ChildWatcher) {
        self.id = id
        self.pid = pid
        self.cookie = cookie
        self.queue = queue
        self.started = started
        self.completion = completion
        self.watcher = watcher
    }

    func drain(stdout: Bool, epfd: Int32) {
        let fd = stdout ? outFD : errFD
        guard fd >= 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 16384)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n < 0, errno == EINTR { continue }
            if n < 0, errno == EAGAIN || errno == EWOULDBLOCK { return }
            if n <= 0 {
                // EOF or an error: this stream is done.
                _ = crb_epoll_del(epfd, fd)
                close(fd)
                if stdout { outFD = -1 } else { errFD = -1 }
                return
            }
            let room = ProcessRunner.outputCap - (stdout ? out.count : err.count)
            if room < n { truncated = true }
            if room > 0 {
                if stdout { out.append(contentsOf: buffer[0..<min(n, room)]) } else { err.append(contentsOf: buffer[0..<min(n, room)]) }
            }
        }
    }

    func closePipes(epfd: Int32) {
        for fd in [outFD, errFD] where fd >= 0 {
            _ = crb_epoll_del(epfd, fd)
            close(fd)
        }
        outFD = -1
        errFD = -1
    }

    func report(exitCode: Int32?, signal: Int32?, spawnError: String?) {
        guard let completion else { return }
        self.completion = nil
        let result = ProcessResult(exitCode: exitCode, signal: signal,
                                   stdout: String(decoding: out, as: UTF8.self), stderr: String(decoding: err, as: UTF8.self),
                                   truncated: truncated, duration: Date().timeIntervalSince(started), spawnError: spawnError)
        watcher.markReported(self)
        queue.async { completion(result) }
    }

    /// Stops the whole process tree: TERM now, KILL after the grace period.
    func cancel() { watcher.stop(self) }
}
