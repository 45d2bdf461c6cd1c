import Foundation
import RunbookCore

/// What a store reads, in one query per guard kind, before deciding a batch of requests (one alert
/// payload): the rows that can matter to any of them. `AdmissionPlan` decides from it in memory.
public struct AdmissionSnapshot: Sendable {
    /// One alert of one runbook.
    public struct AlertKey: Hashable, Sendable {
        public var runbook: String
        public var fingerprint: String
        public init(runbook: String, fingerprint: String) {
            self.runbook = runbook
            self.fingerprint = fingerprint
        }
    }
    /// One lock key (nil: the runbook declares none) of one runbook.
    public struct LockKey: Hashable, Sendable {
        public var runbook: String
        public var key: String?
        public init(runbook: String, key: String?) {
            self.runbook = runbook
            self.key = key
        }
    }

    /// Unresolved, not refused runs by alert: the newest id (dedupe).
    public var openByAlert: [AlertKey: String] = [:]
    /// Unresolved refused rows by alert and guard: the newest id (repeat refusals count there).
    public var refusedByAlert: [AlertKey: [String: String]] = [:]
    /// Open live runs by lock key: the newest id (the lock).
    public var lockHolders: [LockKey: String] = [:]
    /// Changes applied by any run since `AdmissionQuery.changesSince`, oldest first (the breaker).
    public var recentChanges: [Date] = []
    /// Open live runs by runbook (max_active).
    public var active: [String: Int] = [:]
    /// Starts of live, not refused runs since `AdmissionQuery.startsSince`, by lock key, oldest first
    /// (cooldown, max_runs).
    public var starts: [LockKey: [Date]] = [:]

    public init() {}

    /// Adds one row of the fingerprint query (newest first): an open run, or a refusal by `guardName`.
    public mutating func addAlertRow(runbook: String, fingerprint: String, id: String, refusedBy guardName: String?, outcome: String?) {
        let key = AlertKey(runbook: runbook, fingerprint: fingerprint)
        if outcome == RunOutcome.refused.rawValue {
            if let g = guardName, refusedByAlert[key]?[g] == nil { refusedByAlert[key, default: [:]][g] = id }
        } else if openByAlert[key] == nil {
            openByAlert[key] = id
        }
    }

    /// Adds one row of the lock query (newest first).
    public mutating func addLockHolder(runbook: String, key: String, id: String) {
        let k = LockKey(runbook: runbook, key: key)
        if lockHolders[k] == nil { lockHolders[k] = id }
    }

    /// Adds one row of the starts query (oldest first).
    public mutating func addStart(runbook: String, key: String?, started: Date) {
        starts[LockKey(runbook: runbook, key: key), default: []].append(started)
    }
}

/// What a batch needs read: every store asks exactly these questions, each in one query.
public struct AdmissionQuery: Sendable {
    /// Fingerprints of the requests (dedupe and repeat refusals).
    public var fingerprints: [String] = []
    /// Lock keys whose holders matter (any runbook; holders are matched by runbook in memory).
    public var lockKeys: [String] = []
    /// Runbooks with `max_active`.
    public var activeRunbooks: [String] = []
    /// Runbooks with cooldown or max_runs, and how far back their starts matter.
    public var startsRunbooks: [String] = []
    public var startsSince: Date?
    /// How far back the breaker looks, when any request has one.
    public var changesSince: Date?

    /// The questions for `requests` decided at `now`.
    public init(_ requests: [AdmissionRequest], now: Date) {
        var fps = Set<String>(), keys = Set<String>(), active = Set<String>(), starts = Set<String>()
        for r in requests {
            if let fp = r.record.fingerprint { fps.insert(fp) }
            guard r.checksGuards else { continue }
            if let k = r.record.lockKey { keys.insert(k) }
            if r.runbook.guards.maxActive != nil { active.insert(r.runbook.name) }
            if r.startsWindow > 0 {
                starts.insert(r.runbook.name)
                let since = now.addingTimeInterval(-r.startsWindow)
                startsSince = min(startsSince ?? since, since)
            }
            if let b = r.maxChanges {
                let since = now.addingTimeInterval(-b.per)
                changesSince = min(changesSince ?? since, since)
            }
        }
        fingerprints = fps.sorted()
        lockKeys = keys.sorted()
        activeRunbooks = active.sorted()
        startsRunbooks = starts.sorted()
    }
}

/// A batch decided in memory from a snapshot, in request order, each request seeing the ones
/// before it; then what the store writes, in the same transaction.
public struct AdmissionPlan: Sendable {
    /// One request's decision, before its hold is taken.
    public enum Decision: Sendable {
        case admitted(runID: String, overridden: GuardCheck.Refusal?)
        case refused(GuardCheck.Refusal, runID: String)
        case duplicate(runID: String)
    }
    /// A repeat refusal counted on an existing row.
    public struct RepeatRefusal: Sendable {
        public var runID: String
        /// How many refusals this batch adds.
        public var added: Int
        public var message: String
        public var until: Date?
    }

    public private(set) var decisions: [Decision] = []
    /// Rows to insert, in order: admitted runs (no outcome) and new refusals.
    public private(set) var inserts: [RunRecord] = []
    /// Existing refused rows whose count grows.
    public private(set) var repeats: [RepeatRefusal] = []

    /// Decides `requests` against `snapshot` (linear in the number of requests).
    public init(_ requests: [AdmissionRequest], snapshot: AdmissionSnapshot, now: Date) {
        var s = snapshot
        var repeatIndex: [String: Int] = [:]
        for request in requests {
            var record = request.record
            let name = request.runbook.name
            let alert = record.fingerprint.map { AdmissionSnapshot.AlertKey(runbook: name, fingerprint: $0) }
            if let alert, let existing = s.openByAlert[alert] {
                decisions.append(.duplicate(runID: existing))
                continue
            }
            let lockKey = AdmissionSnapshot.LockKey(runbook: name, key: record.lockKey)
            var facts = AdmissionFacts()
            if request.checksGuards {
                if record.lockKey != nil, let holder = s.lockHolders[lockKey] {
                    facts.lockBusy = true
                    facts.lockHolder = holder
                }
                if let b = request.maxChanges { facts.recentChanges = Self.since(now.addingTimeInterval(-b.per), in: s.recentChanges) }
                if request.runbook.guards.maxActive != nil { facts.active = s.active[name] ?? 0 }
                if request.startsWindow > 0 {
                    facts.earlierStarts = Self.since(now.addingTimeInterval(-request.startsWindow), in: s.starts[lockKey] ?? [])
                }
            }
            let (refusal, overridden) = AdmissionRules.decide(request, facts: facts, now: now)
            if let r = refusal {
                if let alert, let existing = s.refusedByAlert[alert]?[r.guardName] {
                    if let i = repeatIndex[existing] {
                        repeats[i].added += 1
                        repeats[i].message = r.message
                        repeats[i].until = r.until
                    } else {
                        repeatIndex[existing] = repeats.count
                        repeats.append(RepeatRefusal(runID: existing, added: 1, message: r.message, until: r.until))
                    }
                    decisions.append(.refused(r, runID: existing))
                    continue
                }
                record.outcome = RunOutcome.refused.rawValue
                record.durationMs = 0
                record.refusalGuard = r.guardName
                record.refusalMessage = r.message
                record.refusalUntil = r.until
                record.refusedCount = 1
                inserts.append(record)
                if let alert { s.refusedByAlert[alert, default: [:]][r.guardName] = record.id }
                decisions.append(.refused(r, runID: record.id))
                continue
            }
            inserts.append(record)
            if let alert { s.openByAlert[alert] = record.id }
            if record.isLive {
                if record.lockKey != nil { s.lockHolders[lockKey] = record.id }
                s.active[name, default: 0] += 1
                s.starts[lockKey, default: []].append(record.started)
            }
            decisions.append(.admitted(runID: record.id, overridden: overridden))
        }
    }

    /// The suffix of sorted `dates` at or after `start`, found by binary search.
    static func since(_ start: Date, in dates: [Date]) -> [Date] {
        var lo = 0, hi = dates.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if dates[mid] < start { lo = mid + 1 } else { hi = mid }
        }
        return Array(dates[lo...])
    }
}
