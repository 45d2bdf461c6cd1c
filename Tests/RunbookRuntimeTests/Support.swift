import Foundation
import RunbookCore
import RunbookRuntime
import RunbookStore
import RunbookStoreContract

/// A fresh folder under the system's temporary folder.
func temporaryFolder() -> String {
    let dir = NSTemporaryDirectory() + "runtime-tests-" + UUID().uuidString
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// A runbook of `checks` detect checks, one flag change and a verify check, with a lock on `service`.
func runbook(checks: Int = 1, guards: String = "{ lock: \"{{ params.service }}\" }", extra: String = "") throws -> Runbook {
    var yaml = """
    runbook: t
    params:
      service: { default: shop, pattern: "^[a-z]+$" }
    guards: \(guards)
    \(extra)
    steps:

    """
    for i in 0..<checks {
        yaml += "  - id: c\(i)\n    phase: detect\n    check: { command: [\"true\"] }\n"
    }
    yaml += """
      - id: flag-off
        phase: mitigate
        flag: { file: f.json, key: f, variant: "off" }
      - id: flat
        phase: verify
        check: { command: ["true"] }

    """
    return try RunbookLoader.load(text: yaml, file: "t.yaml")
}

/// Answers every step at once: checks pass, the change is applied (or described, in a dry run).
/// Remembers each request's `dryRun` and step.
final class ScriptedExecutor: StepExecutor, @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var seen: [(step: String, dryRun: Bool)] = []

    var requests: [(step: String, dryRun: Bool)] { lock.withLock { seen } }

    func execute(_ request: StepRequest, completion: @escaping @Sendable (StepResult) -> Void) -> any Cancellable {
        lock.withLock { seen.append((request.step.id, request.dryRun)) }
        let result: StepResult
        if request.step.action.isChange {
            let change = AppliedChange(what: "flag f", from: "on", to: "off", simulated: request.dryRun)
            result = request.dryRun ? StepResult(.wouldChange, "would change flag f", change: change) : StepResult(.passed, change: change)
        } else {
            result = StepResult(.passed)
        }
        // On the run's clock, as a drill's executor answers: a simulated timeout never comes first.
        return request.scheduler.schedule(after: 0) { completion(result) }
    }

    func undo(_ change: AppliedChange, action: Action?, request: StepRequest, completion: @escaping @Sendable (StepResult) -> Void) -> any Cancellable {
        request.scheduler.schedule(after: 0) { completion(StepResult(.passed)) }
    }
}

/// A store whose timelines cannot be opened (a full disk, a lost database), everything else
/// forwarded; or, with `fenceAt`, whose owner is fenced (another took the run over) at the first
/// event of that name (`step.finished`, or `step.finished:STEP`): from it on, every write of the
/// owner's is refused.
final class TimelineRefusingStore: RunDatabase, @unchecked Sendable {
    let base: any RunDatabase
    let fenceAt: String?
    init(_ base: any RunDatabase, fenceAt: String? = nil) {
        self.base = base
        self.fenceAt = fenceAt
    }

    struct Refused: Error, CustomStringConvertible { var description: String { "no space left on device (test)" } }

    /// The owner's timeline, fenced from the first `event` on.
    final class FencedFrom: DurableTimeline, @unchecked Sendable {
        // `tripped` is guarded by `lock`; the rest is immutable.
        let base: any DurableTimeline
        let fence: RunFence
        let event: String
        let health: RecordHealth?
        private let lock = NSLock()
        private var tripped = false
        init(base: any DurableTimeline, fence: RunFence, event: String, health: RecordHealth?) {
            (self.base, self.fence, self.event, self.health) = (base, fence, event, health)
        }
        func write(_ e: TimelineEvent) throws {
            let refuse = lock.withLock { () -> Bool in
                if e.event == event || "\(e.event):\(e.step ?? "")" == event { tripped = true }
                return tripped
            }
            if refuse { throw FencedError(fence: fence, current: fence.epoch + 1, operation: "append to the timeline") }
            try base.write(e)
        }
        func record(_ e: TimelineEvent) {
            do { try write(e) } catch { health?.report(error, location: "test") }
        }
    }

    var location: String { base.location }
    func insert(_ record: RunRecord) throws { try base.insert(record) }
    func admitAll(_ requests: [AdmissionRequest], now: Date) throws -> [AdmissionDecision] { try base.admitAll(requests, now: now) }
    func timelineSink(runID: String, health: RecordHealth?) throws -> any DurableTimeline {
        guard fenceAt != nil else { throw Refused() }
        return try base.timelineSink(runID: runID, health: health)
    }
    func timelineSink(fence: RunFence, health: RecordHealth?) throws -> any DurableTimeline {
        guard let fenceAt else { throw Refused() }
        return FencedFrom(base: try base.timelineSink(fence: fence, health: nil), fence: fence, event: fenceAt, health: health)
    }
    func finish(_ fence: RunFence, outcome: RunOutcome, durationMs: Int) throws {
        if fenceAt != nil { throw FencedError(fence: fence, current: fence.epoch + 1, operation: "finish") }
        try base.finish(fence, outcome: outcome, durationMs: durationMs)
    }
    func timelineReport(_ runID: String) -> (events: [TimelineEvent], damagedLines: [Int]) { base.timelineReport(runID) }
    func finish(runID: String, outcome: RunOutcome, durationMs: Int) throws { try base.finish(runID: runID, outcome: outcome, durationMs: durationMs) }
    func recordChange(runID: String, at: Date) throws { try base.recordChange(runID: runID, at: at) }
    func changesApplied(since: Date) throws -> Int { try base.changesApplied(since: since) }
    func reserveChange(runID: String, cap: Int, per: Double, now: Date) throws -> ChangeReservation {
        try base.reserveChange(runID: runID, cap: cap, per: per, now: now)
    }
    func releaseChange(runID: String) throws { try base.releaseChange(runID: runID) }
    func decideDeadline(runID: String, gate: String, now: Date) throws -> GateState? { try base.decideDeadline(runID: runID, gate: gate, now: now) }
    func runs(limit: Int) throws -> [RunRecord] { try base.runs(limit: limit) }
    func listRuns(_ query: RunListQuery) throws -> [RunRecord] { try base.listRuns(query) }
    func requestCancel(runID: String, _ request: CancelRequest) throws { try base.requestCancel(runID: runID, request) }
    func pendingCancels(among runIDs: [String]) throws -> [String: CancelRequest] { try base.pendingCancels(among: runIDs) }
    func clearCancelRequest(runID: String) throws { try base.clearCancelRequest(runID: runID) }
    func runs(limit: Int, kinds: Set<RunKind>) throws -> [RunRecord] { try base.runs(limit: limit, kinds: kinds) }
    func run(_ id: String) throws -> RunRecord? { try base.run(id) }
    func resolveRunID(_ text: String) throws -> String { try base.resolveRunID(text) }
    func resolve(fingerprint: String, at: Date) throws -> [String] { try base.resolve(fingerprint: fingerprint, at: at) }
    func finalizeDeadRuns(now: Date) throws -> [String] { try base.finalizeDeadRuns(now: now) }
    func close(_ runID: String, _ closing: RunEndings.Closing) throws { try base.close(runID, closing) }
    func takePausedRuns(now: Date) throws -> [(runID: String, lease: any RunHold)] { try base.takePausedRuns(now: now) }
    func openGate(runID: String, gate: GateRequest, startedBy: String?, resumable: Bool, now: Date) throws {
        try base.openGate(runID: runID, gate: gate, startedBy: startedBy, resumable: resumable, now: now)
    }
    func closeGate(runID: String, gate: String, status: String) throws { try base.closeGate(runID: runID, gate: gate, status: status) }
    func answers(runID: String, gate: String) throws -> [ApprovalRecord] { try base.answers(runID: runID, gate: gate) }
    func openGates(runID: String) throws -> [String] { try base.openGates(runID: runID) }
    func runsAwaitingApproval() throws -> Set<String> { try base.runsAwaitingApproval() }
    func answer(runID: String, approve: Bool, by name: String, via: String, now: Date) throws -> ApprovalReceipt {
        try base.answer(runID: runID, approve: approve, by: name, via: via, now: now)
    }
}

/// Runs a session to its end and returns the outcome.
func runToEnd(_ admitted: AdmittedRun, _ env: RunEnvironment, watch: ((RunSession) -> Void)? = nil) async throws -> (RunSession, RunOutcome) {
    let session = try await blocking { try RunSession.open(admitted, environment: env) }
    watch?(session)
    let outcome = await withCheckedContinuation { (c: CheckedContinuation<RunOutcome, Never>) in
        session.begin { _, o in c.resume(returning: o) }
    }
    return (session, outcome)
}

/// Admits one request on `store`; fails the test's expectation if it was not admitted.
func admitOne(_ request: RunRequest, rule: ChangeApprovalRule, store: any RunDatabase) async throws -> RunAdmission {
    let p = PreparedRun(request, rule: rule, now: Date())
    return try await blocking { try RunAdmission.decide([p], store: store, now: p.start.time)[0] }
}

/// A blocking store call from a test, on the stores' own threads (never on the cooperative pool,
/// which the stores check in debug builds).
func blocking<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await StoreThreads.run(body)
}
