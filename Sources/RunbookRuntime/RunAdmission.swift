import Foundation
import RunbookCore
import RunbookStoreContract

/// What admission decided for one prepared run.
public enum RunAdmission: Sendable {
    /// Recorded and held: ready to start.
    case admitted(AdmittedRun)
    /// Refused by a guard (or its params); recorded in `runID`'s row.
    case refused(GuardCheck.Refusal, runID: String, runbook: String)
    /// The alert already started this run, which is not resolved yet; nothing was written.
    case duplicate(runID: String)

    /// Decides and records `runs` in one store transaction (dedupe, guards, rows and holds).
    /// - Throws: the store's error when nothing could be recorded; then nothing is admitted.
    public static func decide(_ runs: [PreparedRun], store: any RunDatabase, now: Date) throws -> [RunAdmission] {
        let decisions = try store.admitAll(requests(runs), now: now)
        return admissions(runs, decisions)
    }

    /// What the store is asked to admit for `runs`: each run's guards and row, and its first event
    /// (`run.started`, secrets redacted) to record with the row when admitted.
    public static func requests<Runs: Collection<PreparedRun>>(_ runs: Runs) -> [AdmissionRequest] {
        runs.map { p in
            var a = p.admission
            let (start, secrets) = (p.start, p.secrets)
            a.startLine = { SecretRedactor.redact(start, secrets).jsonLine() }
            return a
        }
    }

    /// The store's `decisions` for `runs` (as asked by `requests`), in order.
    public static func admissions<Runs: Collection<PreparedRun>>(_ runs: Runs, _ decisions: [AdmissionDecision]) -> [RunAdmission] {
        zip(runs, decisions).map { p, d in
            switch d {
            case .admitted(let lease, let overridden):
                .admitted(AdmittedRun(prepared: p, holds: RunHolds(lease: lease), overridden: overridden))
            case .refused(let r, let id): .refused(r, runID: id, runbook: p.request.runbook.name)
            case .duplicate(let id): .duplicate(runID: id)
            }
        }
    }
}

/// A run admission let through: its row is written and its lease (and lock, if any) held.
public struct AdmittedRun: Sendable {
    public var prepared: PreparedRun
    public var holds: RunHolds
    /// The refusal `--force` set aside, recorded as `guard.overridden` when the run starts.
    public var overridden: GuardCheck.Refusal?

    /// A run that needs no admission (a drill: it changes nothing and holds nothing).
    public init(unadmitted prepared: PreparedRun) {
        self.init(prepared: prepared, holds: .none, overridden: nil)
    }

    public init(prepared: PreparedRun, holds: RunHolds, overridden: GuardCheck.Refusal?) {
        self.prepared = prepared
        self.holds = holds
        self.overridden = overridden
    }
}

/// A run that was admitted but could not start: its first record could not be written. Its row is
/// closed `failed` and its holds are given up.
public struct RunStartError: Error, Sendable, CustomStringConvertible {
    public var runID: String
    /// The store's error.
    public var cause: any Error

    public var description: String { "could not record the run: \(cause)" }
}
