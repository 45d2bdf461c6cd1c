import Foundation

/// A gate a run waits at, as the driver must open it.
public struct GateRequest: Sendable {
    /// A step id, or `changes` (the run's gate before its first change).
    public var id: String
    public var gate: ApprovalGate
    /// Why the run waits: `confirm`, `guards.auto: ask`, a freeze window, the change breaker.
    public var reasons: [GateReason]
    /// The changes it would let through, templates rendered.
    public var changes: [String]
    /// When it times out (kept across a restart).
    public var deadline: Date
    /// Approvals recorded before a restart.
    public var approvedBy: [String]

    public init(id: String, gate: ApprovalGate, reasons: [GateReason], changes: [String], deadline: Date, approvedBy: [String]) {
        self.id = id
        self.gate = gate
        self.reasons = reasons
        self.changes = changes
        self.deadline = deadline
        self.approvedBy = approvedBy
    }
}

/// What a change step that was running when its owner died turned out to be, on takeover.
public enum InFlightVerdict: Sendable {
    /// It did not happen: run it again.
    case rerun
    /// It happened (read back): this is the change.
    case applied(AppliedChange)
    /// Nobody can tell (a command, a restart), for this reason (its words): the run stops there and
    /// ends `interrupted`.
    case unknown(String)
}

/// An answer at a gate.
public enum GateAnswer: Sendable, Equatable {
    case approved(by: String)
    case denied(by: String)
    case timedOut
}

/// Approval gates (SPEC §6.9): a step's `confirm` map, and the run's gate before its first change
/// (`guards.auto: ask`, a freeze window, the change breaker). A gate opens with `approval.requested`
/// (status `awaiting-approval`); distinct approvers are counted; a denial or a timeout with
/// `on_timeout: decline` stops the run, which ends `refused`.
extension RunStateMachine {
    /// The id of the run's gate before its first change.
    public static let changesGateID = "changes"

    /// The run's gate before its changes: not reached yet, `asking` (why it might wait, no answer
    /// yet), open, passed, or closed (the run stopped).
    enum GateProgress: Sendable, Equatable { case notReached, asking, open, passed, closed }

    /// True for the run's own gates (before its changes, and before each change over the breaker's cap):
    /// `changes`, `changes#2`, ... A step id cannot hold `#`.
    public static func isRunGate(_ id: String) -> Bool { id == changesGateID || id.hasPrefix(changesGateID + "#") }

    /// True when the step may not start yet because the run's changes wait at their gate, or for an
    /// answer about them (why they wait, a place in the breaker's window).
    func heldAtGate(_ s: Step) -> Bool {
        s.phase == .mitigate && !options.dryRun && (gates.progress == .open || gates.progress == .asking || breaker.asking != nil)
    }

    /// True when the run does nothing but wait for approvals: a server may leave it paused across a restart.
    public var isPausedForApproval: Bool {
        guard case .running = lifecycle, !gates.open.isEmpty else { return false }
        return states.attemptsRunning == 0 && states.prompts == 0 && states.retries == 0
    }

    /// The gates open now (for `/runs` and the terminal).
    public var gatesOpen: [GateRequest] { gates.open.values.sorted { $0.id < $1.id } }

    /// The answer to `askChangeReasons`: why the run's changes must wait for approval (empty: they
    /// need not). Reasons open the run's gate; an answer nobody asked for is ignored.
    public mutating func changeReasonsAnswered(_ reasons: [String], now: Date) -> [Effect] {
        guard gates.progress == .asking, case .running = lifecycle else { return [] }
        return decideChangeGate(reasons: reasons.map(GateReason.given), now: now) + advance(now: now)
    }

    /// Passes or opens the run's gate before its changes.
    mutating func decideChangeGate(reasons: [GateReason], now: Date) -> [Effect] {
        var reasons = reasons
        // A gate opened before a restart stays a gate, whatever holds now.
        if gates.earlierDeadlines[Self.changesGateID] != nil, reasons.isEmpty { reasons = [.openedBeforeRestart] }
        guard !reasons.isEmpty else {
            gates.progress = .passed
            return []
        }
        gates.progress = .open
        return openGate(Self.changesGateID, options.changesGate, reasons: reasons, now: now)
    }

    /// True when change step `s` must reserve its place in the breaker's window before it starts.
    func needsBreakerPlace(_ s: Step) -> Bool {
        options.reservesBreakerPlaces && s.phase == .mitigate && s.action.isChange && !options.dryRun
            && gates.progress == .passed && !breaker.cleared.contains(s.id)
    }

    /// The answer to `reserveBreakerPlace`: nil when the place is reserved (the step may start), else
    /// why the change would pass the breaker's cap. Over the cap, the run waits at a new run gate
    /// (`changes#N`) when someone can approve, else it stops, refused by the breaker. A place
    /// reserved for a step that can no longer start is given back at once.
    public mutating func breakerAnswered(step id: String, refusal: String?, now: Date) -> [Effect] {
        guard breaker.asking == id else { return refusal == nil ? [.releaseBreakerPlace(step: id)] : [] }
        breaker.asking = nil
        guard let s = runbook.step(id), states[id] == .pending, case .running = lifecycle else {
            return (refusal == nil ? [.releaseBreakerPlace(step: id)] : []) + advance(now: now)
        }
        guard let why = refusal else {
            breaker.cleared.insert(id)
            breaker.held.insert(id)
            return advance(now: now)
        }
        guard options.breakerMayAsk else {
            var e = event("guard.refused", now, step: s)
            e.guardName = "breaker"
            lifecycle = .stopping(.notApproved(Self.changesGateID, .refused(why)))
            return [.emitNote(e, .breakerRefused(why, before: s.id))] + advance(now: now)
        }
        breaker.gates += 1
        let gate = "\(Self.changesGateID)#\(breaker.gates + 1)"
        gates.progress = .open
        breaker.pending = s.id
        return openGate(gate, options.changesGate, reasons: [.given(why)], now: now) + advance(now: now)
    }

    mutating func openGate(_ id: String, _ gate: ApprovalGate, reasons: [GateReason], now: Date) -> [Effect] {
        let planned: [Step]
        if let next = breaker.pending {
            planned = runbook.step(next).map { [$0] } ?? []
        } else if Self.isRunGate(id) {
            planned = runbook.steps.filter { $0.phase == .mitigate && states[$0.id] == .pending }
        } else {
            planned = runbook.step(id).map { [$0] } ?? []
        }
        let changes = planned.map { ChangeText.exact($0.action) { $0.render(values.lookup) } }
        let deadline = gates.earlierDeadlines[id] ?? now.addingTimeInterval(gate.timeout)
        let request = GateRequest(id: id, gate: gate, reasons: reasons, changes: changes, deadline: deadline,
                                  approvedBy: gates.approvers[id] ?? [])
        gates.open[id] = request
        var e = event("approval.requested", now, step: Self.isRunGate(id) ? nil : runbook.step(id))
        e.gate = id
        e.status = "awaiting-approval"
        e.deadline = deadline
        let note = GateNotice(runID: options.runID, approvals: gate.approvals, reasons: reasons, deadline: deadline,
                              proceedsOnTimeout: gate.onTimeout == .proceed, changes: changes,
                              resumed: gates.earlierDeadlines[id] != nil, approvedSoFar: gates.approvers[id] ?? [])
        return [.emitNote(e, .gateOpened(note)), .openGate(request)]
    }

    /// An answer arrived at gate `id`: an approval (counted once per person), a denial, or the timeout.
    /// Answers to a gate that is not open are ignored.
    public mutating func gateAnswered(id: String, answer: GateAnswer, now: Date) -> [Effect] {
        guard let request = gates.open[id], case .running = lifecycle else { return [] }
        var e = event(Self.approvalEventName(answer), now, step: Self.isRunGate(id) ? nil : runbook.step(id))
        e.gate = id
        let need = request.gate.approvals
        switch answer {
        case .approved(let by):
            if gates.approvers[id, default: []].contains(by) { return [] }
            gates.approvers[id, default: []].append(by)
            let n = gates.approvers[id]!.count
            e.by = by
            e.status = n >= need ? "approved" : "awaiting-approval"
            let note = RunNote.gateApproved(by: by, count: n, needed: need)
            return n >= need ? [.emitNote(e, note)] + passGate(id, now: now) : [.emitNote(e, note)]
        case .denied(let by):
            e.by = by
            e.status = "declined"
            return [.emitNote(e, .gateDenied(by: by))] + declineGate(id, why: .denied(by: by), now: now)
        case .timedOut:
            let n = gates.approvers[id]?.count ?? 0
            let proceed = request.gate.onTimeout == .proceed
            e.status = proceed ? "approved" : "declined"
            let timeout = request.gate.timeout
            let note = RunNote.gateTimedOut(after: timeout, count: n, needed: need, proceeds: proceed)
            return [.emitNote(e, note)] + (proceed ? passGate(id, now: now) : declineGate(id, why: .timedOut(after: timeout), now: now))
        }
    }

    static func approvalEventName(_ a: GateAnswer) -> String {
        switch a {
        case .approved: "approval.granted"
        case .denied: "approval.denied"
        case .timedOut: "approval.timed_out"
        }
    }

    mutating func passGate(_ id: String, now: Date) -> [Effect] {
        gates.open[id] = nil
        var effects: [Effect] = [.closeGate(id: id, status: "approved")]
        if Self.isRunGate(id) {
            gates.progress = .passed
            if let cleared = breaker.pending { breaker.cleared.insert(cleared) }
            breaker.pending = nil
        } else if states[id] == .awaitingApproval, let step = runbook.step(id) {
            effects += startAttempt(step, attempt: 1, now: now)
        }
        return effects + advance(now: now)
    }

    mutating func declineGate(_ id: String, why: GateDecline, now: Date) -> [Effect] {
        gates.open[id] = nil
        var effects: [Effect] = [.closeGate(id: id, status: "declined")]
        if Self.isRunGate(id) {
            gates.progress = .closed
        } else if states[id] == .awaitingApproval, let step = runbook.step(id) {
            effects += markDone(id, .declined)
            var f = event("step.finished", now, step: step)
            f.status = StepStatus.declined.rawValue
            effects.append(.emitNote(f, .stepNotApproved(why)))
        }
        if case .running = lifecycle { lifecycle = .stopping(.notApproved(id, why)) }
        return effects + advance(now: now)
    }

    /// Closes every open gate because the run is stopping: steps waiting at one are skipped.
    mutating func closeAllGates(because reason: SkipReason, now: Date) -> [Effect] {
        var effects: [Effect] = []
        for s in runbook.steps where states[s.id] == .awaitingApproval {
            effects += skip(s, because: reason, now: now)
        }
        for id in gates.open.keys.sorted() { effects.append(.closeGate(id: id, status: "closed")) }
        gates.open.removeAll()
        if gates.progress == .open || gates.progress == .asking { gates.progress = .closed }
        return effects
    }

    // MARK: Resuming

    /// A run rebuilt from its timeline, to go on where it paused (a server restarted while it waited
    /// for approval). Finished steps keep their results and are never run again; changes made stay
    /// on the undo stack; gates keep their deadlines and the approvals already given.
    public init(runbook: Runbook, options: Options, resuming events: [TimelineEvent],
                inFlight verdict: ((Step, TemplateValues) -> InFlightVerdict)? = nil, now: Date = Date()) {
        self.init(runbook: runbook, options: options)
        var started = Set<String>(), recorded = Set<String>()
        // Undos under way when the owner stopped: each `undo.started` whose end is not on record.
        var undoOpen: [TimelineEvent] = []
        var stopping = false
        for e in events {
            if e.event == "step.started", let id = e.step { started.insert(id) }
            if e.event == "change.applied", let id = e.step { recorded.insert(id) }
            switch e.event {
            case "run.started":
                startedAt = e.time
            case "step.finished":
                guard let id = e.step, states[id] == .pending, let status = StepStatus(rawValue: e.status ?? "") else { continue }
                if let o = e.output { values.outputs[id] = o }
                _ = markDone(id, status)
            case "change.applied":
                guard let id = e.step, let step = runbook.step(id) else { continue }
                changes.append((id, Self.restoredChange(e, step: step)))
            case "undo.started":
                stopping = true
                undoOpen.append(e)
            case "undo.finished", "undo.failed":
                stopping = true
                if let k = undoOpen.firstIndex(where: { $0.step == e.step && $0.target == e.target }) { undoOpen.remove(at: k) }
                guard let i = restoredChangeIndex(step: e.step, target: e.target) else { continue }
                if e.event == "undo.finished" { undoRecord.undone.insert(i) } else { undoRecord.failures += 1; undoRecord.settled.insert(i) }
            case "approval.requested":
                if let g = e.gate, let d = e.deadline { gates.earlierDeadlines[g] = d }
            case "approval.granted", "approval.timed_out":
                guard let g = e.gate else { continue }
                if let by = e.by, !(gates.approvers[g] ?? []).contains(by) { gates.approvers[g, default: []].append(by) }
                if e.status == "approved", g == Self.changesGateID { gates.progress = .passed }
                if e.status == "approved", g.hasPrefix(Self.changesGateID + "#") { breaker.gates = max(breaker.gates, Int(g.dropFirst(Self.changesGateID.count + 1)) ?? 1) }
            default:
                continue
            }
        }
        // The owner was undoing when it stopped: an undo whose end is not on record may or may not
        // have happened, so it is not run again (twice could be worse than once); the record says so.
        for open in undoOpen {
            guard let i = restoredChangeIndex(step: open.step, target: open.target) else { continue }
            undoRecord.failures += 1
            undoRecord.settled.insert(i)
            var f = event("undo.failed", now, step: open.step.flatMap { runbook.step($0) })
            f.status = StepStatus.errored.rawValue
            f.what = open.what
            f.target = open.target
            resumeEffects.append(.emitNote(f, .undoFailed(changes[i].change.summary, .ownerStopped)))
        }
        // A run that was stopping goes on stopping: what is left is undone and it ends, never `mitigated`.
        if stopping, case .running = lifecycle {
            let failed = runbook.steps.first { s in
                if case .done(let status) = states[s.id] { return status.isFailure }
                return false
            }
            lifecycle = .stopping(failed.map { .failed($0.id) } ?? .interrupted(keepChanges: false))
        }
        // Steps that were running when the owner died: read-only ones run again (they are still
        // pending); a change is checked where it can be, else the run stops there.
        for s in runbook.steps where started.contains(s.id) && states[s.id] == .pending && s.action.isChange {
            // Its change is on record (the owner stopped before the step's end): it happened.
            if recorded.contains(s.id) {
                _ = markDone(s.id, .passed)
                var f = event("step.finished", now, step: s)
                f.status = StepStatus.passed.rawValue
                resumeEffects.append(.emitNote(f, .changeRecordedBeforeTakeover))
                continue
            }
            switch verdict?(s, values) {
            case .rerun?:
                continue
            case .applied(let change)?:
                _ = markDone(s.id, .passed)
                changes.append((s.id, change))
                var f = event("step.finished", now, step: s)
                f.status = StepStatus.passed.rawValue
                resumeEffects += [.emitNote(f, .changeFoundAfterTakeover(change.summary)), changeAppliedEvent(change, by: s, now: now)]
            case .unknown(let why)?:
                resumeEffects.append(cutOff(s, because: why, now: now))
            case nil:
                resumeEffects.append(cutOff(s, because: nil, now: now))
            }
        }
    }

    /// A change step found running on takeover whose change nobody can tell: failed, and the run
    /// stops there (`why`: the verdict's words; nil: it cannot be read back).
    mutating func cutOff(_ s: Step, because why: String?, now: Date) -> Effect {
        _ = markDone(s.id, .failed)
        var f = event("step.finished", now, step: s)
        f.status = StepStatus.failed.rawValue
        lifecycle = .stopping(.cutOff(s.id))
        return .emitNote(f, .cutOffMidChange(why))
    }

    /// The newest restored change of `step` (on `target`) not yet undone or settled.
    func restoredChangeIndex(step: String?, target: String?) -> Int? {
        changes.indices.last { i in
            changes[i].step == step && changes[i].change.target == target && !undoRecord.undone.contains(i) && !undoRecord.settled.contains(i)
        }
    }

    /// A change as its `change.applied` event recorded it, with the flag-file undo rebuilt from
    /// the event's structured fields.
    static func restoredChange(_ e: TimelineEvent, step: Step) -> AppliedChange {
        var c = AppliedChange(restoring: e, fallbackWhat: step.id)
        // Recorded before `change.applied` carried the flag's fields: the step's own spec names the
        // flag when its key is literal (a templated key is not guessed from text).
        if c.automaticUndo == nil, case .flag(let f) = step.action.spec, f.file != nil, let key = f.key, key.isLiteral,
           let setting = f.setting, let path = e.location {
            c.automaticUndo = .flagFile(path: path, key: key.source, field: setting.field, previous: JSONText.string(e.from ?? ""))
        }
        return c
    }
}
