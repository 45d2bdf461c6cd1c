import Foundation
import RunbookCore

/// A multi-stage piece of step work (sampling, restart then readiness): cancelling it cancels
/// whatever stage is in flight and stops later stages from starting; it completes at most once.
final class StepOperation: Cancellable, @unchecked Sendable {
    // `cancelled`, `current` and `completion` are guarded by `lock`.
    private let lock = NSLock()
    private var cancelled = false
    private var current: (any Cancellable)?
    private var completion: (@Sendable (StepResult) -> Void)?

    init(completion: @escaping @Sendable (StepResult) -> Void) {
        self.completion = completion
    }

    var isCancelled: Bool { lock.withLock { cancelled } }

    /// Tracks the stage now in flight; if already cancelled, cancels it at once.
    func track(_ c: any Cancellable) {
        let cancelNow = lock.withLock { () -> Bool in
            if cancelled { return true }
            current = c
            return false
        }
        if cancelNow { c.cancel() }
    }

    /// Completes the step (only the first call counts).
    func finish(_ result: StepResult) {
        let c = lock.withLock { () -> (@Sendable (StepResult) -> Void)? in
            defer { completion = nil }
            return completion
        }
        c?(result)
    }

    func cancel() {
        let c = lock.withLock { () -> (any Cancellable)? in
            cancelled = true
            return current
        }
        c?.cancel()
    }
}
