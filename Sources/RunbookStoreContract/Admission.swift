import Foundation
import RunbookCore

/// A run asking to start: its row as it will be written, and what admission must check.
public struct AdmissionRequest: Sendable {
    public var runbook: Runbook
    public var record: RunRecord
    /// Check cooldown, max_runs and lock (not for dry runs and drills, which change nothing).
    public var checkGuards = true
    /// `--force`: cooldown and max_runs refusals are overridden (a lock never is).
    public var force = false
    /// The change breaker (`serve --max-changes N/PER`): no new run while N changes were applied,
    /// by all runbooks, within PER seconds.
    public var maxChanges: (count: Int, per: Double)?
    /// A change freeze in force (checked after lock, max_active, cooldown and max_runs; `--force`
    /// overrides it on the CLI, recorded).
    public var freeze: GuardCheck.Refusal?
    /// A refusal decided before admission (a param that failed its pattern, `guards.auto`): it is
    /// recorded, counted, with the others.
    public var refusal: GuardCheck.Refusal?
    /// The run's `run.started` line (secrets redacted), made only if the run is admitted. A store that
    /// writes it with the run's row, in the same statement (PostgreSQL), says so on the run's hold
    /// (`RunHold.startRecorded`), and the run does not write it again; the others leave it to the run.
    public var startLine: (@Sendable () -> String)?

    public init(runbook: Runbook, record: RunRecord) {
        self.runbook = runbook
        self.record = record
    }

    /// Whether the guards are checked at all: nothing refused the run before admission, and it is not
    /// a dry run or a drill.
    public var checksGuards: Bool { refusal == nil && checkGuards }
    /// How far back cooldown and max_runs look (0: neither applies).
    public var startsWindow: Double { max(runbook.guards.cooldown ?? 0, runbook.guards.maxRuns?.per ?? 0) }
}

/// What admission decided.
public enum AdmissionDecision: Sendable {
    /// The run's row is written and its lease held; `overridden` is the refusal `--force` set aside.
    /// A lock key is held by the open row itself on both stores: there is no lock to give back.
    case admitted(lease: any RunHold, overridden: GuardCheck.Refusal?)
    /// Refused by a guard; recorded in `runID`'s row (a new row, or one counting repeats of this alert's refusal).
    case refused(GuardCheck.Refusal, runID: String)
    /// The alert already started this run, which is not resolved yet; nothing is written.
    case duplicate(runID: String)
}
