import ArgumentParser
import Foundation
import RunbookCore
import RunbookStore
import RunbookStoreContract

struct ApproveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve", abstract: "Approve (or deny) a run waiting at an approval gate.",
        discussion: "The run goes on once its gate has the approvals it needs (a server or a `runbook run` waiting on the same state folder sees the answer within a second). The approver is the operating-system user running the command (`--as` may only name that user); whoever started the run cannot answer its gate, and one person counts once.\n\nExit codes: 0 answer recorded; 1 not recorded (the run waits at no gate, you started it, or you answered already); 2 unknown run or usage (--as naming someone else).")

    @Argument(help: "Run id: the whole id, a unique prefix of it or of its final hex part, or 'last'.", completion: Completions.runIDs) var runID: String
    @Flag(help: "Deny instead: the run stops, undoes what it changed and ends refused.") var deny = false
    @Option(name: .customLong("as"), help: "Must name you: the CLI approves as the operating-system user running it (answer as someone else through the server with their token).") var approver: String?
    @OptionGroup var state: StateOptions

    /// The operating-system user running this process (from the password entry of the real uid;
    /// `$USER` is not asked: anyone can set it), else `uid N`.
    static var currentUser: String {
        if let pw = getpwuid(getuid()), let name = pw.pointee.pw_name, name.pointee != 0 { return String(cString: name) }
        return "uid \(getuid())"
    }

    /// The approver: the OS user. `--as NAME` is accepted only when NAME is that user (names compare
    /// trimmed and case-folded), so one person typing twice counts once.
    /// `endpoint` is the HTTP route another person would use instead (`approve` or `cancel`).
    static func approverName(given: String?, user: String, endpoint: String = "approve") throws(ApprovalError) -> String {
        guard let given else { return user }
        guard ApprovalRules.identity(given) == ApprovalRules.identity(user) else {
            let verb = endpoint == "cancel" ? "cancels" : "approves"
            let acts = endpoint == "cancel" ? "cancels" : "answers"
            throw ApprovalError("--as \(given): the CLI \(verb) as the user running it (\(user)); another person \(acts) as themselves, from their own account or with their own token (POST /runs/ID/\(endpoint))")
        }
        return user
    }

    func run() throws {
        let name: String
        do { name = try Self.approverName(given: approver, user: Self.currentUser) } catch {
            printError("error: \(Escape.text(error.description))")
            throw ExitCode(2)
        }
        guard ApprovalError.approverName(name) != nil else {
            printError("error: the user name \(Escape.text(name)) cannot be recorded as an approver")
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
