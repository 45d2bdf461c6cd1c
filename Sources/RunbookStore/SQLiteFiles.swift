import Foundation
import RunbookCore
import RunbookStoreContract

#if canImport(Glibc)
import Glibc
#endif

/// Appends each event to a JSON Lines file with one `write(2)`, so a crash loses at most the event
/// being written. A write that fails (full disk, read-only folder) is reported to `health`, which
/// stops the run: a run that cannot be recorded changes nothing more.
public final class TimelineFileSink: DurableTimeline, @unchecked Sendable {
    // The descriptor is only written through write(2) with O_APPEND, which is atomic per call.
    let fd: Int32
    let path: String
    let health: RecordHealth?

    public init(path: String, health: RecordHealth? = nil) throws {
        self.path = path
        self.health = health
        fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError(path: path, operation: "create", errno: errno) }
    }

    deinit { close(fd) }

    public func record(_ event: TimelineEvent) {
        do { try write(event) } catch { health?.report("\(error)") }
    }

    public func record(_ events: [TimelineEvent]) {
        do { try write(events) } catch { health?.report("\(error)") }
    }

    /// Appends one event, or throws where and why it could not (a short write is undone).
    public func write(_ event: TimelineEvent) throws {
        try write([event])
    }

    /// Appends events with one write(2), or none of them (a short write is undone).
    public func write(_ events: [TimelineEvent]) throws {
        guard !events.isEmpty else { return }
        var text = ""
        for e in events { text += e.jsonLine() + "\n" }
        let bytes = Array(text.utf8)
        let before = lseek(fd, 0, SEEK_END)
        let n = bytes.withUnsafeBufferPointer { Glibc.write(fd, $0.baseAddress!, $0.count) }
        if n != bytes.count {
            let code = n < 0 ? errno : ENOSPC
            // Never leave half a line: a later reader would see it as damaged.
            if n > 0, before >= 0 { _ = ftruncate(fd, before) }
            throw StoreError(path: path, operation: "write", errno: code)
        }
    }
}

/// A run's liveness lease: an exclusive `flock` on `runs/ID.lease`, held by the process that runs
/// it. The kernel drops it when that process dies, however it dies, so a free lease on an open run
/// means its owner is gone.
public final class RunLease: FencedRunHold, @unchecked Sendable {
    // The descriptor is closed once and the epoch set on a takeover, both guarded by `lock`.
    private let lock = NSLock()
    private var fd: Int32
    private var epoch: Int64 = 1
    let path: String

    /// The run (the lease file's name) and the epoch its owner writes under.
    public var currentFence: RunFence {
        let name = (path as NSString).lastPathComponent
        return RunFence(runID: name.hasSuffix(".lease") ? String(name.dropLast(6)) : name, epoch: lock.withLock { epoch })
    }

    /// This owner took the run over: it writes under `epoch` from now on.
    func takeOver(epoch e: Int64) { lock.withLock { epoch = e } }

    init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    /// Creates and takes the lease for a new run.
    static func take(path: String) throws -> RunLease {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StoreError(path: path, operation: "create", errno: errno) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(fd)
            throw StoreError(path: path, operation: "lock", errno: code)
        }
        return RunLease(fd: fd, path: path)
    }

    /// The lease of an open run when nobody holds it (its owner died); nil while its owner lives.
    static func takeIfFree(path: String) -> RunLease? {
        let fd = open(path, O_RDWR | O_CLOEXEC)
        // No lease file: the run predates leases, or its owner died before creating it.
        if fd < 0 { return errno == ENOENT ? RunLease(fd: -1, path: path) : nil }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            close(fd)
            return nil
        }
        return RunLease(fd: fd, path: path)
    }

    /// True for a lease of a run that had no lease file (nothing is held).
    var isPlaceholder: Bool { lock.withLock { fd < 0 } }

    /// Gives the lease up and deletes its file (the run is over).
    public func release() { release(removing: true) }

    /// Gives the lease up; `removing` deletes the file first (the run is final).
    public func release(removing: Bool) {
        lock.withLock {
            if removing { unlink(path) }
            if fd >= 0 { close(fd); fd = -1 }
        }
    }

    deinit { if fd >= 0 { close(fd) } }
}
