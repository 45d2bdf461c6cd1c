import Foundation
import Testing
@testable import RunbookCore

@Suite struct AlertPayloadTests {
    @Test func aMissingFieldIsNamedAsAReaderWritesIt() {
        let body = Data(#"{"alerts":[{"status":"firing","labels":{}},{"labels":{"a":"b"}}]}"#.utf8)
        #expect(throws: PayloadError.self) { try AlertPayload.decode(body) }
        do { _ = try AlertPayload.decode(body) } catch {
            #expect("\(error)" == "missing field 'alerts[1].status'")
        }
    }

    @Test func theZeroEndTimeMeansNoEnd() throws {
        let body = Data(#"{"alerts":[{"status":"firing","labels":{},"endsAt":"0001-01-01T00:00:00Z"},{"status":"resolved","labels":{},"endsAt":"2026-11-30T10:00:00Z"}]}"#.utf8)
        let payload = try AlertPayload.decode(body)
        #expect(payload.alerts[0].endsAt == nil)
        #expect(payload.alerts[1].endsAt == "2026-11-30T10:00:00Z")
    }
}
