import RunbookCore

/// What a run may do to the world. One value decides both what the executor does with a change
/// and which path the state machine takes, so the two can never disagree.
public enum RunMode: Sendable, Equatable {
    /// Changes are made (`runbook run`, the server, resume, takeover).
    case live
    /// `runbook run --dry-run` (SPEC §6.2): read-only checks run for real, changes are described,
    /// verify is skipped and a run that described changes ends `would-mitigate`.
    case dryRun
    /// A drill: nothing is touched (the executor is scripted and describes every change), but the
    /// run follows the live path (gates, verify, undo), as the rehearsal of a real response.
    case rehearsal

    /// Whether the executor describes changes instead of making them (`StepRequest.dryRun`).
    public var describesChanges: Bool { self != .live }
    /// Whether the state machine takes the dry-run path (`RunStateMachine.Options.dryRun`).
    public var followsDryRunPath: Bool { self == .dryRun }
    /// Whether cooldown, max_runs, lock and the like are checked: only a run that changes things is refused.
    public var checksGuards: Bool { self == .live }
    /// `dry_run` on the record and on `run.started`.
    public var recordedAsDryRun: Bool { self != .live }
    /// `drill` on the record and on `run.started`.
    public var recordedAsDrill: Bool { self == .rehearsal }
}
