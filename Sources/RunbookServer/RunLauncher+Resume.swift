import Dispatch
import CoreMetrics
import Foundation
import RunbookActions
import RunbookCore
import RunbookRuntime
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
            if resume(record, lease: lease, runbooks: runbooks, event: "run.resumed", message: note, now: now) { resumed.append(id) }
        }
        return resumed
    }

    /// Goes on with an open run from its timeline, under `lease` (`RunSession.resume`). Returns false
    /// when it could not go on (it is then ended `interrupted`, saying why, or its owner's own end is adopted).
    func resume(_ record: RunRecord, lease: any RunHold, runbooks: [Runbook], event name: String, message: String, now: Date) -> Bool {
        let note = resumeNote(runID: record.id, event: name, message: message, from: nil, now: now)
        let holds = RunHolds(lease: lease)
        switch RunSession.resume(record, store: store, runbooks: runbooks, holds: holds, note: note, environment: environment(startedBy:)) {
        case .resumed(let session):
            drive(session)
            return true
        case .adopted, .ended:
            return false
        }
    }

    /// The event that tells a resume (`run.resumed`, `run.taken_over`): from the previous owner, to this one.
    func resumeNote(runID: String, event name: String, message: String, from previousOwner: String?, now: Date) -> TimelineEvent {
        var note = TimelineEvent(time: now, run: runID, event: name)
        note.message = message
        note.from = previousOwner
        if let replicated = store as? any ReplicatedRunDatabase { note.to = replicated.owner }
        return note
    }

    /// With a database replicas share: runs this process held and another took meanwhile, or whose
    /// lease it gave up because it could not renew it in time, are dropped here without a word:
    /// their running commands are killed, nothing is undone or written (their next owner goes on
    /// from the timeline). The run queues may be waiting for the database: stopping never waits
    /// for them (`RunSession.stopNow`).
    func watchLostRuns(logger: @escaping @Sendable (String) -> Void) {
        guard let shared = store as? any ReplicatedRunDatabase else { return }
        shared.onLost = { [weak self] ids in
            guard let self else { return }
            for id in ids {
                let (s, waiters) = self.lock.withLock { (self.sessions.removeValue(forKey: id), self.takeIdleWaiters()) }
                waiters.forEach { $0() }
                if let s, s.stopNow() {
                    self.metrics.leasesLost?.increment()
                    logger("lost run \(id) (another replica holds it, or its lease could not be renewed in time): its commands killed, stopped driving it")
                }
            }
        }
    }

    /// With a database replicas share: claims runs whose owner stopped renewing its lease (it died,
    /// or lost the database) and takes them over (`run.taken_over`, from and to). Blocks on the
    /// store: call it from the server's own threads (`TakeoverService`).
    func takeOverExpiredRuns(runbooks: [Runbook], logger: @escaping @Sendable (String) -> Void) {
        guard let shared = store as? any ReplicatedRunDatabase else { return }
        // Claim in batches until none is left: a dead replica may have owned hundreds of runs.
        var claimed: [(runID: String, previousOwner: String?, lease: any RunHold)] = []
        while true {
            let batch = (try? shared.claimExpiredRuns(limit: 200)) ?? []
            claimed += batch
            if batch.count < 200 { break }
        }
        guard !claimed.isEmpty else { return }
        // The rows and timelines of every claimed run in two statements (after the claim: the old
        // owner is fenced, so nothing is appended after this read). A run the read missed (the
        // store failed) is read on its own.
        let known = (try? shared.takeoverReads(claimed.map(\.runID))) ?? [:]
        let now = Date()
        var ready: [PendingResume] = []
        for c in claimed {
            let read = known[c.runID]
            guard let record = read?.record ?? (try? shared.run(c.runID)), record.outcome == nil else {
                c.lease.release()
                continue
            }
            let note = resumeNote(runID: record.id, event: "run.taken_over",
                                  message: "taken over by \(shared.owner) from \(c.previousOwner ?? "nobody"): its lease expired; finished steps are not run again", from: c.previousOwner, now: now)
            switch RunSession.prepareResume(record, store: store, runbooks: runbooks, holds: RunHolds(lease: c.lease), note: note,
                                            events: read?.events, environment: environment(startedBy:)) {
            case .ready(let pending):
                ready.append(pending)
            case .decided:
                metrics.takeovers?.increment()
                logger("took over run \(c.runID) from \(c.previousOwner ?? "?") (ended: it could not go on)")
            }
        }
        // Every note in one statement: a dead replica's hundreds of runs go on together, not one
        // database round trip after another. Runs whose leases fence nothing (a store that does
        // not fence) write their own. If the statement fails, none of them goes on here: it may have
        // been written (an answer lost on the way), so writing each note again could double it; the
        // leases are given up and the next claim (0.5 s on) takes the runs again.
        let notes = ready.compactMap { p in p.holds.fence.map { (fence: $0, event: p.note) } }
        var written: Set<String>?
        if notes.count == ready.count {
            do { written = try shared.appendNotes(notes) } catch {
                for pending in ready { pending.holds.release() }
                logger("could not write the notes of \(ready.count) runs taken over (\(error)): their leases are given up, to be claimed again")
                return
            }
        }
        var paced: [ResumePacer.Item] = []
        for pending in ready {
            let id = pending.record.id
            metrics.takeovers?.increment()
            if let written, !written.contains(id) {
                // Another owner took the run between the claim and the note: it is theirs.
                pending.holds.release()
                logger("took over run \(id) from \(pending.note.from ?? "?") (ended: another owner holds it now)")
                continue
            }
            let noteWritten = written != nil
            paced.append(ResumePacer.Item(start: { [self] in
                switch pending.open(noteWritten: noteWritten) {
                case .resumed(let session):
                    drive(session)
                    logger("took over run \(id) from \(pending.note.from ?? "?")")
                case .adopted, .ended:
                    logger("took over run \(id) from \(pending.note.from ?? "?") (ended: it could not go on)")
                }
            }, giveUp: {
                pending.holds.release()
                logger("handed back run \(id) (taken over, not yet gone on): this server is stopping")
            }))
        }
        // The first few go on now, the rest a few at a time: new alerts do not wait behind them.
        resumes.enqueue(paced)
    }

    /// What a change step that was running when its owner died did: a flag file is read back (at
    /// its target: it happened, from an unknown value, so it cannot be undone; not: run it again);
    /// anything else cannot be told.
    static func readBack(_ step: Step, _ values: TemplateValues) -> InFlightVerdict {
        guard case .flag(let flag) = step.action.spec, let file = flag.file else { return .unknown("a \(step.action.kind.rawValue) cannot be read back") }
        let t = FlagFile.target(flag, file: file) { $0.render(values.lookup) }
        guard let data = FileManager.default.contents(atPath: t.path), let (text, _) = try? FlagFile.locate(in: data, key: t.key, field: t.field) else {
            return .unknown("flag file \(t.path) cannot be read")
        }
        guard FlagFile.plain(text) == t.value else { return .rerun }
        return .applied(AppliedChange(what: t.what, from: "?", to: t.value, location: t.path))
    }
}
