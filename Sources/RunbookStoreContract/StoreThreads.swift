import Dispatch
import Foundation
import NIOPosix

/// The stores' blocking calls, kept off Swift concurrency's cooperative pool: async code reaches a
/// store through `run`, which runs the call on a small thread pool of the stores' own; every
/// blocking bridge checks, in debug builds, that it is not called from inside a task.
public enum StoreThreads {
    /// Threads for blocking store calls from async code (start-up, /metrics, shutdown, tests).
    static let pool: NIOThreadPool = {
        let p = NIOThreadPool(numberOfThreads: 4)
        p.start()
        return p
    }()

    /// Runs a blocking store call on the stores' own threads and waits for it without blocking the
    /// caller's thread.
    /// - Throws: what `body` throws, or `NIOThreadPoolError.ThreadPoolInactive` if the pool stopped.
    public static func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await pool.runIfActive(body)
    }

    /// Where the stores' own async work runs (PostgreSQL queries bridged to blocking callers, the
    /// client's connection loop): a Dispatch queue, which always gets a thread, so that a
    /// cooperative pool saturated by the host program never delays a store.
    public static let executor = StoreTaskExecutor()

    /// Stops the program in debug builds when a blocking call is made from inside a Swift task: its
    /// thread belongs to the cooperative pool, which must never wait on a semaphore or a lock held
    /// across I/O. Release builds skip the check.
    @inlinable
    public static func assertNotInTask(_ what: @autoclosure () -> String, file: StaticString = #fileID, line: UInt = #line) {
        #if DEBUG
        let inTask = withUnsafeCurrentTask { $0 != nil }
        precondition(!inTask, "blocking store call (\(what())) from inside a Swift task: go through StoreThreads.run", file: file, line: line)
        #endif
    }
}

/// A task executor on a Dispatch queue of the stores' own (see `StoreThreads.executor`). Jobs are
/// short (the I/O itself happens on NIO's event loops); the queue is concurrent, so continuations of
/// different queries run on every core (the jobs of one task still run one after another).
public final class StoreTaskExecutor: TaskExecutor {
    private let queue: DispatchQueue

    /// - Parameter label: the queue's name.
    public init(label: String = "runbook.store.async") {
        queue = DispatchQueue(label: label, attributes: .concurrent)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}
