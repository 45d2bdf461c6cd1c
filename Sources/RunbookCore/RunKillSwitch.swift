import Foundation

/// The work a run has in flight (step attempts, undos), reachable from any thread: when the run's
/// lease is lost or given up, its commands are killed at once, even while the run's queue waits for
/// a database that went away. Once thrown, it cancels whatever is added to it.
public final class RunKillSwitch: @unchecked Sendable {
    // Both guarded by `lock`.
    private let lock = NSLock()
    private var handles: [String: any Cancellable] = [:]
    private var thrown = false

    public init() {}

    /// True once `throwNow` was called.
    public var isThrown: Bool { lock.withLock { thrown } }

    /// Keeps `handle` under `key` (a later attempt of the same step replaces it); cancels it at once
    /// when the switch is thrown. Cancelling work that already ended does nothing.
    func add(_ key: String, _ handle: any Cancellable) {
        let cancelNow = lock.withLock { () -> Bool in
            if thrown { return true }
            handles[key] = handle
            return false
        }
        if cancelNow { handle.cancel() }
    }

    /// Cancels everything in flight (each command's process tree gets TERM, then KILL) and
    /// whatever is added later. Returns false when it was thrown already.
    @discardableResult
    public func throwNow() -> Bool {
        let all = lock.withLock { () -> [any Cancellable]? in
            guard !thrown else { return nil }
            thrown = true
            defer { handles.removeAll() }
            return Array(handles.values)
        }
        guard let all else { return false }
        all.forEach { $0.cancel() }
        return true
    }
}
