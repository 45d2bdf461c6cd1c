import Foundation
import Logging
import PostgresNIO
import RunbookCore
import RunbookStoreContract

/// Versioned migrations, run at start under an advisory lock.
extension PostgresRunStore {
    static let migrationLock: Int64 = 0x7275_6e62_6f6f_6b01  // "runbook" + 1
    static let admissionLock: Int64 = 0x7275_6e62_6f6f_6b02

    /// Versioned migrations, each applied once, under a session advisory lock so that replicas
    /// starting together do not race.
    static let migrations: [(Int, [String])] = [
        (1, [
            """
            CREATE TABLE IF NOT EXISTS runs (
                id TEXT PRIMARY KEY, runbook TEXT NOT NULL, trigger TEXT NOT NULL, fingerprint TEXT, outcome TEXT,
                started TIMESTAMPTZ NOT NULL, duration_ms BIGINT, dry_run BOOLEAN NOT NULL, drill BOOLEAN NOT NULL,
                lock_key TEXT, resolved_at TIMESTAMPTZ, refusal_guard TEXT, refusal_message TEXT, refusal_until TIMESTAMPTZ,
                refused_count BIGINT, owner TEXT, lease_until TIMESTAMPTZ)
            """,
            "CREATE INDEX IF NOT EXISTS runs_started ON runs (started DESC)",
            "CREATE INDEX IF NOT EXISTS runs_open ON runs (lease_until) WHERE outcome IS NULL",
            "CREATE INDEX IF NOT EXISTS runs_by_fingerprint ON runs (runbook, fingerprint)",
            """
            CREATE UNIQUE INDEX IF NOT EXISTS runs_one_per_alert ON runs (runbook, fingerprint)
            WHERE fingerprint IS NOT NULL AND resolved_at IS NULL AND (outcome IS NULL OR outcome <> 'refused')
            """,
            "CREATE TABLE IF NOT EXISTS events (seq BIGSERIAL PRIMARY KEY, run TEXT NOT NULL, line TEXT NOT NULL)",
            "CREATE INDEX IF NOT EXISTS events_by_run ON events (run, seq)",
            "CREATE TABLE IF NOT EXISTS changes (run TEXT NOT NULL, at TIMESTAMPTZ NOT NULL)",
            "CREATE INDEX IF NOT EXISTS changes_at ON changes (at)",
            """
            CREATE TABLE IF NOT EXISTS gates (
                run TEXT NOT NULL, gate TEXT NOT NULL, approvals BIGINT NOT NULL, deadline TIMESTAMPTZ NOT NULL,
                started_by TEXT, resumable BOOLEAN NOT NULL, status TEXT NOT NULL, opened TIMESTAMPTZ NOT NULL,
                PRIMARY KEY (run, gate))
            """,
            """
            CREATE TABLE IF NOT EXISTS approvals (
                run TEXT NOT NULL, gate TEXT NOT NULL, name TEXT NOT NULL, approve BOOLEAN NOT NULL, at TIMESTAMPTZ NOT NULL,
                via TEXT, PRIMARY KEY (run, gate, name))
            """,
        ]),
        (2, [
            // Admission looks up a whole payload's fingerprints and lock keys at once, across runbooks.
            "CREATE INDEX IF NOT EXISTS runs_unresolved_fingerprint ON runs (fingerprint) WHERE resolved_at IS NULL",
            "CREATE INDEX IF NOT EXISTS runs_open_lock ON runs (lock_key) WHERE outcome IS NULL",
        ]),
        (3, [
            // A gate is decided once, by the first decisive event, and the decision is kept; answers
            // keep the order they were taken in; a change reserves its place before it is applied.
            "ALTER TABLE gates ADD COLUMN IF NOT EXISTS decision TEXT",
            "ALTER TABLE gates ADD COLUMN IF NOT EXISTS decided_by TEXT",
            "ALTER TABLE gates ADD COLUMN IF NOT EXISTS decided_at TIMESTAMPTZ",
            "ALTER TABLE approvals ADD COLUMN IF NOT EXISTS seq BIGSERIAL",
            "ALTER TABLE changes ADD COLUMN IF NOT EXISTS state TEXT",
            "CREATE INDEX IF NOT EXISTS changes_reserved ON changes (run) WHERE state = 'reserved'",
            // `runbook cancel` and a replica that does not own the run leave a request for the owner.
            // The console's run list: newest first within one runbook or one outcome.
            "CREATE INDEX IF NOT EXISTS runs_by_runbook_started ON runs (runbook, started DESC)",
            "CREATE INDEX IF NOT EXISTS runs_by_outcome_started ON runs (outcome, started DESC)",
            "CREATE TABLE IF NOT EXISTS cancel_requests (run TEXT PRIMARY KEY, by_name TEXT NOT NULL, undo BOOLEAN NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT now())",
        ]),
        (4, [
            // Cooldown and max_runs read the starts of runs that were not refused: without this, each
            // admission read every refusal in the window too (a storm leaves thousands).
            "CREATE INDEX IF NOT EXISTS runs_live_starts ON runs (runbook, started) WHERE outcome IS NULL OR outcome <> 'refused'",
        ]),
    ]

    func migrate() throws {
        let lockKey = Self.migrationLock, log = logger
        _ = try sync { client in
            try await client.withConnection { conn in
                try await conn.query("SELECT pg_advisory_lock(\(lockKey))", logger: log).drain()
                do {
                    try await conn.query("CREATE TABLE IF NOT EXISTS runbook_migrations (version BIGINT PRIMARY KEY, applied TIMESTAMPTZ NOT NULL DEFAULT now())", logger: log).drain()
                    var applied = Set<Int>()
                    for try await v in try await conn.query("SELECT version FROM runbook_migrations", logger: log).decode(Int.self) { applied.insert(v) }
                    for (version, statements) in Self.migrations + Self.fencingMigrations where !applied.contains(version) {
                        try await conn.query("BEGIN", logger: log).drain()
                        for s in statements { try await conn.query(PostgresQuery(unsafeSQL: s), logger: log).drain() }
                        try await conn.query("INSERT INTO runbook_migrations (version) VALUES (\(version))", logger: log).drain()
                        try await conn.query("COMMIT", logger: log).drain()
                    }
                } catch {
                    _ = try? await conn.query("ROLLBACK", logger: log).drain()
                    _ = try? await conn.query("SELECT pg_advisory_unlock(\(lockKey))", logger: log).drain()
                    throw error
                }
                try await conn.query("SELECT pg_advisory_unlock(\(lockKey))", logger: log).drain()
            }
            return 0
        }
    }

    /// The migration versions applied (for tests and `--version` output).
    public func migrationVersions() throws -> [Int] {
        try sync { try await $0.query("SELECT version FROM runbook_migrations ORDER BY version").all(Int.self) }
    }
}
