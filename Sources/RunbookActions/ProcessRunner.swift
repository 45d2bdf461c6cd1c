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

/// Runs argv commands without a shell, each as the leader of its own process group. The children
/// are watched by `ChildWatcher` (an epoll thread of its own): a waiting child holds no thread.
public enum ProcessRunner {
    /// Output kept per stream; the rest is counted and dropped.
    public static let outputCap = 64 * 1024

    /// Starts `argv`.
    /// - Parameters:
    ///   - environment: extra variables on top of this process's environment.
    ///   - queue: where `completion` runs.
    ///   - completion: called once.
    /// - Returns: a handle whose `cancel()` stops the whole process tree (TERM, then KILL after a grace
    ///   period, even when the leader has exited by then).
    public static func run(argv: [String], environment: [String: String] = [:], cwd: String? = nil, queue: DispatchQueue,
                           completion: @escaping @Sendable (ProcessResult) -> Void) -> any Cancellable {
        ChildWatcher.shared.spawn(argv: argv, environment: environment, cwd: cwd, queue: queue, completion: completion)
    }

    static func withCStrings<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
        var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        pointers.append(nil)
        defer { for p in pointers { free(p) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}

