import ArgumentParser
import Foundation
import RunbookCore
import RunbookStore
import RunbookStoreContract

struct ApproveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve", abstract: "Approve (or deny) a run waiting at an approval gate.",
        discussion: "The run goes on once its gate has the approvals it needs (a server or a `runbook run` waiting on the same state folder sees the answer within a second). Whoever started the run cannot answer its gate, and one person counts once.\n\nExit codes: 0 answer recorded; 1 not recorded (the run waits at no gate, you started it, or you answered already); 2 unknown run or usage.")

    @Argument(help: "Run id: the whole id, a unique prefix of it or of its final hex part, or 'last'.", completion: Completions.runIDs) var runID: String
    @Flag(help: "Deny instead: the run stops, undoes what it changed and ends refused.") var deny = false
    @Option(name: .customLong("as"), help: "Your name, recorded as the approver (default: $USER).") var approver: String?
    @OptionGroup var state: StateOptions

    /// The login name: `$USER`, else the password entry, else the uid.
    static var currentUser: String {
        if let u = ProcessInfo.processInfo.environment["USER"], !u.isEmpty { return u }
        if let pw = getpwuid(getuid()), let name = pw.pointee.pw_name { return String(cString: name) }
        return "uid \(getuid())"
    }

    func run() throws {
        guard let name = ApprovalError.approverName(approver ?? Self.currentUser) else {
            printError("error: --as takes a name of 1 to 100 printable characters")
            throw ExitCode(2)
        }
        let store = try state.openStore()
        let id: String
        do { id = try store.resolveRunID(runID) } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
        do {
            let receipt = try store.answer(runID: id, approve: !deny, by: name, via: "cli", now: Date())
            for g in receipt.gates {
                let what = RunStateMachine.isRunGate(g.gate) ? "its changes" : "step \(g.gate)"
                if deny {
                    StandardStreams.out("denied \(what) of run \(id) as \(Escape.text(name)): the run stops and ends refused\n")
                } else if g.approvals >= g.needed {
                    StandardStreams.out("approved \(what) of run \(id) as \(Escape.text(name)) (\(g.approvals) of \(g.needed)): the run goes on\n")
                } else {
                    StandardStreams.out("approved \(what) of run \(id) as \(Escape.text(name)) (\(g.approvals) of \(g.needed)): waiting for \(g.needed - g.approvals) more\n")
                }
            }
        } catch let e as ApprovalError {
            printError("error: \(Escape.text(e.description))")
            throw ExitCode(1)
        } catch {
            printError("error: \(error)")
            throw ExitCode(2)
        }
    }
}
