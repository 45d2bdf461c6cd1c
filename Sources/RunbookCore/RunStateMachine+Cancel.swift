import Foundation

/// Cancelling a run from outside (the console's button, `POST /runs/ID/cancel`, `runbook cancel`):
/// recorded as `run.cancelled` with who asked, then the run stops as after Ctrl-C.
extension RunStateMachine {
    /// Records `run.cancelled` (`by`, and whether completed changes are undone) and stops the run as
    /// `interrupt` does: running steps stopped, open gates closed, completed changes undone unless
    /// `undo` is false. Returns nil when the run has finished (nothing is recorded).
    public mutating func cancel(by name: String, undo: Bool, now: Date) -> [Effect]? {
        if case .finished = lifecycle { return nil }
        var e = event("run.cancelled", now)
        e.by = name
        return [.emitNote(e, .cancelled(by: name, undo: undo))] + interrupt(now: now, keepChanges: !undo)
    }
}
