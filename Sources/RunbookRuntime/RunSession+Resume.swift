import Foundation
import RunbookCore
import RunbookStoreContract

/// Going on with a run another process left: a paused run after a restart, a run whose owner died.
extension RunSession {
    /// How a resume ended.
    public enum Resumption: Sendable {
        /// The run can go on under this session: register it, then `begin` it.
        case resumed(RunSession)
        /// Its owner had written its end: the row now says so too (nothing is appended).
        case adopted(RunOutcome)
        /// It could not go on and was ended `interrupted`, saying why.
        case ended(String)
    }

    /// Goes on with the open run `record` from its timeline, under `holds`: finished steps keep their
    /// results, a read-only step that was running runs again, a change that was running is read
    /// back where it can be (`environment.inFlight`) and otherwise stops the run there.
    /// - Parameters:
    ///   - note: the event telling the resume (`run.resumed`, `run.taken_over`), written first.
    ///   - events: the run's timeline, when the caller read it already (read here when nil).
    ///   - environment: the run's environment, given who started it (who may not approve it).
    public static func resume(_ record: RunRecord, store: any RunDatabase, runbooks: [Runbook], holds: RunHolds, note: TimelineEvent,
                              events known: [TimelineEvent]? = nil, environment: (_ startedBy: String?) -> RunEnvironment) -> Resumption {
        switch prepareResume(record, store: store, runbooks: runbooks, holds: holds, note: note, events: known, environment: environment) {
        case .decided(let r): r
        case .ready(let pending): pending.open(noteWritten: false)
        }
    }

    /// Ends a run that cannot go on after its owner stopped, saying why, and gives up its holds.
    static func endResume(_ record: RunRecord, store: any RunDatabase, holds: RunHolds, why: String, now: Date) -> Resumption {
        try? store.finalize(runID: record.id, started: record.started, message: "could not go on after its owner stopped: \(why)", now: now)
        holds.release()
        return .ended(why)
    }

    /// What `prepareResume` found.
    public enum ResumePreparation: Sendable {
        /// The run was adopted or ended (nothing more to do).
        case decided(Resumption)
        /// The run can go on once its note is written (`PendingResume.open`).
        case ready(PendingResume)
    }

    /// The first half of `resume`: kills what the last owner's running steps left, adopts an end its
    /// owner wrote, ends a run that cannot go on; otherwise returns what `PendingResume.open` needs,
    /// having written nothing, so that a takeover can write the notes of many runs together.
    public static func prepareResume(_ record: RunRecord, store: any RunDatabase, runbooks: [Runbook], holds: RunHolds, note: TimelineEvent,
                                     events known: [TimelineEvent]? = nil, environment: (_ startedBy: String?) -> RunEnvironment) -> ResumePreparation {
        let id = record.id
        let now = note.time
        let events = known ?? store.timeline(id)
        // What is left of the last owner's running commands dies before anything is written or run
        // (steps that start no process are not looked for; with the runbook gone, every step is).
        let loaded = runbooks.first(where: { $0.name == record.runbook })
        RunLeftovers.kill(runID: id, events: events) { stepID in
            guard let step = loaded?.step(stepID) else { return true }
            return step.across != nil || step.action.spec.mayStartProcesses || step.undo?.spec.mayStartProcesses == true
        }
        let start = events.first { $0.event == "run.started" }
        func giveUp(_ why: String) -> ResumePreparation {
            .decided(endResume(record, store: store, holds: holds, why: why, now: now))
        }
        // The owner wrote its end but died before closing the row.
        if let end = events.last(where: { $0.event == "run.finished" }), let o = end.outcome.flatMap(RunOutcome.init(rawValue:)) {
            try? store.finish(runID: id, outcome: o, durationMs: end.durationMs ?? 0)
            holds.release()
            return .decided(.adopted(o))
        }
        guard let runbook = loaded else { return giveUp("runbook \(record.runbook) is not loaded here") }
        if runbook.params.contains(where: \.secret) { return giveUp("its secret params are not kept") }
        let values: [String: Value]
        do { values = try RunInputs.resolve(runbook, given: start?.params ?? [:]) } catch { return giveUp("\(error)") }
        var env = environment(start?.by)
        env.store = store
        return .ready(PendingResume(record: record, store: store, runbook: runbook, values: values, events: events, holds: holds, note: note, environment: env))
    }
}

/// A run ready to go on (`RunSession.prepareResume`): its note is all that is left to write.
public struct PendingResume: Sendable {
    public let record: RunRecord
    let store: any RunDatabase
    let runbook: Runbook
    let values: [String: Value]
    let events: [TimelineEvent]
    public let holds: RunHolds
    /// `run.resumed` or `run.taken_over`.
    public let note: TimelineEvent
    let environment: RunEnvironment

    /// Writes the note (unless the caller wrote it, with others: `noteWritten`) and makes the
    /// session that goes on with the run. A note another owner fenced ends it here, saying nothing.
    public func open(noteWritten: Bool) -> RunSession.Resumption {
        let id = record.id
        let health = RecordHealth()
        let fence = holds.fence
        guard let file = try? fence.map({ try store.timelineSink(fence: $0, health: health) }) ?? store.timelineSink(runID: id, health: health) else {
            return RunSession.endResume(record, store: store, holds: holds, why: "its timeline cannot be written", now: note.time)
        }
        if !noteWritten { file.record(note) }
        if health.fenced != nil {
            // Another owner took the run between the claim and this note: it is theirs.
            holds.release()
            return .ended("another owner holds it now")
        }
        let env = environment
        let alertRun = record.trigger.hasPrefix("alert:")
        var options = RunSession.options(for: runbook, runID: id, values: values, alertRun: alertRun, environment: env)
        options.autoConfirm = alertRun
        let stream = RunEventStream(secrets: RunInputs.secrets(runbook, values),
                                    record: [file, HistorySink(store: store, health: health, fence: fence, rowClosedByTimeline: file.closesRowAtRunFinished)],
                                    subscribers: env.subscribers)
        return .resumed(RunSession.make(runbook, options: options, facts: RunSession.facts(for: runbook, runID: id, alertRun: alertRun, environment: env),
                                        mode: .live, stream: stream, health: health, holds: holds, environment: env, resuming: events))
    }
}
