import Foundation

/// Scheduling: which ready steps start now (by phase, file order, needs, `when` and the caps on
/// processes and network checks), when a phase is done, and the detect gate.
extension RunStateMachine {
    /// What starts when (see `RunStateMachine.schedule`).
    struct Schedule: Sendable {
        /// Index into `phases` of the phase in progress.
        var phaseIndex = 0
        /// Needs not yet finished, per step.
        var waitingOn: [String: Int]
        /// Per phase: steps whose needs are all finished and that have not started.
        var candidates: [[String]]
        /// Per phase: steps not yet finished.
        var unfinished: [Int]

        /// The candidates of the phase in progress.
        var readyInPhase: [String] {
            get { candidates[phaseIndex] }
            set { candidates[phaseIndex] = newValue }
        }
    }

    /// What a step's attempt occupies while it runs, for the caps.
    enum Resource: Sendable {
        case process, network, free
    }

    static func resource(of step: Step) -> Resource {
        switch step.action.kind {
        case .command, .restart: return .process
        case .check:
            switch step.action.checkKind {
            case "command": return .process
            case "http", "tcp", "prometheus", "metric_trend": return .network
            default: return .free
            }
        case .flag:
            if case .flag(let f) = step.action.spec, f.file != nil { return .free }
            return .network
        case .notify: return .network
        case .wait: return .free
        }
    }

    func hasRoom(for step: Step) -> Bool {
        switch Self.resource(of: step) {
        case .process: return states.attempts[.process, default: 0] < options.maxParallel
        case .network: return states.attempts[.network, default: 0] < options.maxNetwork
        case .free: return true
        }
    }

    /// Starts what can start; moves phases on; ends the run.
    mutating func advance(now: Date) -> [Effect] {
        guard finishedOutcome == nil else { return [] }
        var effects: [Effect] = []
        if isUndoing { return effects }
        if stop != nil, alarms.running {
            alarms.running = false
            effects.append(.stopAlarms)
        }
        if let stop {
            let reason = SkipReason.runStopped(stop)
            // Nobody need answer a gate of a run that is stopping.
            effects += closeAllGates(because: reason, now: now)
            guard states.inFlight == 0 else { return effects }
            for s in runbook.steps {
                switch states[s.id] {
                case .pending: effects += skip(s, because: reason, now: now)
                case .retryWait:
                    effects.append(.cancelRetry(step: s.id))
                    effects += skip(s, because: reason, now: now)
                default: break
                }
            }
            var undoAllowed = true
            if case .interrupted(let keepChanges) = stop, options.noUndo || keepChanges { undoAllowed = false }
            let plan = undoAllowed
                ? changes.indices.reversed().filter { !undoRecord.undone.contains($0) && !undoRecord.settled.contains($0) && isUndoable(changes[$0]) }
                    .map { PlannedUndo(step: changes[$0].step, change: changes[$0].change) }
                : []
            if !plan.isEmpty {
                lifecycle = .undoing(UndoProgress(stop: stop, plan: plan))
                return effects + continueUndo(now: now)
            }
            return effects + end(now: now)
        }
        var progressed = true
        while progressed, finishedOutcome == nil {
            progressed = false
            guard schedule.phaseIndex < phases.count else { return effects + end(now: now) }
            let phase = phases[schedule.phaseIndex]
            // Start (or skip) the ready steps of this phase in file order, up to the parallel limit.
            var ready = schedule.readyInPhase.sorted { graph.index[$0]! < graph.index[$1]! }
            schedule.readyInPhase = []
            var deferred: [String] = []
            while !ready.isEmpty {
                let id = ready.removeFirst()
                guard states[id] == .pending, let s = runbook.step(id) else { continue }
                if let w = s.when {
                    if !w.evaluate(values.lookup).truthy {
                        effects += skip(s, because: .whenFalse("\(w)"), now: now)
                        progressed = true
                        continue
                    }
                } else if let bad = s.needs.first(where: { !(values.statuses[$0]?.succeeded ?? false) }) {
                    effects += skip(s, because: .needs(step: bad, status: values.statuses[bad]), now: now)
                    progressed = true
                    continue
                }
                // A step waits for room of its own kind only: waits never wait for processes.
                guard hasRoom(for: s) else {
                    deferred.append(id)
                    continue
                }
                // The run's changes wait at its gate (auto: ask, a freeze, the breaker) until approved.
                if s.phase == .mitigate, !options.dryRun, gates.progress != .passed {
                    if gates.progress == .notReached {
                        if options.asksBeforeChanges {
                            // Asked once; nothing starts until the answer (`changeReasonsAnswered`).
                            gates.progress = .asking
                            effects.append(.askChangeReasons)
                            schedule.readyInPhase = deferred + [id] + ready + schedule.readyInPhase
                            return effects
                        }
                        effects += decideChangeGate(reasons: [], now: now)
                    }
                    if gates.progress != .passed {
                        deferred.append(id)
                        continue
                    }
                }
                if breaker.asking != nil, s.phase == .mitigate {
                    deferred.append(id)
                    continue
                }
                if needsBreakerPlace(s) {
                    // Nothing starts until the store answers (`breakerAnswered`): the same order as ever.
                    breaker.asking = s.id
                    effects.append(.reserveBreakerPlace(step: s.id))
                    schedule.readyInPhase = deferred + [id] + ready + schedule.readyInPhase
                    return effects
                }
                progressed = true
                if options.dryRun, s.phase == .verify {
                    effects += skip(s, because: .wouldVerify, now: now)
                    progressed = true
                    continue
                }
                if let gate = s.gate, !options.dryRun {
                    states[s.id] = .awaitingApproval
                    effects += openGate(s.id, gate, reasons: [.confirm], now: now)
                } else if s.confirm, !options.autoConfirm, !options.dryRun {
                    states[s.id] = .awaitingConfirmation
                    effects.append(.askConfirmation(step: s.id))
                } else {
                    effects += startAttempt(s, attempt: 1, now: now)
                }
            }
            schedule.readyInPhase = deferred + schedule.readyInPhase
            if stop != nil { return effects + advance(now: now) }
            if schedule.unfinished[schedule.phaseIndex] == 0 {
                let steps = phaseSteps[schedule.phaseIndex]
                if phase == .detect {
                    let statuses = steps.map { values.statuses[$0.id] }
                    let confirmed = runbook.detect == .all ? statuses.allSatisfy { $0 == .passed } : statuses.contains(.passed)
                    if !confirmed {
                        // Could not measure is not the same as healthy: nobody knows.
                        let unknown = statuses.contains { $0 == .errored || $0 == .timedOut }
                        for s in runbook.steps where states[s.id] == .pending {
                            effects += skip(s, because: .detectEnded(inconclusive: unknown), now: now)
                        }
                        return effects + end(now: now, outcome: unknown ? .inconclusive : .notConfirmed)
                    }
                }
                schedule.phaseIndex += 1
                progressed = true
            } else if schedule.readyInPhase.contains(where: { id in runbook.step(id).map { hasRoom(for: $0) && !heldAtGate($0) } ?? false }) {
                progressed = true
            }
        }
        return effects
    }
}
