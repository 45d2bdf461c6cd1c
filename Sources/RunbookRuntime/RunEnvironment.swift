import Dispatch
import Foundation
import RunbookCore
import RunbookStoreContract

/// What a front end gives a run: where it is recorded, what performs its steps, its clock, who
/// answers its confirmations and gates, and who else watches it. Everything else about a run is
/// the same on every path (`RunSession`).
public struct RunEnvironment: Sendable {
    /// Where the run is recorded (its timeline and history row); nil for a run kept in memory (a drill
    /// whose front end records it through `subscribers`).
    public var store: (any RunDatabase)?
    /// Performs the steps: the live executor, or a drill's scripted outcomes.
    public var executor: any StepExecutor
    public var clock: Clock = .wall
    /// Asks about `confirm: true` steps (a terminal, or nobody).
    public var prompter: any ConfirmationPrompter = DeclineAll()
    public var approver: Approver = .none
    /// Subscribers after the record, in order (the terminal, metrics, a drill's collector).
    public var subscribers: [any TimelineSink] = []
    /// When changes pause for approval (freeze, breaker) rather than refuse the run.
    public var rule: ChangeApprovalRule
    /// Random number in 0..<1 for jitter (nil: random).
    public var random: (@Sendable () -> Double)?
    /// Most steps running a process at once, when the request does not say.
    public var maxParallel: Int?
    /// What a change step that was running when its owner died did (resume and takeover).
    public var inFlight: (@Sendable (Step, TemplateValues) -> InFlightVerdict)?
    /// Called on the run's queue once it ended, before its lease and lock are given up (the CLI
    /// waits there until stopped process trees have had their KILL).
    public var settle: (@Sendable () -> Void)?
    /// Prefix of the run queue's label.
    public var queueLabel = "runbook.run"
    /// A replica's runs (`serve` on a replicated store): when the database cannot be reached, a run
    /// stops as a fenced one does and is left to its next owner (`RunDriver.leavesRunWhenStoreUnreachable`).
    public var leavesRunWhenStoreUnreachable = false

    /// The time a run sees.
    public enum Clock: Sendable {
        /// Wall-clock time and Dispatch timers.
        case wall
        /// Simulated time from `start`: timers fire at once, in order (drills).
        case virtual(start: Date)
    }

    /// Who answers the run's approval gates.
    public enum Approver: Sendable {
        /// No gate can be answered.
        case none
        /// Answers recorded in the store (`runbook approve`, `POST /runs/ID/approve`); `startedBy` may
        /// not answer; `resumable` runs are resumed by the next server.
        case store(startedBy: String?, resumable: Bool)
        /// A desk of the front end's, made on the run's scheduler (a drill's scripted approvers).
        case custom(@Sendable (any RunScheduler) -> any ApprovalDesk)
    }

    public init(store: (any RunDatabase)?, executor: any StepExecutor, rule: ChangeApprovalRule) {
        self.store = store
        self.executor = executor
        self.rule = rule
    }
}
