import Dispatch
import Foundation
import RunbookActions
import RunbookCore
import RunbookStoreContract

/// Going on with runs another process left: paused runs after a restart (either store), and runs
/// whose owner died (PostgreSQL replicas).
extension RunLauncher {
    /// Resumes runs left paused for approval by a server that stopped (or died): each goes on from
    /// its timeline, still paused, its gates' deadlines and approvals kept, its lock key still held by
    /// its open row. A run that can no longer go on (its runbook is gone, its params no longer pass)
    /// ends `interrupted`; one whose deadline passed meanwhile is ended by the store, not resumed.
    /// Returns the ids resumed.
    @discardableResult
    public func resumePaused(runbooks: [Runbook], now: Date = Date()) -> [String] {
        var resumed: [String] = []
        for (id, lease) in (try? store.takePausedRuns(now: now)) ?? [] {
            guard let record = try? store.run(id), record.outcome == nil else {
                lease.release()
                continue
            }
            let note = "resumed by a new server process: still waiting for approval; finished steps are not run again"
            if resume(record, lease: lease, runLock: nil, runbooks: runbooks, event: "run.resumed", message: note, now: now) { resumed.append(id) }
        }
        return resumed
    }

    /// Goes on with an open run from its timeline, under `lease`: finished steps keep their results,
    /// a read-only step that was running runs again, a change that was running is read back where it
    /// can be (a flag file) and otherwise stops the run there. Returns false when it could not go on
    /// (it is then ended `interrupted`, saying why).
    func resume(_ record: RunRecord, lease: any RunHold, runLock: (any RunHold)?, runbooks: [Runbook],
                event name: String, message: String, from previousOwner: String? = nil, now: Date) -> Bool {
        let id = record.id
        let events = store.timeline(id)
        let start = events.first { $0.event == "run.started" }
        func giveUp(_ why: String) -> Bool {
            try? store.finalize(runID: id, started: record.started, message: "could not go on after its owner stopped: \(why)", now: now)
            lease.release()
            runLock?.release()
            return false
        }
        // The owner wrote its end but died before closing the row.
        if let end = events.last(where: { $0.event == "run.finished" }), let o = end.outcome.flatMap(RunOutcome.init(rawValue:)) {
            try? store.finish(runID: id, outcome: o, durationMs: end.durationMs ?? 0)
            lease.release()
            runLock?.release()
            return false
        }
        guard let runbook = runbooks.first(where: { $0.name == record.runbook }) else { return giveUp("runbook \(record.runbook) is not loaded here") }
        if runbook.params.contains(where: \.secret) { return giveUp("its secret params are not kept") }
        let values: [String: Value]
        do { values = try RunInputs.resolve(runbook, given: start?.params ?? [:]) } catch { return giveUp("\(error)") }
        let health = RecordHealth()
        guard let file = try? store.timelineSink(runID: id, health: health) else { return giveUp("its timeline cannot be written") }
        var e = TimelineEvent(time: now, run: id, event: name)
        e.message = message
        e.from = previousOwner
        if let replicated = store as? any ReplicatedRunDatabase { e.to = replicated.owner }
        file.record(e)
        var options = RunStateMachine.Options(runID: id, params: values)
        options.autoConfirm = record.trigger.hasPrefix("alert:")
        options.beforeChanges = reasonsBeforeChanges(runbook, alertRun: record.trigger.hasPrefix("alert:"))
        options.breakerBeforeChange = breakerCheck()
        options.breakerMayAsk = Self.hasApprovalPath(runbook)
        run(runbook, options: options, file: file, health: health, by: start?.by, lease: lease, runLock: runLock, resuming: events)
        return true
    }

    /// With a database replicas share: every 2 s, claims runs whose owner stopped renewing its lease
    /// (it died, or lost the database) and takes them over (`run.taken_over`, from and to). Runs this
    /// process held and another took meanwhile are dropped here without a word (their new owner
    /// writes on). Returns the timer; cancel it to stop.
    public func startTakeovers(runbooks: [Runbook], every: Double = 2, logger: @escaping @Sendable (String) -> Void = { _ in }) -> (any DispatchSourceTimer)? {
        guard let shared = store as? any ReplicatedRunDatabase else { return nil }
        shared.onLost = { [weak self] ids in
            guard let self else { return }
            for id in ids {
                let d = self.lock.withLock { self.drivers.removeValue(forKey: id) }
                if let d, d.detach() { logger("lost run \(id) to another replica: stopped driving it") }
            }
        }
        let timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "runbook.takeover"))
        timer.schedule(deadline: .now() + every, repeating: every, leeway: .milliseconds(200))
        timer.setEventHandler { [weak self] in
            guard let self else { return }
            // Claim in batches until none is left: a dead replica may have owned hundreds of runs.
            var claimed: [(runID: String, previousOwner: String?, lease: any RunHold)] = []
            while true {
                let batch = (try? shared.claimExpiredRuns(limit: 200)) ?? []
                claimed += batch
                if batch.count < 200 { break }
            }
            for c in claimed {
                let t0 = Date()
                guard let record = try? shared.run(c.runID), record.outcome == nil else {
                    c.lease.release()
                    continue
                }
                let ok = self.resume(record, lease: c.lease, runLock: nil, runbooks: runbooks, event: "run.taken_over",
                                     message: "taken over by \(shared.owner) from \(c.previousOwner ?? "nobody"): its lease expired; finished steps are not run again",
                                     from: c.previousOwner, now: t0)
                self.lock.withLock { self.takeovers += 1 }
                logger("took over run \(c.runID) from \(c.previousOwner ?? "?")\(ok ? "" : " (ended: it could not go on)")")
            }
        }
        timer.resume()
        return timer
    }

    /// What a change step that was running when its owner died did: a flag file is read back (at
    /// its target: it happened, from an unknown value, so it cannot be undone; not: run it again);
    /// anything else cannot be told.
    static func readBack(_ step: Step, _ values: TemplateValues) -> InFlightVerdict {
        let c = step.action.config
        guard step.action.kind == .flag, c["file"] != nil else { return .unknown("a \(step.action.kind.rawValue) cannot be read back") }
        let t = FlagFile.target(c) { $0?.template?.render(values.lookup) }
        guard let data = FileManager.default.contents(atPath: t.path), let (text, _) = try? FlagFile.locate(in: data, key: t.key, field: t.field) else {
            return .unknown("flag file \(t.path) cannot be read")
        }
        guard FlagFile.plain(text) == t.value else { return .rerun }
        return .applied(AppliedChange(what: t.what, from: "?", to: t.value, location: t.path))
    }
}
