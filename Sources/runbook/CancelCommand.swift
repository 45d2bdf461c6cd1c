import ArgumentParser
import Foundation
import RunbookCore
import RunbookStoreContract

/// `runbook cancel RUN_ID`: leaves a cancel request in the store for the run's owner (a `runbook run`
/// in another terminal, a server or a replica), which stops the run as Ctrl-C does, then waits for
/// `run.cancelled` to be on record.
struct CancelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cancel", abstract: "Cancel a running run, as Ctrl-C stops it, from anywhere the store is.",
        discussion: "The run's owner (a `runbook run` on the same state folder, or the server or replica driving it) sees the request within a second: running steps are stopped, their process trees killed, and completed changes undone unless --no-undo. The timeline records run.cancelled with your name; the run ends interrupted.\n\nExit codes: 0 cancelled; 1 not running (finished already, or no owner acted on the request within --wait seconds); 2 unknown run or usage.")

    @Argument(help: "Run id: the whole id, a unique prefix of it or of its final hex part, or 'last'.", completion: Completions.runIDs) var runID: String
    @Flag(help: "Leave completed changes in place instead of undoing them.") var noUndo = false
    @Option(name: .customLong("as"), help: "Must name you: the CLI cancels as the operating-system user running it, recorded as `by`.") var name: String?
    @Option(help: "Seconds to wait for the run's owner to record the cancel.") var wait: Double = 10
    @OptionGroup var state: StateOptions

    func run() throws {
        // Who cancelled is the OS user, as for approvals: `--as` may only name that user.
        let user: String
        do { user = try ApproveCommand.approverName(given: name, user: ApproveCommand.currentUser, endpoint: "cancel") } catch {
            printError("error: \(Escape.text(error.description.replacingOccurrences(of: "approves", with: "cancels")))")
            throw ExitCode(2)
        }
        guard let by = ApprovalError.approverName(user) else {
            printError("error: the user name \(Escape.text(user)) cannot be recorded")
            throw ExitCode(2)
        }
        let store = try state.openStore()
        let id: String
        do { id = try store.resolveRunID(runID) } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        guard let record = try store.run(id), record.outcome == nil else {
            printError("run \(id) is not running (it has finished): nothing to cancel")
            throw ExitCode(1)
        }
        try store.requestCancel(runID: id, CancelRequest(by: by, undo: !noUndo))
        let deadline = Date().addingTimeInterval(max(0, wait))
        while true {
            let progress = try CancelProgress.of(store.timeline(id), by: by, outcomeRecorded: { try store.run(id)?.outcome != nil },
                                                 reread: { store.timeline(id) })
            switch progress {
            case .taken:
                StandardStreams.out("cancelled run \(id) as \(Escape.text(by))\(noUndo ? " (changes left in place)" : ""): it stops and ends interrupted\n")
                return
            case .finishedFirst:
                try? store.clearCancelRequest(runID: id)
                printError("run \(id) finished before the cancel was taken: nothing to cancel")
                throw ExitCode(1)
            case .waiting:
                break
            }
            if Date() >= deadline {
                printError("run \(id): no owner took the cancel request within \(Quantity.formatDuration(wait)) (is the process or server driving it alive?); the request stays for it")
                throw ExitCode(1)
            }
            usleep(100_000)
        }
    }
}
