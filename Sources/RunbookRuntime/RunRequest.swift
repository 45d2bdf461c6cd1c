import Foundation
import RunbookCore
import RunbookStoreContract

/// One request to start a run, from any front end: the CLI's arguments, an alert, `/hooks/run`, a drill.
public struct RunRequest: Sendable {
    public var runbook: Runbook
    /// Params as given (text), before validation.
    public var given: [String: String]
    /// `manual`, `api`, `alert:NAME`, `drill`.
    public var trigger: String
    /// The alert's fingerprint (dedupe and resolve).
    public var fingerprint: String?
    /// Who asked, recorded as `by` on `run.started` (a server token's name).
    public var by: String?
    public var mode: RunMode = .live
    /// An alert run: it needs `guards.auto`, and `guards.auto: ask` holds its changes for approval.
    public var alertRun = false
    /// `confirm: true` steps proceed (`--yes`, an alert run's standing approval, `"confirm": true`).
    public var autoConfirm = false
    /// `--no-undo`: an interrupt leaves completed changes in place.
    public var noUndo = false
    /// `--max-parallel`.
    public var maxParallel: Int?
    /// `--force`: cooldown, max_runs and a freeze are overridden (recorded); a lock never is.
    public var force = false
    /// A message on `run.started` (a drill names its scenario).
    public var startMessage: String?
    /// The run's id; a new one when nil.
    public var runID: String?
    /// The labels and annotations of the alert that started the run (`{{ alert.labels.NAME }}` in targets).
    public var alert = AlertValues()
    /// `serve --max-targets`: most hosts one target set may resolve to.
    public var maxTargets: Int?
    /// Asks Prometheus for a `prometheus:` target set's hosts (nil: such a set refuses the run).
    public var prometheus: (any PrometheusHostLookup)?

    public init(runbook: Runbook, given: [String: String], trigger: String) {
        self.runbook = runbook
        self.given = given
        self.trigger = trigger
    }
}

/// A request made ready for admission: its id, its params (when they are good), its first event and its row.
public struct PreparedRun: Sendable {
    public var request: RunRequest
    public var runID: String
    public var values: [String: Value]
    /// Each target set's hosts, resolved with the params (issue 22).
    public var targets: [String: [String]] = [:]
    /// Why the params were refused (the run is then recorded refused, or, on the CLI, not started).
    public var paramError: (any Error)?
    /// `run.started`, not yet redacted.
    public var start: TimelineEvent
    public var admission: AdmissionRequest

    /// Values of the run's secret params, kept off every record.
    public var secrets: [String] { RunInputs.secrets(request.runbook, values) }

    /// Validates params and builds the run's id, lock key, row and `run.started` event.
    /// - Parameters:
    ///   - rule: when changes pause for approval instead of refusing the run (freeze, breaker).
    public init(_ request: RunRequest, rule: ChangeApprovalRule, now: Date) {
        let runbook = request.runbook
        let runID = request.runID ?? RunInputs.newRunID(now)
        var values: [String: Value] = [:]
        var start: TimelineEvent
        var refusal: GuardCheck.Refusal?
        var paramError: (any Error)?
        var targets: [String: [String]] = [:]
        do {
            values = try RunInputs.resolve(runbook, given: request.given)
            targets = try TargetResolver.resolve(runbook, params: values, alert: request.alert, maxTargets: request.maxTargets,
                                                 prometheus: request.prometheus)
            start = RunInputs.startEvent(runbook: runbook, runID: runID, trigger: request.trigger, params: values,
                                         dryRun: request.mode.recordedAsDryRun, drill: request.mode.recordedAsDrill, now: now)
        } catch {
            // A hostile or malformed label: recorded (counted), nothing runs.
            paramError = error
            start = TimelineEvent(time: now, run: runID, event: "run.started")
            start.runbook = runbook.name
            start.trigger = request.trigger
            start.dryRun = request.mode.recordedAsDryRun
            refusal = GuardCheck.Refusal(guardName: error is TargetError ? "targets" : "params", until: nil, message: "\(error)")
        }
        start.by = request.by
        if let m = request.startMessage { start.message = m }
        let lockKey = refusal == nil ? GuardCheck.lockKey(runbook.guards, params: values, runID: runID) : nil
        if refusal == nil, request.alertRun, !runbook.guards.auto {
            refusal = GuardCheck.Refusal(guardName: "auto", until: nil, message: "guards.auto is false: this runbook needs a human (runbook run \(runbook.name))")
        }
        var record = RunRecord(id: runID, runbook: runbook.name, trigger: request.trigger, fingerprint: request.fingerprint, started: now,
                               dryRun: request.mode.recordedAsDryRun, drill: request.mode.recordedAsDrill)
        record.lockKey = lockKey
        var admission = AdmissionRequest(runbook: runbook, record: record)
        admission.refusal = refusal
        admission.checkGuards = request.mode.checksGuards
        admission.force = request.force
        if request.mode.checksGuards {
            (admission.freeze, admission.maxChanges) = rule.admissionChecks(runbook, now: now)
        }
        self.request = request
        self.runID = runID
        self.values = values
        self.targets = targets
        self.paramError = paramError
        self.start = start
        self.admission = admission
    }
}
