import Foundation
import Logging
import NIOPosix
import PostgresNIO
@testable import RunbookPostgres
import RunbookCore
import RunbookStoreContract
import RunbookTestSupport
import Testing

/// Which of a run row's writers wait for which on PostgreSQL. An append in progress (the
/// statement a run's events go through, left uncommitted on a connection of the test's own) must
/// not hold up the owner's lease renewal (seen: renewals of ~200 rows taking 40-150 ms behind
/// appends, and every append and end of the replica's runs queued behind the renewal in turn), and
/// must hold up a claim, so that a new owner reads every event its predecessor wrote.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct PostgresRowLockTests {
    @Test(.enabled(if: StoreKind.available.contains(.postgres)))
    func anAppendInProgressHoldsUpAClaimButNotALeaseRenewal() async throws {
        let db = try await StoreFixture.make(.postgres)
        let a = try #require(try await db.open() as? PostgresRunStore)
        a.renewsOnItsOwn = false
        let rb = try Cases.runbook("locks", guards: "{}")
        let lease = try #require(try await Cases.admit(a, [Cases.request(rb)]).first?.lease)
        let fence = try #require(lease.fence)
        let raw = try await RawConnection.open(db.location)
        defer { raw.close() }
        let leaseUntil = { try await raw.leaseUntil(fence.runID) }

        // An append under the owner's epoch, not yet committed.
        try await raw.run("BEGIN")
        let appended = try await raw.conn.rows(PreparedStatements.AppendEvents(runID: fence.runID, epoch: fence.epoch, lines: ["{}"]), logger: raw.logger).count
        #expect(appended == 1)
        let before = try await leaseUntil()
        // The renewal goes through (it would otherwise wait for the COMMIT below, give up at the
        // store's query timeout and leave the lease where it was).
        try await off { a.renewLeases() }
        let after = try await leaseUntil()
        #expect(after > before, "the lease renewal waited for an append in progress")
        try await raw.run("COMMIT")

        // The lease runs out; an append is in progress again: a claim passes the run by.
        try await raw.run("UPDATE runs SET lease_until = now() - interval '1 second' WHERE id = '\(fence.runID)'")
        try await raw.run("BEGIN")
        _ = try await raw.conn.rows(PreparedStatements.AppendEvents(runID: fence.runID, epoch: fence.epoch, lines: ["{\"n\":2}"]), logger: raw.logger).count
        let b = try #require(try await db.open() as? PostgresRunStore)
        b.renewsOnItsOwn = false
        #expect(try await off { try b.claimExpiredRuns() }.isEmpty, "a claim took a run while its owner's append was in progress")
        try await raw.run("COMMIT")
        // Once the append is in, the claim takes the run, and the new owner reads both appends.
        let claimed = try await off { try b.claimExpiredRuns() }
        #expect(claimed.map(\.runID) == [fence.runID])
        #expect(claimed.first?.lease.fence?.epoch == fence.epoch + 1)
        #expect(try await raw.count("SELECT count(*) FROM events WHERE run = '\(fence.runID)' AND line IN ('{}', '{\"n\":2}')") == 2)
        // And the old owner's next append is refused.
        #expect(try await raw.conn.rows(PreparedStatements.AppendEvents(runID: fence.runID, epoch: fence.epoch, lines: ["late"]), logger: raw.logger).count == 0)
    }

    /// A statement the server refused to prepare once is not refused for good: postgres-nio keeps a
    /// failed preparation for the life of the connection, so the store sends that statement unnamed
    /// from then on, and once the table is back every append lands, on every connection.
    @Test(.enabled(if: StoreKind.available.contains(.postgres)))
    func aStatementThatFailedToPrepareDoesNotFailForeverOnItsConnection() async throws {
        let db = try await StoreFixture.make(.postgres)
        let a = try #require(try await db.open() as? PostgresRunStore)
        a.renewsOnItsOwn = false
        let lease = try #require(try await Cases.admit(a, [Cases.request(try Cases.runbook("prepare", guards: "{}"))]).first?.lease)
        let fence = try #require(lease.fence)
        let raw = try await RawConnection.open(db.location)
        defer { raw.close() }
        let sink = try await off { try a.timelineSink(fence: fence, health: nil) }
        @Sendable func append(_ n: Int) throws {
            var e = TimelineEvent(time: Date(), run: fence.runID, event: "step.started")
            e.step = "s\(n)"
            try sink.write(e)
        }
        let before = try await off { a.timeline(fence.runID) }.count
        try await raw.run("ALTER TABLE events RENAME TO events_away")
        await #expect(throws: (any Error).self) { try await off { try append(0) } }
        try await raw.run("ALTER TABLE events_away RENAME TO events")
        // More appends than the store has connections: each one lands.
        for n in 1...12 { try await off { try append(n) } }
        let steps = try await off { a.timeline(fence.runID) }.dropFirst(before).map(\.step)
        #expect(steps == (1...12).map { "s\($0)" })
    }
}

/// A plain connection of the test's own, to hold a transaction open beside the stores.
final class RawConnection: Sendable {
    let conn: PostgresConnection
    let logger = Logger(label: "test.raw")

    private init(_ conn: PostgresConnection) { self.conn = conn }

    static func open(_ url: String) async throws -> RawConnection {
        let c = try #require(URLComponents(string: url))
        let config = PostgresConnection.Configuration(host: c.host ?? "127.0.0.1", port: c.port ?? 5432, username: c.user ?? "runbook",
                                                      password: c.password, database: String(c.path.dropFirst()), tls: .disable)
        let conn = try await PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.next(), configuration: config, id: 1,
                                                        logger: Logger(label: "test.raw"))
        return RawConnection(conn)
    }

    func run(_ sql: String) async throws {
        _ = try await conn.query(PostgresQuery(unsafeSQL: sql), logger: logger).collect()
    }

    func count(_ sql: String) async throws -> Int {
        var n = 0
        for try await v in try await conn.query(PostgresQuery(unsafeSQL: sql), logger: logger).decode(Int.self) { n = v }
        return n
    }

    func leaseUntil(_ runID: String) async throws -> Date {
        for try await d in try await conn.query("SELECT lease_until FROM runs WHERE id = \(runID)", logger: logger).decode(Date.self) { return d }
        throw PostgresStoreError("no row for \(runID)")
    }

    func close() {
        let conn = self.conn
        Task { try? await conn.close() }
    }
}
