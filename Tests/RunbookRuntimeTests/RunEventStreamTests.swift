import Foundation
import RunbookCore
import RunbookRuntime
import RunbookStore
import RunbookStoreContract
import Testing

/// One stream per run: the record is complete whatever its watchers do.
struct RunEventStreamTests {
    @Test func aWatcherThatNeverReadsIsDroppedWhileTheRunCompletesOnRecord() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try await blocking { try SQLiteRunStore(directory: dir) }
        let (session, outcome, watched) = try await Self.runWatched(checks: 40, bufferSize: 4, store: store)
        #expect(outcome == .mitigated)
        let record = try await blocking { store.timeline(session.runID) }
        #expect(record.first?.event == "run.started")
        #expect(record.last?.event == "run.finished")
        #expect(record.filter { $0.event == "step.finished" }.count == 42)
        var seen: [TimelineEvent] = []
        var end: (any Error)?
        do {
            for try await e in watched { seen.append(e) }
        } catch {
            end = error
        }
        #expect(seen.count == 4)
        #expect(end as? RunWatchEnd == .fellBehind(run: session.runID, bufferSize: 4))
        #expect("\(end.map { "\($0)" } ?? "")".contains("dropped"))
        #expect(session.events.watcherCount == 0)
    }

    @Test func aWatcherThatKeepsUpSeesWhatTheRecordHolds() async throws {
        let dir = temporaryFolder()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let store = try await blocking { try SQLiteRunStore(directory: dir) }
        let (session, _, watched) = try await Self.runWatched(checks: 5, bufferSize: 1000, store: store)
        var seen: [TimelineEvent] = []
        for try await e in watched { seen.append(e) }
        // The start was on record before the watcher came; every later event reached both, in order.
        let record = try await blocking { store.timeline(session.runID) }.dropFirst()
        #expect(seen.map(\.event) == record.map(\.event))
        #expect(seen.map(\.step) == record.map(\.step))
        // A watcher that comes after the end is ended at once.
        var late = 0
        for try await _ in session.events.watch() { late += 1 }
        #expect(late == 0)
    }

    @Test func secretsAreRedactedForEverySubscriber() async throws {
        let collector = TimelineCollector()
        let stream = RunEventStream(secrets: ["hunter22"], record: [collector])
        let watcher = stream.watch(bufferSize: 8)
        var e = TimelineEvent(time: Date(), run: "r-1", event: "step.finished")
        e.message = "token hunter22 refused"
        stream.record(e)
        stream.finish()
        #expect(collector.events.first?.message == "token *** refused")
        var watched: [TimelineEvent] = []
        for try await w in watcher { watched.append(w) }
        #expect(watched.map(\.message) == ["token *** refused"])
    }
}

extension RunEventStreamTests {
    /// Admits and runs a runbook of `checks` checks on `store`, with one watcher attached before
    /// the steps start.
    static func runWatched(checks: Int, bufferSize: Int, store: SQLiteRunStore) async throws
        -> (RunSession, RunOutcome, AsyncThrowingStream<TimelineEvent, any Error>) {
        let rule = ChangeApprovalRule(mayPause: false)
        let request = RunRequest(runbook: try runbook(checks: checks), given: [:], trigger: "manual")
        guard case .admitted(let admitted) = try await admitOne(request, rule: rule, store: store) else {
            throw NotAdmitted()
        }
        let box = WatchBox()
        let (session, outcome) = try await runToEnd(admitted, RunEnvironment(store: store, executor: ScriptedExecutor(), rule: rule)) {
            box.stream = $0.events.watch(bufferSize: bufferSize)
        }
        return (session, outcome, box.stream!)
    }

    struct NotAdmitted: Error {}
}

/// Hands a watcher from the session's set-up to the test.
final class WatchBox: @unchecked Sendable {
    // Set once before the run begins, read after it ends.
    var stream: AsyncThrowingStream<TimelineEvent, any Error>?
}
