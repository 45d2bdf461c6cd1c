import Foundation
import PostgresNIO
@testable import RunbookPostgres
import RunbookStoreContract
import Testing

/// Arrays whose elements may be NULL (`NullableArray`), as batch statements send them and as
/// admission's snapshot reads them back: PostgreSQL reads every element as sent, NULLs as NULL.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct PostgresArrayTests {
    @Test(.enabled(if: StoreKind.available.contains(.postgres)))
    func anArrayWithNullsGoesToPostgreSQLAndComesBackElementForElement() async throws {
        let db = try await StoreFixture.make(.postgres)
        let raw = try await RawConnection.open(db.location)
        defer { raw.close() }
        let texts: [String?] = ["a", nil, "", "naïve \"quoted\"", nil]
        let dates: [Date?] = [Date(timeIntervalSince1970: 1_780_626_900.123_456), nil]
        let numbers: [Int64?] = [nil, 0, -7, Int64.max]
        for (sent, expected) in [(texts, texts), ([], []), ([nil, nil], [nil, nil])] as [([String?], [String?])] {
            let rows = try await raw.conn.query("SELECT \(NullableArray(sent))::text[], cardinality(\(NullableArray(sent))::text[]), array_position(\(NullableArray(sent))::text[], NULL)", logger: raw.logger)
            for try await (back, count, firstNull) in rows.decode((NullableArray<String>?, Int, Int?).self) {
                #expect(back?.elements ?? [] == expected)
                #expect(count == sent.count)
                #expect(firstNull == sent.firstIndex(where: { $0 == nil }).map { $0 + 1 }, "PostgreSQL reads a nil as NULL")
            }
        }
        for try await back in try await raw.conn.query("SELECT \(NullableArray(dates))::timestamptz[]", logger: raw.logger).decode(NullableArray<Date>.self) {
            #expect(back.elements.count == 2 && back.elements[1] == nil)
            #expect(abs(back.elements[0]!.timeIntervalSince(dates[0]!)) < 1e-6, "microseconds kept")
        }
        for try await back in try await raw.conn.query("SELECT \(NullableArray(numbers))::bigint[]", logger: raw.logger).decode(NullableArray<Int64>.self) {
            #expect(back.elements == numbers)
        }
    }
}
