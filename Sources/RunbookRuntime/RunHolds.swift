import Foundation
import RunbookStoreContract

/// What an admitted run holds while it lives: its ownership lease, given up exactly once, whichever
/// way the run ends. (Its lock key needs no giving up: on both stores the key is held by the run's
/// open row and freed when the row is closed.)
public final class RunHolds: @unchecked Sendable {
    // Guarded by `lock`; set to nil once released.
    private let lock = NSLock()
    private var lease: (any RunHold)?

    public init(lease: (any RunHold)?) {
        self.lease = lease
    }

    /// Whether admission already wrote the run's `run.started` with its row.
    public var startRecorded: Bool { lock.withLock { lease?.startRecorded ?? false } }

    /// The fence the run's writes carry (its lease's epoch); nil when its lease fences nothing.
    public var fence: RunFence? { lock.withLock { lease?.fence } }

    /// Nothing held (a drill).
    public static var none: RunHolds { RunHolds(lease: nil) }

    /// Gives up the lease.
    public func release() {
        let l = lock.withLock { () -> (any RunHold)? in
            defer { lease = nil }
            return lease
        }
        l?.release()
    }
}
