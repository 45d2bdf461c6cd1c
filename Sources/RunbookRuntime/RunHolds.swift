import Foundation
import RunbookStoreContract

/// What an admitted run holds while it lives (its ownership lease and its lock key), each given up
/// exactly once, whichever way the run ends.
public final class RunHolds: @unchecked Sendable {
    // Both are guarded by `lock` and set to nil once released.
    private let lock = NSLock()
    private var lease: (any RunHold)?
    private var runLock: (any RunHold)?

    public init(lease: (any RunHold)?, lock: (any RunHold)?) {
        self.lease = lease
        self.runLock = lock
    }

    /// The fence the run's writes carry (its lease's epoch); nil when its lease fences nothing.
    public var fence: RunFence? { lock.withLock { lease?.fence } }

    /// Nothing held (a drill).
    public static var none: RunHolds { RunHolds(lease: nil, lock: nil) }

    /// Gives up the lease and the lock.
    public func release() {
        let (l, k) = lock.withLock { () -> ((any RunHold)?, (any RunHold)?) in
            defer { lease = nil; runLock = nil }
            return (lease, runLock)
        }
        l?.release()
        k?.release()
    }

    /// Gives up the lock only (a paused run left for the next server keeps its lease until the process goes).
    public func releaseLock() {
        let k = lock.withLock { () -> (any RunHold)? in
            defer { runLock = nil }
            return runLock
        }
        k?.release()
    }
}
