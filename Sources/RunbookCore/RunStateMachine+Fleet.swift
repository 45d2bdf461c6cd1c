import Foundation

/// Changes on the change stack, and an `across:` step's per-host progress (issue 22): each host's
/// change joins the stack as it is made, so a step stopped halfway is undone host by host.
extension RunStateMachine {
    /// A running `across:` step reported a host's event (and maybe its change). Late reports from
    /// a stopped attempt are ignored: its hosts were cancelled.
    public mutating func fleetProgress(step id: String, attempt: Int, _ progress: FleetProgress, now: Date) -> [Effect] {
        guard states[id] == .running(attempt: attempt), let step = runbook.step(id) else { return [] }
        var e = progress.event
        e.time = now
        e.run = options.runID
        e.step = step.id
        e.phase = step.phase.rawValue
        var effects: [Effect] = [.emit(e)]
        if let c = progress.change { effects += applied(c, by: step, recorded: !c.simulated, now: now) }
        return effects
    }

    /// An alarm fired: a running `across:` step starts no new host, and the hosts in flight finish,
    /// their changes joining the stack as they come (undone with the rest, host by host, once the
    /// step ends); every other running step is stopped as on any stop.
    mutating func stopForAlarm(_ alarm: String, now: Date) -> [Effect] {
        let fleets = runbook.steps.filter { s in
            guard s.across != nil, case .running = states[s.id] else { return false }
            return true
        }.map(\.id)
        return stopRunningSteps(.alarm(alarm), now: now, except: Set(fleets))
            + fleets.map { .haltFleet(step: $0, alarm: alarm) }
    }

    /// `change.applied` for change `c` of `step`.
    func changeAppliedEvent(_ c: AppliedChange, by step: Step, now: Date) -> Effect {
        var e = event("change.applied", now, step: step)
        e.record(c)
        let note = changeNote((step.id, c))
        if !note.undoable { e.undoable = false }
        return .emitNote(e, .changeApplied(note))
    }

    /// Puts a change on the stack (undone in reverse), starts the alarms at the first one and,
    /// when it was made for real, records `change.applied`.
    mutating func applied(_ c: AppliedChange, by step: Step, recorded: Bool, now: Date) -> [Effect] {
        changes.append((step.id, c))
        var effects: [Effect] = []
        if !alarms.running, !runbook.abortIf.isEmpty, case .running = lifecycle {
            alarms.running = true
            effects += runbook.abortIf.map { .scheduleAlarm(id: $0.id) }
        }
        guard recorded else { return effects }
        return effects + [changeAppliedEvent(c, by: step, now: now)]
    }
}
