import Dispatch
import Foundation

/// The one thread that starts child processes. Children get `PR_SET_PDEATHSIG` (SIGKILL) so that
/// no command outlives a killed engine (kill -9 of `runbook run` or of a replica), and Linux ties
/// that signal to the *thread* that created the child, not the process: a child spawned from a
/// Dispatch worker would be killed when the pool retires that worker, mid-step. This thread never
/// exits, so children die with the engine and only then.
final class SpawnerThread: @unchecked Sendable {
    static let shared = SpawnerThread()

    // `jobs` is guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []

    private init() {
        let thread = Thread { [self] in loop() }
        thread.name = "runbook.spawner"
        thread.start()
    }

    /// Runs `job` on the spawner thread, later; the caller never waits (it may be a Swift concurrency
    /// thread, which must never park).
    func async(_ job: @escaping () -> Void) {
        condition.withLock {
            jobs.append(job)
            condition.signal()
        }
    }

    private func loop() -> Never {
        while true {
            let batch: [() -> Void] = condition.withLock {
                while jobs.isEmpty { condition.wait() }
                defer { jobs.removeAll(keepingCapacity: true) }
                return jobs
            }
            for job in batch { job() }
        }
    }
}
