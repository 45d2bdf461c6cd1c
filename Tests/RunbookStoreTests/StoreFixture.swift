import Foundation
@testable import RunbookCore
import RunbookPostgres
import RunbookStore
import RunbookStoreContract
import RunbookTestSupport
import Testing

/// The stores the conformance suite runs against: SQLite always, PostgreSQL when scripts/test.sh
/// started a cluster (`RUNBOOK_TEST_DATABASE_URL`).
enum StoreKind: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres

    static let databaseURL = ProcessInfo.processInfo.environment["RUNBOOK_TEST_DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
    /// Every store this machine can test.
    static let available: [StoreKind] = databaseURL == nil ? [.sqlite] : [.sqlite, .postgres]

    var testDescription: String { rawValue }
}

/// One empty database of one kind, opened by as many "processes" (store instances with owners of
/// their own) as a test needs.
final class StoreFixture: Sendable {
    let kind: StoreKind
    /// A folder (SQLite) or a fresh database's URL (PostgreSQL).
    let location: String

    private init(kind: StoreKind, location: String) {
        self.kind = kind
        self.location = location
    }

    /// A new, empty database: a temporary folder, or a database of its own on the test cluster.
    static func make(_ kind: StoreKind) async throws -> StoreFixture {
        switch kind {
        case .sqlite:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("store-\(UUID().uuidString)").path
            return StoreFixture(kind: kind, location: dir)
        case .postgres:
            let base = try #require(StoreKind.databaseURL.flatMap(URLComponents.init(string:)))
            let name = "s_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
            let argv = ["psql", "-q", "-h", base.host ?? "127.0.0.1", "-p", "\(base.port ?? 5432)", "-U", base.user ?? "runbook",
                        "-d", "postgres", "-c", "create database \(name)"]
            let r = try await StoreThreads.run { try Spawn.run(argv) }
            #expect(r.status == 0, "\(r.stderr)")
            var c = base
            c.path = "/" + name
            return StoreFixture(kind: kind, location: c.string!)
        }
    }

    /// Opens the database as one more process.
    func open(owner: String = "test-\(UUID().uuidString.prefix(8))") async throws -> any RunDatabase {
        let (kind, location) = (self.kind, self.location)
        return try await StoreThreads.run { () -> any RunDatabase in
            switch kind {
            case .sqlite: return try SQLiteRunStore(directory: location)
            case .postgres: return try PostgresRunStore(url: location, owner: owner)
            }
        }
    }

    deinit {
        if kind == .sqlite { try? FileManager.default.removeItem(atPath: location) }
    }
}

/// Runs a blocking store call off the cooperative pool (the stores check it in debug builds).
func off<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await StoreThreads.run(body)
}

/// Runbooks and requests for the cases.
enum Cases {
    /// A runbook named `name` with the guards given as YAML flow (`{ lock: "k", cooldown: 10m }`).
    static func runbook(_ name: String, guards: String) throws -> Runbook {
        try RunbookLoader.load(text: """
            runbook: \(name)
            guards: \(guards)
            steps:
              - id: look
                phase: detect
                check: { command: ["true"] }

            """, file: "\(name).yaml")
    }

    /// A request for a live run of `runbook`, started `now`.
    static func request(_ runbook: Runbook, fingerprint: String? = nil, lockKey: String? = nil, now: Date = Date()) -> AdmissionRequest {
        var record = RunRecord(id: RunInputs.newRunID(now) + "-\(UUID().uuidString.prefix(6))", runbook: runbook.name,
                               trigger: "test", fingerprint: fingerprint, started: now, dryRun: false, drill: false)
        record.lockKey = lockKey
        return AdmissionRequest(runbook: runbook, record: record)
    }

    /// Admits one request and says what happened, as text for expectations (`admitted`, `refused:GUARD`, `duplicate`).
    static func admit(_ store: any RunDatabase, _ requests: [AdmissionRequest], now: Date = Date()) async throws -> [Outcome] {
        try await off { try store.admitAll(requests, now: now).map(outcome) }
    }

    /// One decision as text for expectations; an admitted run's lease is kept.
    static func outcome(_ d: AdmissionDecision) -> Outcome {
        switch d {
        case .admitted(let lease, _):
            HeldLeases.shared.keep(lease)
            return Outcome(kind: "admitted", runID: nil, lease: lease)
        case .refused(let r, let id): return Outcome(kind: "refused:\(r.guardName)", runID: id, lease: nil)
        case .duplicate(let id): return Outcome(kind: "duplicate", runID: id, lease: nil)
        }
    }

    /// A decision, reduced to what tests compare.
    struct Outcome: Sendable {
        var kind: String
        var runID: String?
        var lease: (any RunHold)?
    }

    /// The owners of these runs stop: their leases are given up (off the cooperative pool).
    static func die(_ outcomes: [Outcome]) async throws {
        let leases = outcomes.compactMap(\.lease)
        try await off { for l in leases { l.release() } }
    }

    /// A gate request as the driver opens it.
    static func gate(_ id: String, approvals: Int, deadline: Date) -> GateRequest {
        GateRequest(id: id, gate: ApprovalGate(approvals: approvals), reasons: [.confirm], changes: [], deadline: deadline, approvedBy: [])
    }

    /// Writes events to a run's timeline.
    static func write(_ store: any RunDatabase, _ runID: String, _ events: [String], outcome: RunOutcome? = nil, at now: Date = Date()) async throws {
        try await off {
            let sink = try store.timelineSink(runID: runID, health: nil)
            for name in events {
                var e = TimelineEvent(time: now, run: runID, event: name)
                if name == "run.finished" {
                    e.outcome = (outcome ?? .mitigated).rawValue
                    e.durationMs = 1234
                }
                try sink.write(e)
            }
        }
    }
}

/// SQLite leases of admitted runs, kept for the whole test process: on SQLite a lease dropped is an
/// owner gone, and the cases decide when an owner dies (`release()`). PostgreSQL leases are rows
/// renewed by their store, which is closed (with its connections) when its test ends.
final class HeldLeases: @unchecked Sendable {
    static let shared = HeldLeases()
    // Guarded by `lock`.
    private let lock = NSLock()
    private var leases: [any RunHold] = []
    func keep(_ lease: any RunHold) {
        guard lease is RunLease else { return }
        lock.withLock { leases.append(lease) }
    }
}
