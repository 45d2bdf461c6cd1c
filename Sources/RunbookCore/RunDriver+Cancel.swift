import Foundation

extension RunDriver {
    /// Cancels the run (`RunStateMachine.cancel`): returns once `run.cancelled` is on record, false
    /// when the run had finished or is no longer driven here. Blocks on the run's queue: never call
    /// it from a task.
    public func cancel(by name: String, undo: Bool) -> Bool {
        assertNotInTask("cancel")
        return queue.sync {
            guard !detached, let effects = machine.cancel(by: name, undo: undo, now: scheduler.now) else { return false }
            apply(effects)
            return true
        }
    }
}
