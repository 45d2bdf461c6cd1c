import Foundation
import RunbookCore

/// How a run's end is told when its owner cannot tell it, the same on both stores: refused runs
/// from their row, runs whose owner died from their timeline.
public enum RunEndings {
    /// How a run whose owner is gone is closed.
    public enum Closing: Sendable {
        /// Its owner wrote its `run.finished` but died before closing the row: that outcome is
        /// adopted and nothing is written to the timeline.
        case adopt(RunOutcome, durationMs: Int)
        /// One `run.finished interrupted` is appended.
        case interrupt(TimelineEvent)
    }

    /// The closing of a run whose owner is gone: its own end when written, else one interrupted end.
    public static func closing(runID: String, started: Date, message: String, events: [TimelineEvent], now: Date) -> Closing {
        if let end = events.last(where: { $0.event == "run.finished" }), let o = end.outcome.flatMap(RunOutcome.init(rawValue:)) {
            return .adopt(o, durationMs: end.durationMs ?? 0)
        }
        return .interrupt(interruptedEnd(runID: runID, started: started, message: message, events: events, now: now))
    }

    /// The one `run.finished` `interrupted` of a run ended for it (its owner is gone): `message`, then
    /// the changes it left in place.
    public static func interruptedEnd(runID: String, started: Date, message: String, events: [TimelineEvent], now: Date) -> TimelineEvent {
        var e = TimelineEvent(time: now, run: runID, event: "run.finished")
        e.outcome = RunOutcome.interrupted.rawValue
        e.durationMs = Int(now.timeIntervalSince(started) * 1000)
        let left = RunbookChangesLeft.texts(events)
        e.message = message + (left.isEmpty ? "" : "; left in place: " + left.joined(separator: "; "))
        return e
    }

    /// "cut off …; last completed step: X (passed); its changes are not repeated".
    public static func cutOffMessage(_ events: [TimelineEvent]) -> String {
        let last = events.last { $0.event == "step.finished" }
        return "cut off before it finished (its process died); last completed step: \(last?.step ?? "none")\(last?.status.map { " (\($0))" } ?? ""); its changes are not repeated"
    }

    /// Why a paused run is not resumed: its gate's deadline passed while no server held it.
    public static func staleGateMessage(deadline: Date) -> String {
        "paused for approval, but its deadline \(TimelineEvent.timestamp(deadline)) passed while no server was running: not resumed (a stale gate never proceeds); no further step ran"
    }

    /// Whether a paused run's timeline lets it be resumed: not finished, and no step started and not
    /// finished (it waited at a gate, nothing was running).
    public static func isQuietlyPaused(_ events: [TimelineEvent]) -> Bool {
        if events.contains(where: { $0.event == "run.finished" }) { return false }
        var inFlight = Set<String>()
        for e in events {
            if e.event == "step.started", let s = e.step { inFlight.insert(s) }
            if e.event == "step.finished", let s = e.step { inFlight.remove(s) }
        }
        return inFlight.isEmpty
    }

    /// The timeline of a refused run, told from its row (refusals are rows, never files); nil for any other run.
    public static func refusedTimeline(_ r: RunRecord) -> [TimelineEvent]? {
        guard r.outcome == RunOutcome.refused.rawValue, let g = r.refusalGuard else { return nil }
        var start = TimelineEvent(time: r.started, run: r.id, event: "run.started")
        start.runbook = r.runbook
        start.trigger = r.trigger
        start.dryRun = r.dryRun
        var events = refusalEvents(start: start, refusal: GuardCheck.Refusal(guardName: g, until: r.refusalUntil, message: r.refusalMessage ?? ""))
        if let n = r.refusedCount, n > 1 { events[2].message = (events[2].message ?? "") + " (\(n) times)" }
        return events
    }

    /// The events of a refused run: its start, the `guard.refused` with guard and until, and its end.
    public static func refusalEvents(start: TimelineEvent, refusal r: GuardCheck.Refusal) -> [TimelineEvent] {
        var e = TimelineEvent(time: start.time, run: start.run, event: "guard.refused")
        e.guardName = r.guardName
        e.until = r.until
        e.message = r.message
        var end = TimelineEvent(time: start.time, run: start.run, event: "run.finished")
        end.outcome = RunOutcome.refused.rawValue
        end.durationMs = 0
        end.message = "refused by guard \(r.guardName)"
        return [start, e, end]
    }
}

/// Closes the history row when the run finishes (the row was written when the run was admitted),
/// and records each change for the breaker.
public struct HistorySink: TimelineSink {
    let store: any RunDatabase
    let health: RecordHealth?
    /// The owner's fence: the row is closed only while it owns the run.
    let fence: RunFence?
    /// The run's timeline closes the row as it appends `run.finished`
    /// (`DurableTimeline.closesRowAtRunFinished`): it is not closed again here.
    let rowClosedByTimeline: Bool

    public init(store: any RunDatabase, health: RecordHealth? = nil, fence: RunFence? = nil, rowClosedByTimeline: Bool = false) {
        self.store = store
        self.health = health
        self.fence = fence
        self.rowClosedByTimeline = rowClosedByTimeline
    }

    public func record(_ event: TimelineEvent) {
        if event.event == "change.applied" {
            do { try store.recordChange(runID: event.run, at: event.time) } catch {
                health?.report("\(StoreError(path: store.location, error))")
            }
        }
        if event.event == "run.finished", !rowClosedByTimeline, let o = event.outcome.flatMap(RunOutcome.init(rawValue:)) {
            do {
                if let fence { try store.finish(fence, outcome: o, durationMs: event.durationMs ?? 0) } else {
                    try store.finish(runID: event.run, outcome: o, durationMs: event.durationMs ?? 0)
                }
            } catch {
                health?.report(error, location: store.location)
            }
        }
    }
}
