import Foundation
import RunbookCore
import RunbookRuntime
import RunbookStore
import RunbookStoreContract
import Testing

/// A run whose lease another owner took stops at once: it starts nothing new, undoes nothing,
/// writes nothing more and never ends on its own record (its new owner writes the one `run.finished`).
struct FencedSessionTests {
    /// Admits and opens a run of `runbook()` on a store that fences its owner at `fenceAt`.
    static func open(fenceAt: String, executor: any StepExecutor, dir: String) async throws -> (RunSession, SQLiteRunStore) {
        let base = try await blocking { try SQLiteRunStore(directory: dir) }
        let store = TimelineRefusingStore(base, fenceAt: fenceAt)
        let rule = ChangeApprovalRule(mayPause: false)
        guard case .admitted(let admitted) = try await admitOne(RunRequest(runbook: try runbook(), given: [:], trigger: "manual"), rule: rule, store: store) else {
            throw Refusal()
        }
        let env = RunEnvironment(store: store, executor: executor, rule: rule)
        return (try await blocking { try RunSession.open(admitted, environment: env) }, base)
    }

    struct Refusal: Error {}

    @Test func aFencedOwnerStartsNothingUndoesNothingAndWritesNoEnd() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let executor = ScriptedExecutor()
        // The change is applied and recorded; then another owner takes the run before verify starts.
        let (session, base) = try await Self.open(fenceAt: "step.started", executor: executor, dir: dir)
        let why = await withCheckedContinuation { (c: CheckedContinuation<String?, Never>) in
            session.begin(onEnd: { _, _ in c.resume(returning: nil) }, onLost: { _, why in c.resume(returning: why) })
        }
        #expect(why?.contains("fenced") == true, "the run ended on its own instead of stopping: \(why ?? "")")
        #expect(executor.requests.isEmpty, "a fenced owner started a step: \(executor.requests)")
        let events = try await blocking { base.timeline(session.runID) }
        #expect(events.map(\.event) == ["run.started"], "a fenced owner wrote: \(events.map(\.event))")
        #expect(try await blocking { try base.run(session.runID)?.outcome } == nil, "a fenced owner closed the row")
    }

    @Test func aFencedOwnerAfterItsChangeLeavesItForTheNextOwner() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let executor = ScriptedExecutor()
        // Fenced right after the change's record: the change happened; it is not undone here.
        let (session, base) = try await Self.open(fenceAt: "step.finished:flag-off", executor: executor, dir: dir)
        let why = await withCheckedContinuation { (c: CheckedContinuation<String?, Never>) in
            session.begin(onEnd: { _, _ in c.resume(returning: nil) }, onLost: { _, why in c.resume(returning: why) })
        }
        #expect(why != nil, "the run ended on its own")
        #expect(!executor.requests.map(\.step).contains("flat"), "verify ran after the owner was fenced")
        let events = try await blocking { base.timeline(session.runID) }.map(\.event)
        #expect(!events.contains("undo.started") && !events.contains("run.finished"), "\(events)")
        // The change went on record before the step's end: the next owner undoes it or lists it left in place.
        #expect(Array(events.suffix(2)) == ["step.started", "change.applied"], "\(events)")
    }
}
