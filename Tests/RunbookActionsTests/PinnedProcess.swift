import CRunbookSys
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A process a test learned the pid of (from a pid file, a line of output), pinned by a pidfd.
///
/// Pids wrap at 32,768 here, and a busy parallel suite goes through them in minutes: a pid read from
/// a file may by now belong to another test's process. Waiting on or signalling a pinned process goes
/// through its pidfd, so it can never reach a later process that took the same pid. Pin as soon as the
/// pid is read, while the process is known to be alive; when that is not known, give `isTheOne`,
/// which looks at the process now holding the pid (its argv and environment) and says whether it is
/// the one meant. A process that is gone (or is not the one) when pinned counts as exited.
final class PinnedProcess: @unchecked Sendable {
    let pid: Int32
    /// -1 when the process was gone, or was not the one, when pinned.
    private let fd: Int32

    /// - Parameter isTheOne: given the process's argv (NUL-separated `/proc/PID/cmdline`) and its
    ///   environment (`/proc/PID/environ`), whether it is the process meant.
    init(_ pid: Int32, isTheOne: ((_ argv: [String], _ environment: [String]) -> Bool)? = nil) {
        self.pid = pid
        var fd = pid > 0 ? crb_pidfd_open(pid) : -1
        // Checked after the pidfd is open: if the pid changed hands in between, the pidfd's process
        // has exited and the check reads its successor, which can only make it count as exited.
        if fd >= 0, let isTheOne, !isTheOne(Self.strings("/proc/\(pid)/cmdline"), Self.strings("/proc/\(pid)/environ")) {
            close(fd)
            fd = -1
        }
        self.fd = fd
    }

    deinit { if fd >= 0 { close(fd) } }

    /// NUL-separated strings of a /proc file (empty when unreadable).
    static func strings(_ path: String) -> [String] {
        guard let data = FileManager.default.contents(atPath: path) else { return [] }
        return data.split(separator: 0, omittingEmptySubsequences: true).map { String(decoding: $0, as: UTF8.self) }
    }

    /// Whether it has exited (or was gone when pinned), waiting up to `seconds` (0: now).
    func hasExited(within seconds: Int32 = 0) -> Bool {
        guard fd >= 0 else { return true }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, seconds * 1000) == 1
    }

    var isAlive: Bool { !hasExited() }

    /// Sends `sig` to this process only (nothing when it has exited).
    func signal(_ sig: Int32) {
        guard fd >= 0 else { return }
        _ = crb_pidfd_send_signal(fd, sig)
    }
}
