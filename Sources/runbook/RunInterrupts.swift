import Dispatch
import Foundation
import RunbookActions
import RunbookRuntime

/// Ctrl-C and SIGTERM during `runbook run`: the first stops running steps and undoes completed
/// changes (unless `--no-undo`); the second kills what runs and exits 130 at once, the run's end
/// on record.
final class RunInterrupts: @unchecked Sendable {
    // `count` is guarded by `lock`; `sources` is set in init and cancelled once in `stop`.
    private let lock = NSLock()
    private var count = 0
    private var sources: [any DispatchSourceSignal] = []

    init(session: RunSession, noUndo: Bool) {
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        for sig in [SIGINT, SIGTERM] {
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [self] in
                if increment() > 1 {
                    // The final record is written before the process goes: the run never stays "running".
                    printError("second interrupt: killing running commands and exiting now; changes not yet undone stay in place")
                    // Stop the run first, so that no further undo starts when the kill ends the one running.
                    session.abandon()
                    ChildWatcher.shared.killEverything()
                    Foundation.exit(130)
                }
                printError("\ninterrupt: stopping running steps\(noUndo ? "" : " and undoing completed changes") (again to exit at once)")
                session.interrupt()
            }
            source.resume()
            sources.append(source)
        }
    }

    private func increment() -> Int { lock.withLock { count += 1; return count } }

    /// Stops listening (the run is over).
    func stop() { sources.forEach { $0.cancel() } }
}
