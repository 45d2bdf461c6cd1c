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
        (5, [
            // Lease renewals rewrite every open row every 2 s. With `lease_until` indexed, each was a
            // new entry in every index of the table; with no indexed column changed and room left on
            // the page, PostgreSQL updates the row in place (a HOT update). Open runs are few: the
            // takeover scan reads them all by start and filters on the lease. The new index is built
            // first and the old one dropped last: DROP INDEX locks the table out of every replica
            // still running until the migration commits, so it is held for an instant, not for the
            // build (which only blocks writes).
            "CREATE INDEX IF NOT EXISTS runs_open_started ON runs (started) WHERE outcome IS NULL",
            "ALTER TABLE runs SET (fillfactor = 70)",
            "DROP INDEX IF EXISTS runs_open",
        ]),
        (6, [
            // Admission's lock and its reads in one round trip: every replica's admissions wait for
            // this lock, so each round trip made while holding it is a wait for all of them. Each
            // query of a volatile PL/pgSQL function reads a snapshot taken when it starts, after the
            // lock is held, so it sees every admission committed before. Kinds: 1 an unresolved
            // alert's run, 2 an open run holding a lock key, 3 a change, 4 open runs of a runbook,
            // 5 a start that counts for cooldown or max_runs.
            """
            CREATE OR REPLACE FUNCTION runbook_admission_snapshot(lock_id bigint, fps text[], lock_keys text[],
                changes_since timestamptz, active_runbooks text[], starts_since timestamptz, starts_runbooks text[])
            RETURNS TABLE (kind int, o_runbook text, o_a text, o_b text, o_c text, o_d text, o_at timestamptz, o_n bigint)
            LANGUAGE plpgsql VOLATILE AS $fn$
            BEGIN
                PERFORM pg_advisory_xact_lock(lock_id);
                IF cardinality(fps) > 0 THEN
                    RETURN QUERY SELECT 1, r.runbook, r.fingerprint, r.id, r.outcome, r.refusal_guard, NULL::timestamptz, NULL::bigint
                        FROM runs r WHERE r.fingerprint = ANY(fps) AND r.resolved_at IS NULL ORDER BY r.started DESC, r.id DESC;
                END IF;
                IF cardinality(lock_keys) > 0 THEN
                    RETURN QUERY SELECT 2, r.runbook, r.lock_key, r.id, NULL::text, NULL::text, NULL::timestamptz, NULL::bigint
                        FROM runs r WHERE r.outcome IS NULL AND NOT r.dry_run AND NOT r.drill AND r.lock_key = ANY(lock_keys)
                        ORDER BY r.started DESC, r.id DESC;
                END IF;
                IF changes_since IS NOT NULL THEN
                    RETURN QUERY SELECT 3, NULL::text, NULL::text, NULL::text, NULL::text, NULL::text, c.at, NULL::bigint
                        FROM changes c WHERE c.at >= changes_since ORDER BY c.at;
                END IF;
                IF cardinality(active_runbooks) > 0 THEN
                    RETURN QUERY SELECT 4, r.runbook, NULL::text, NULL::text, NULL::text, NULL::text, NULL::timestamptz, count(*)
                        FROM runs r WHERE r.outcome IS NULL AND NOT r.dry_run AND NOT r.drill AND r.runbook = ANY(active_runbooks)
                        GROUP BY r.runbook;
                END IF;
                IF starts_since IS NOT NULL AND cardinality(starts_runbooks) > 0 THEN
                    RETURN QUERY SELECT 5, r.runbook, r.lock_key, NULL::text, NULL::text, NULL::text, r.started, NULL::bigint
                        FROM runs r WHERE r.started >= starts_since AND r.runbook = ANY(starts_runbooks) AND NOT r.dry_run AND NOT r.drill
                        AND (r.outcome IS NULL OR r.outcome <> 'refused') ORDER BY r.started;
                END IF;
            END
            $fn$
            """,
        ]),
        (7, [
            // No query reads runs by (runbook, fingerprint) since admission reads a payload's
            // fingerprints across runbooks (runs_unresolved_fingerprint, migration 2), and every row
            // written (an alert storm's refusals: thousands a payload) paid for an entry in it.
            "DROP INDEX IF EXISTS runs_by_fingerprint",
            // A storm's repeat refusals rewrite each refused row once per payload sent again (every
            // Alertmanager group interval). Half of each page left free lets most of those be HOT
            // updates (no new index entries); at 70% (migration 5) fewer than half were.
            "ALTER TABLE runs SET (fillfactor = 50)",
        ]),
        (8, [
            // Admission's reads as migration 6 has them, each kind's rows as one row of arrays: a
            // storm's repeat refusals read thousands of rows per chunk, and each row cost a message
            // to send and to decode. Kinds and order as in runbook_admission_snapshot, which stays
            // for replicas not yet upgraded; a kind with no rows has no row.
            """
            CREATE OR REPLACE FUNCTION runbook_admission_snapshot_arrays(lock_id bigint, fps text[], lock_keys text[],
                changes_since timestamptz, active_runbooks text[], starts_since timestamptz, starts_runbooks text[])
            RETURNS TABLE (kind int, o_runbook text[], o_a text[], o_b text[], o_c text[], o_d text[], o_at timestamptz[], o_n bigint[])
            LANGUAGE plpgsql VOLATILE AS $fn$
            BEGIN
                PERFORM pg_advisory_xact_lock(lock_id);
                IF cardinality(fps) > 0 THEN
                    RETURN QUERY SELECT 1, array_agg(x.runbook), array_agg(x.fingerprint), array_agg(x.id), array_agg(x.outcome),
                            array_agg(x.refusal_guard), NULL::timestamptz[], NULL::bigint[]
                        FROM (SELECT r.runbook, r.fingerprint, r.id, r.outcome, r.refusal_guard FROM runs r
                              WHERE r.fingerprint = ANY(fps) AND r.resolved_at IS NULL ORDER BY r.started DESC, r.id DESC) x
                        HAVING count(*) > 0;
                END IF;
                IF cardinality(lock_keys) > 0 THEN
                    RETURN QUERY SELECT 2, array_agg(x.runbook), array_agg(x.lock_key), array_agg(x.id), NULL::text[], NULL::text[],
                            NULL::timestamptz[], NULL::bigint[]
                        FROM (SELECT r.runbook, r.lock_key, r.id FROM runs r
                              WHERE r.outcome IS NULL AND NOT r.dry_run AND NOT r.drill AND r.lock_key = ANY(lock_keys)
                              ORDER BY r.started DESC, r.id DESC) x
                        HAVING count(*) > 0;
                END IF;
                IF changes_since IS NOT NULL THEN
                    RETURN QUERY SELECT 3, NULL::text[], NULL::text[], NULL::text[], NULL::text[], NULL::text[], array_agg(x.at), NULL::bigint[]
                        FROM (SELECT c.at FROM changes c WHERE c.at >= changes_since ORDER BY c.at) x
                        HAVING count(*) > 0;
                END IF;
                IF cardinality(active_runbooks) > 0 THEN
                    RETURN QUERY SELECT 4, array_agg(x.runbook), NULL::text[], NULL::text[], NULL::text[], NULL::text[], NULL::timestamptz[], array_agg(x.n)
                        FROM (SELECT r.runbook, count(*) AS n FROM runs r
                              WHERE r.outcome IS NULL AND NOT r.dry_run AND NOT r.drill AND r.runbook = ANY(active_runbooks)
                              GROUP BY r.runbook) x
                        HAVING count(*) > 0;
                END IF;
                IF starts_since IS NOT NULL AND cardinality(starts_runbooks) > 0 THEN
                    RETURN QUERY SELECT 5, array_agg(x.runbook), array_agg(x.lock_key), NULL::text[], NULL::text[], NULL::text[], array_agg(x.started), NULL::bigint[]
                        FROM (SELECT r.runbook, r.lock_key, r.started FROM runs r
                              WHERE r.started >= starts_since AND r.runbook = ANY(starts_runbooks) AND NOT r.dry_run AND NOT r.drill
                              AND (r.outcome IS NULL OR r.outcome <> 'refused') ORDER BY r.started) x
                        HAVING count(*) > 0;
                END IF;
            END
            $fn$
            """,
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
