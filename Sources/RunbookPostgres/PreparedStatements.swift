import Foundation
import Logging
import PostgresNIO
import RunbookStoreContract

/// The statements every alert or event runs, as named prepared statements: each connection has the
/// server parse and plan one once, then only binds and executes it. (A query sent with its values is
/// parsed, analysed and planned on every call: at 200 alerts/s on three replicas that was about a
/// third of PostgreSQL's CPU, measured with pg_stat_statements and perf.)
///
/// Each has a fixed `name` (postgres-nio's default, `String(reflecting:)` of the type, is worked out
/// on every call: about 1% of a replica's CPU under load). Each type's SQL is the statement its
/// caller sent before, with `$n` for the values, and `bindingDataTypes` name the values' types as
/// `PostgresBindings` encodes them, so the server reads each binary value as the type it was
/// written in (as it does for an unnamed statement).
enum PreparedStatements {
    /// Appends `lines` to a run's timeline while `epoch` is the run's; one `seq` per line written,
    /// none when fenced. The row is locked `FOR KEY SHARE`: a claim (which locks it `FOR UPDATE`
    /// before it moves the epoch) waits for the append, and an append waits for a claim and then
    /// finds the epoch moved; a lease renewal (an update of no key column) waits for neither.
    struct AppendEvents: PostgresPreparedStatement {
        static let name = "runbook_append_events"
        static let sql = """
            WITH owned AS (SELECT id FROM runs WHERE id = $1 AND epoch = $2 FOR KEY SHARE)
            INSERT INTO events (run, line) SELECT owned.id, l.line FROM owned, unnest($3::text[]) WITH ORDINALITY AS l(line, n)
            ORDER BY l.n RETURNING seq
            """
        static let bindingDataTypes: [PostgresDataType] = [.text, .int8, .textArray]
        typealias Row = Int64
        var runID: String
        var epoch: Int64
        var lines: [String]
        func makeBindings() throws -> PostgresBindings {
            var b = PostgresBindings(capacity: 3)
            b.append(runID)
            b.append(epoch)
            b.append(lines)
            return b
        }
        func decodeRow(_ row: PostgresRow) throws -> Int64 { try row.decode(Int64.self) }
    }

    /// `AppendEvents` for a run's last events: the row locked (`FOR NO KEY UPDATE`: a claim waits)
    /// and closed with its outcome (unless it is closed already) in the same statement.
    struct AppendEventsAndClose: PostgresPreparedStatement {
        static let name = "runbook_append_events_and_close"
        static let sql = """
            WITH owned AS (SELECT id FROM runs WHERE id = $1 AND epoch = $2 FOR NO KEY UPDATE),
            closed AS (UPDATE runs SET outcome = $3, duration_ms = $4 FROM owned
                       WHERE runs.id = owned.id AND runs.outcome IS NULL RETURNING runs.id)
            INSERT INTO events (run, line) SELECT owned.id, l.line FROM owned, unnest($5::text[]) WITH ORDINALITY AS l(line, n)
            ORDER BY l.n RETURNING seq
            """
        static let bindingDataTypes: [PostgresDataType] = [.text, .int8, .text, .int8, .textArray]
        typealias Row = Int64
        var runID: String
        var epoch: Int64
        var outcome: String
        var durationMs: Int
        var lines: [String]
        func makeBindings() throws -> PostgresBindings {
            var b = PostgresBindings(capacity: 5)
            b.append(runID)
            b.append(epoch)
            b.append(outcome)
            b.append(durationMs)
            b.append(lines)
            return b
        }
        func decodeRow(_ row: PostgresRow) throws -> Int64 { try row.decode(Int64.self) }
    }

    /// Admission's lock and every guard read, each kind's rows as one row of arrays
    /// (`runbook_admission_snapshot_arrays`, migration 8).
    struct AdmissionSnapshot: PostgresPreparedStatement {
        static let name = "runbook_admission_snapshot_arrays_call"
        static let sql = """
            SELECT kind, o_runbook, o_a, o_b, o_c, o_d, o_at, o_n FROM runbook_admission_snapshot_arrays(
                $1, $2::text[], $3::text[], $4, $5::text[], $6, $7::text[])
            """
        static let bindingDataTypes: [PostgresDataType] = [.int8, .textArray, .textArray, .timestamptz, .textArray, .timestamptz, .textArray]
        typealias Texts = NullableArray<String>
        typealias Row = (Int, Texts?, Texts?, Texts?, Texts?, Texts?, NullableArray<Date>?, NullableArray<Int64>?)
        var lockKey: Int64
        var fingerprints: [String]
        var lockKeys: [String]
        var changesSince: Date?
        var activeRunbooks: [String]
        var startsSince: Date?
        var startsRunbooks: [String]
        func makeBindings() throws -> PostgresBindings {
            var b = PostgresBindings(capacity: 7)
            b.append(lockKey)
            b.append(fingerprints)
            b.append(lockKeys)
            b.append(changesSince)
            b.append(activeRunbooks)
            b.append(startsSince)
            b.append(startsRunbooks)
            return b
        }
        func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
    }

    /// Inserts run rows, given one array per column; an open row gets `owner` and a lease when
    /// `owner` is given. `startIDs`/`startLines` are first events appended
    /// in the same statement.
    struct InsertRuns: PostgresPreparedStatement {
        static let name = "runbook_insert_runs"
        static let sql = """
            WITH started AS (INSERT INTO events (run, line) SELECT s.run, s.line FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS s(run, line, n) ORDER BY s.n)
            INSERT INTO runs (id, runbook, trigger, fingerprint, outcome, started, duration_ms, dry_run, drill, lock_key,
                refusal_guard, refusal_message, refusal_until, refused_count, owner, lease_until)
            SELECT x.id, x.runbook, x.trigger, x.fingerprint, x.outcome, x.started, x.duration_ms, x.dry_run, x.drill,
                x.lock_key, x.refusal_guard, x.refusal_message, x.refusal_until, x.refused_count,
                CASE WHEN x.outcome IS NULL THEN $3::text END,
                CASE WHEN x.outcome IS NULL AND $3::text IS NOT NULL THEN now() + make_interval(secs => $4) END
            FROM unnest($5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::timestamptz[], $11::bigint[],
                $12::boolean[], $13::boolean[], $14::text[], $15::text[], $16::text[], $17::timestamptz[], $18::bigint[])
                AS x(id, runbook, trigger, fingerprint, outcome, started, duration_ms, dry_run, drill, lock_key,
                     refusal_guard, refusal_message, refusal_until, refused_count)
            """
        static let bindingDataTypes: [PostgresDataType] = [
            .textArray, .textArray, .text, .float8,
            .textArray, .textArray, .textArray, .textArray, .textArray, .timestamptzArray, .int8Array,
            .boolArray, .boolArray, .textArray, .textArray, .textArray, .timestamptzArray, .int8Array,
        ]
        typealias Row = PostgresRow
        var startIDs: [String]
        var startLines: [String]
        var owner: String?
        var leaseSeconds: Double
        /// The rows, one array per column.
        var records: [RunRecord]
        func makeBindings() throws -> PostgresBindings {
            var b = PostgresBindings(capacity: 18)
            b.append(startIDs)
            b.append(startLines)
            b.append(owner)
            b.append(leaseSeconds)
            b.append(records.map(\.id))
            b.append(records.map(\.runbook))
            b.append(records.map(\.trigger))
            b.append(NullableArray(records.map(\.fingerprint)))
            b.append(NullableArray(records.map(\.outcome)))
            b.append(records.map(\.started))
            b.append(NullableArray(records.map { $0.durationMs.map(Int64.init) }))
            b.append(records.map(\.dryRun))
            b.append(records.map(\.drill))
            b.append(NullableArray(records.map(\.lockKey)))
            b.append(NullableArray(records.map(\.refusalGuard)))
            b.append(NullableArray(records.map(\.refusalMessage)))
            b.append(NullableArray(records.map(\.refusalUntil)))
            b.append(NullableArray(records.map { $0.refusedCount.map(Int64.init) }))
            return b
        }
        func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
    }

    /// Repeat refusals of a batch: each run's count goes up by its `added`, its sentence and until
    /// become the latest refusal's.
    struct CountRepeatRefusals: PostgresPreparedStatement {
        static let name = "runbook_count_repeat_refusals"
        static let sql = """
            UPDATE runs SET refused_count = COALESCE(runs.refused_count, 1) + x.n, refusal_message = x.m, refusal_until = x.u
            FROM unnest($1::text[], $2::bigint[], $3::text[], $4::timestamptz[]) AS x(id, n, m, u) WHERE runs.id = x.id
            """
        static let bindingDataTypes: [PostgresDataType] = [.textArray, .int8Array, .textArray, .timestamptzArray]
        typealias Row = PostgresRow
        var repeats: [AdmissionPlan.RepeatRefusal]
        func makeBindings() throws -> PostgresBindings {
            var b = PostgresBindings(capacity: 4)
            b.append(repeats.map(\.runID))
            b.append(repeats.map { Int64($0.added) })
            b.append(repeats.map(\.message))
            b.append(NullableArray(repeats.map(\.until)))
            return b
        }
        func decodeRow(_ row: PostgresRow) throws -> PostgresRow { row }
    }

    /// Renews `owner`'s leases on the runs whose epoch is still the one given, rows locked in id
    /// order; the ids renewed.
    struct RenewLeases: PostgresPreparedStatement {
        static let name = "runbook_renew_leases"
        static let sql = """
            WITH mine AS (SELECT runs.id FROM runs JOIN unnest($1::text[], $2::bigint[]) AS x(id, epoch)
                          ON runs.id = x.id AND runs.epoch = x.epoch
                          WHERE runs.owner = $3 AND runs.outcome IS NULL ORDER BY runs.id FOR NO KEY UPDATE OF runs)
            UPDATE runs SET lease_until = now() + make_interval(secs => $4) FROM mine WHERE runs.id = mine.id
            RETURNING runs.id
            """
        static let bindingDataTypes: [PostgresDataType] = [.textArray, .int8Array, .text, .float8]
        typealias Row = String
        var runIDs: [String]
        var epochs: [Int64]
        var owner: String
        var leaseSeconds: Double
        func makeBindings() throws -> PostgresBindings {
            var b = PostgresBindings(capacity: 4)
            b.append(runIDs)
            b.append(epochs)
            b.append(owner)
            b.append(leaseSeconds)
            return b
        }
        func decodeRow(_ row: PostgresRow) throws -> String { try row.decode(String.self) }
    }
}

/// Runs a prepared statement, or the same SQL unnamed once the server has refused it.
///
/// postgres-nio keeps a failed preparation for the life of the connection: every later call of
/// that statement on it fails the same way (a `statement_timeout` during the first parse, say). So
/// when the server answers a prepared statement with an error, the statement is sent unnamed from
/// then on, in this process (parsed and planned on each call, as before prepared statements), and
/// this call is tried once so. A statement that failed on the server rolled back (or its
/// transaction is aborted, and the retry fails too): trying once more never writes twice. A lost
/// connection is not retried (the statement may have committed); that error is thrown as it was.
enum PreparedFallback {
    private static let lock = NSLock()
    nonisolated(unsafe) private static var refused: Set<String> = []

    /// The logger of calls that give none (made once: a `Logger` made per call costs on every event).
    static let quiet = Logger(label: "runbook.postgres")

    /// Whether `name` is sent unnamed.
    static func isRefused(_ name: String) -> Bool { lock.withLock { refused.contains(name) } }

    /// From now on, `name` is sent unnamed.
    static func refuse(_ name: String) { _ = lock.withLock { refused.insert(name) } }

    /// Whether `error` is the server's answer to the statement (not a lost connection).
    static func isServerError(_ error: any Error) -> Bool {
        (error as? PSQLError)?.code == .server
    }

    /// Every row of `statement`: `prepared` runs it as a prepared statement, `unnamed` sends a query.
    static func rows<S: PostgresPreparedStatement>(
        _ statement: S, prepared: () async throws -> [S.Row], unnamed: (PostgresQuery) async throws -> PostgresRowSequence
    ) async throws -> [S.Row] {
        func sendUnnamed() async throws -> [S.Row] {
            var out: [S.Row] = []
            for try await row in try await unnamed(PostgresQuery(unsafeSQL: S.sql, binds: try statement.makeBindings())) {
                out.append(try statement.decodeRow(row))
            }
            return out
        }
        if isRefused(S.name) { return try await sendUnnamed() }
        let original: any Error
        do { return try await prepared() } catch where isServerError(error) {
            original = error
        }
        refuse(S.name)
        // Inside a transaction the first failure aborted it: the retry fails too, and the first error is the one to tell.
        do { return try await sendUnnamed() } catch { throw original }
    }
}

extension PostgresClient {
    /// Every row of `statement`, prepared on the connection (or unnamed: `PreparedFallback`).
    func rows<S: PostgresPreparedStatement>(_ statement: S, logger: Logger? = nil) async throws -> [S.Row] {
        let log = logger ?? PreparedFallback.quiet
        return try await PreparedFallback.rows(statement, prepared: { try await execute(statement, logger: log).collect() },
                                               unnamed: { try await query($0, logger: log) })
    }
}

extension PostgresConnection {
    /// Every row of `statement`, prepared on this connection (or unnamed: `PreparedFallback`).
    func rows<S: PostgresPreparedStatement>(_ statement: S, logger: Logger) async throws -> [S.Row] {
        try await PreparedFallback.rows(statement, prepared: { try await execute(statement, logger: logger).collect() },
                                        unnamed: { try await query($0, logger: logger) })
    }
}

extension AsyncSequence {
    /// Reads every element into an array.
    func collect() async throws -> [Element] {
        var all: [Element] = []
        for try await e in self { all.append(e) }
        return all
    }
}
