import Foundation
import RunbookCore
import RunbookRuntime
import RunbookStore
import RunbookStoreContract
import Testing

/// One session for every front end: admission, the start on record, the mode, the holds.
struct RunSessionTests {
    @Test func aStartThatCannotBeRecordedGivesUpTheLeaseAndTheLock() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let base = try await blocking { try SQLiteRunStore(directory: dir) }
        let store = TimelineRefusingStore(base)
        let rule = ChangeApprovalRule(mayPause: false)
        let request = RunRequest(runbook: try runbook(), given: [:], trigger: "manual")
        guard case .admitted(let admitted) = try await admitOne(request, rule: rule, store: store) else {
            Issue.record("the first run was not admitted")
            return
        }
        #expect(admitted.prepared.admission.record.lockKey == "shop")
        let env = RunEnvironment(store: store, executor: ScriptedExecutor(), rule: rule)
        await #expect(throws: RunStartError.self) { _ = try await blocking { try RunSession.open(admitted, environment: env) } }
        #expect(try await blocking { try base.run(admitted.prepared.runID)?.outcome } == RunOutcome.failed.rawValue)
        #expect(!FileManager.default.fileExists(atPath: dir + "/runs/\(admitted.prepared.runID).lease"), "the lease was kept")
        // The lock went with it: the next run of the same key is admitted.
        switch try await admitOne(request, rule: rule, store: base) {
        case .admitted(let next): next.holds.release()
        case .refused(let r, _, _): Issue.record("the next run was refused by \(r.guardName): \(r.message)")
        case .duplicate: Issue.record("the next run was a duplicate")
        }
    }

    @Test func aRehearsalDescribesEveryChangeButFollowsTheLivePath() async throws {
        let executor = ScriptedExecutor()
        var env = RunEnvironment(store: nil, executor: executor, rule: ChangeApprovalRule(mayPause: true))
        env.clock = .virtual(start: Date())
        var request = RunRequest(runbook: try runbook(), given: [:], trigger: "drill")
        request.mode = .rehearsal
        request.autoConfirm = true
        let p = PreparedRun(request, rule: env.rule, now: Date())
        #expect(p.start.dryRun == true && p.start.drill == true)
        let (_, outcome) = try await runToEnd(AdmittedRun(unadmitted: p), env)
        #expect(executor.requests.allSatisfy { $0.dryRun }, "a rehearsal made a change: \(executor.requests)")
        #expect(executor.requests.map(\.step).contains("flat"), "verify did not run in the rehearsal")
        #expect(outcome == .mitigated)
    }

    @Test func aDryRunDescribesChangesAndSkipsVerify() async throws {
        let executor = ScriptedExecutor()
        var request = RunRequest(runbook: try runbook(), given: [:], trigger: "manual")
        request.mode = .dryRun
        let env = RunEnvironment(store: nil, executor: executor, rule: ChangeApprovalRule(mayPause: false))
        let (_, outcome) = try await runToEnd(AdmittedRun(unadmitted: PreparedRun(request, rule: env.rule, now: Date())), env)
        #expect(executor.requests.allSatisfy { $0.dryRun })
        #expect(!executor.requests.map(\.step).contains("flat"))
        #expect(outcome == .wouldMitigate)
    }

    @Test func aLiveRunReleasesItsLockWhenItEnds() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try await blocking { try SQLiteRunStore(directory: dir) }
        let rule = ChangeApprovalRule(mayPause: false)
        let request = RunRequest(runbook: try runbook(), given: [:], trigger: "manual")
        guard case .admitted(let admitted) = try await admitOne(request, rule: rule, store: store) else {
            Issue.record("not admitted")
            return
        }
        // While it is admitted, the lock refuses another run.
        guard case .refused(let r, _, _) = try await admitOne(request, rule: rule, store: store) else {
            Issue.record("a second run of the same lock was admitted")
            return
        }
        #expect(r.guardName == "lock")
        let executor = ScriptedExecutor()
        let (_, outcome) = try await runToEnd(admitted, RunEnvironment(store: store, executor: executor, rule: rule))
        #expect(outcome == .mitigated)
        #expect(executor.requests.allSatisfy { !$0.dryRun })
        #expect(try await blocking { try store.run(admitted.prepared.runID)?.outcome } == RunOutcome.mitigated.rawValue)
        guard case .admitted(let next) = try await admitOne(request, rule: rule, store: store) else {
            Issue.record("the lock was not given up when the run ended")
            return
        }
        next.holds.release()
    }
}

/// The approval rule the server, resume, takeover and drills share (and the CLI's, which never pauses).
struct ChangeApprovalRuleTests {
    static let freeze = GuardCheck.Refusal(guardName: "freeze", until: nil, message: "release week")

    @Test func aRunThatMayPauseWaitsForAFreezeInsteadOfBeingRefused() throws {
        let rb = try runbook(guards: "{ auto: ask }")
        let rule = ChangeApprovalRule(mayPause: true, freeze: { _ in Self.freeze })
        #expect(rule.pauses(rb))
        #expect(rule.reasonsBeforeChanges(rb, alertRun: true)(Date()) == ["guards.auto: ask", "change freeze: release week"])
        #expect(rule.reasonsBeforeChanges(rb, alertRun: false)(Date()) == ["change freeze: release week"])
        #expect(rule.admissionChecks(rb, now: Date()).freeze == nil)
    }

    @Test func aRunWithNobodyToAskIsRefusedByAFreeze() throws {
        let rb = try runbook(guards: "{ auto: ask }")
        let cli = ChangeApprovalRule(mayPause: false, freeze: { _ in Self.freeze })
        #expect(!cli.pauses(rb))
        #expect(cli.reasonsBeforeChanges(rb, alertRun: false)(Date()).isEmpty)
        #expect(cli.admissionChecks(rb, now: Date()).freeze?.message == "release week")
        // A server runbook with no approval path is refused too.
        let plain = try runbook(guards: "{ auto: true }")
        let server = ChangeApprovalRule(mayPause: true, freeze: { _ in Self.freeze }, maxChanges: (3, 60))
        #expect(!server.pauses(plain))
        #expect(server.admissionChecks(plain, now: Date()).freeze?.message == "release week")
        #expect(server.admissionChecks(plain, now: Date()).maxChanges?.count == 3)
    }
}
