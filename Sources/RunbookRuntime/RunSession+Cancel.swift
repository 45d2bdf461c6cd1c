import Foundation
import RunbookCore

extension RunSession {
    /// Cancels the run as Ctrl-C stops it (running steps stopped, process trees killed, completed
    /// changes undone unless `undo` is false), recorded first as `run.cancelled` with `by`. Returns
    /// false when the run has finished or is no longer driven here. Blocks the caller on the run's
    /// queue until the event is on record: never call it from a task.
    public func cancel(by name: String, undo: Bool = true) -> Bool {
        driver.cancel(by: name, undo: undo)
    }
}
