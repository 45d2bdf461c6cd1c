import Dispatch
import Foundation
import RunbookCore
import RunbookStoreContract
import Testing

/// Approval gates, the same on both stores: a gate is decided once, in one transaction, by the first
/// decisive event (approvals reaching the count, a denial, the stored deadline); every later answer
/// is refused naming the decision and who made it; names compare trimmed and case-folded.
@Suite(.serialized, .timeLimit(.minutes(15)))
struct StoreGateTests {
    static func open(_ store: any RunDatabase, _ runID: String, approvals: Int = 1, deadline: Date, startedBy: String? = nil) async throws {
        try await off { try store.openGate(runID: runID, gate: Cases.gate("changes", approvals: approvals, deadline: deadline), startedBy: startedBy, resumable: true, now: Date()) }
    }

    /// An answer as the caller sees it: `200 ...` or `409 message`.
    static func answer(_ store: any RunDatabase, _ runID: String, approve: Bool, by name: String, now: Date = Date()) -> String {
        do {
            let r = try store.answer(runID: runID, approve: approve, by: name, via: "test", now: now)
            return "200 " + r.gates.map { "\($0.approvals)/\($0.needed)" }.joined(separator: ",")
        } catch let e as ApprovalError {
            return "409 " + e.description
        } catch {
            return "500 \(error)"
        }
    }

    @Test(arguments: StoreKind.available)
    func approveAndDenyRacingFiftyTimesDecideOnceAndTheLoserIsToldWhoDecided(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let a = try await db.open(), b = try await db.open()
        let deadline = Date().addingTimeInterval(3600)
        for i in 0..<50 {
            let run = "race-\(i)"
            try await Self.open(a, run, deadline: deadline, startedBy: "am")
            let answers = try await off { () -> [String] in
                let box = Collected()
                DispatchQueue.concurrentPerform(iterations: 2) { k in
                    box.add((k == 0 ? "approve " : "deny ") + Self.answer(k == 0 ? a : b, run, approve: k == 0, by: k == 0 ? "ops" : "lead"))
                }
                return box.all
            }
            let won = answers.filter { $0.contains(" 200 ") }
            #expect(won.count == 1, "run \(i): \(answers)")
            let lost = try #require(answers.first { $0.contains(" 409 ") }, "run \(i): \(answers)")
            let taken = try await off { try a.answers(runID: run, gate: "changes") }
            // Only the winner's answer is taken: the run, fed the answers in order, decides as the store did.
            if won.first?.hasPrefix("approve") == true {
                #expect(taken.map(\.name) == ["ops"] && taken[0].approve)
                #expect(lost.contains("approved by ops"), "\(lost)")
            } else {
                #expect(taken.map(\.name) == ["lead"] && !taken[0].approve)
                #expect(lost.contains("denied by lead"), "\(lost)")
            }
            let state = try await off { try a.decideDeadline(runID: run, gate: "changes", now: deadline.addingTimeInterval(1)) }
            #expect(state == GateState(answers: taken, timedOut: false), "a decided gate does not time out")
        }
    }

    @Test(arguments: StoreKind.available)
    func aDenialAfterAnApprovalIsRefusedAndSoIsAnApprovalAfterADenial(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let store = try await db.open()
        let deadline = Date().addingTimeInterval(3600)
        try await Self.open(store, "r1", deadline: deadline)
        let r1 = try await off { [Self.answer(store, "r1", approve: true, by: "ops"), Self.answer(store, "r1", approve: false, by: "lead")] }
        #expect(r1[0] == "200 1/1")
        #expect(r1[1].hasPrefix("409 ") && r1[1].contains("gate changes was already approved by ops"), "\(r1)")
        try await Self.open(store, "r2", approvals: 2, deadline: deadline)
        let r2 = try await off {
            [Self.answer(store, "r2", approve: true, by: "ops"), Self.answer(store, "r2", approve: false, by: "lead"), Self.answer(store, "r2", approve: true, by: "carol")]
        }
        #expect(r2[0] == "200 1/2" && r2[1] == "200 1/2", "\(r2)")
        #expect(r2[2].hasPrefix("409 ") && r2[2].contains("denied by lead"), "\(r2)")
        // No answers are open any more: /runs shows no gate.
        #expect(try await off { try store.openGates(runID: "r2") }.isEmpty)
    }

    @Test(arguments: StoreKind.available)
    func theStoredDeadlineIsComparedInTheAnswersTransaction(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let store = try await db.open()
        // A whole second: what both stores keep exactly (SQLite keeps milliseconds, PostgreSQL microseconds).
        let deadline = Date(timeIntervalSince1970: (Date().timeIntervalSince1970 + 3600).rounded(.down))
        // 100 ms before the deadline: taken, and it decides.
        try await Self.open(store, "early", deadline: deadline)
        #expect(try await off { Self.answer(store, "early", approve: true, by: "ops", now: deadline.addingTimeInterval(-0.1)) } == "200 1/1")
        let early = try await off { try store.decideDeadline(runID: "early", gate: "changes", now: deadline) }
        #expect(early?.timedOut == false && early?.answers.map(\.name) == ["ops"])
        // At the deadline: the deadline came first; the answer is refused and the timeout recorded.
        try await Self.open(store, "late", deadline: deadline)
        let late = try await off { Self.answer(store, "late", approve: true, by: "ops", now: deadline) }
        #expect(late.hasPrefix("409 ") && late.contains("timed out at its deadline"), "\(late)")
        let lateState = try await off { try store.decideDeadline(runID: "late", gate: "changes", now: deadline.addingTimeInterval(5)) }
        #expect(lateState == GateState(answers: [], timedOut: true))
        // The run's clock before the stored deadline decides nothing; at it, the timeout is decided once.
        try await Self.open(store, "quiet", deadline: deadline)
        #expect(try await off { try store.decideDeadline(runID: "quiet", gate: "changes", now: deadline.addingTimeInterval(-0.05)) } == nil)
        #expect(try await off { try store.decideDeadline(runID: "quiet", gate: "changes", now: deadline) } == GateState(answers: [], timedOut: true))
        let after = try await off { Self.answer(store, "quiet", approve: false, by: "lead", now: deadline.addingTimeInterval(-1)) }
        #expect(after.hasPrefix("409 ") && after.contains("timed out"), "an answer after the decision is refused, whatever its clock says: \(after)")
    }

    @Test(arguments: StoreKind.available)
    func namesCompareTrimmedAndCaseFoldedTheUnicodeWay(_ kind: StoreKind) async throws {
        let db = try await StoreFixture.make(kind)
        let store = try await db.open()
        let deadline = Date().addingTimeInterval(3600)
        try await Self.open(store, "own", approvals: 2, deadline: deadline, startedBy: "alice")
        let own = try await off { [Self.answer(store, "own", approve: true, by: "Alice"), Self.answer(store, "own", approve: true, by: " ALICE ")] }
        #expect(own.allSatisfy { $0.hasPrefix("409 ") && $0.contains("cannot answer its own gate") }, "\(own)")
        try await Self.open(store, "twice", approvals: 3, deadline: deadline)
        let twice = try await off {
            [Self.answer(store, "twice", approve: true, by: "Straße"), Self.answer(store, "twice", approve: true, by: "STRASSE"),
             Self.answer(store, "twice", approve: true, by: "ΣΊΣΥΦΟΣ"), Self.answer(store, "twice", approve: true, by: "σίσυφος")]
        }
        #expect(twice[0] == "200 1/3" && twice[2] == "200 2/3", "\(twice)")
        #expect(twice[1].contains("already approved") && twice[3].contains("already approved"), "one person counts once: \(twice)")
        #expect(ApprovalRules.identity("ΣΊΣΥΦΟΣ") == ApprovalRules.identity("σίσυφος"))
        #expect("ΣΊΣΥΦΟΣ".lowercased() != "σίσυφος".lowercased(), "lowercased() alone would count them twice")
    }
}
