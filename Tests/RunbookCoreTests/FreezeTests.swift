import Foundation
import Testing
@testable import RunbookCore

/// Change freeze windows: absolute and weekly in a time zone, past midnight too.
struct FreezeTests {
    func windows(_ yaml: String) throws -> [FreezeWindow] {
        let path = NSTemporaryDirectory() + "freeze-\(UUID().uuidString).yaml"
        try yaml.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try FreezeFile.load(path: path)
    }

    func at(_ s: String) -> Date { TimelineEvent.parseTimestamp(s)! }

    @Test func absoluteWindowsHoldBetweenTheirEnds() throws {
        let w = try windows("- { from: 2026-12-24T00:00:00Z, to: 2026-12-27T00:00:00Z, reason: holidays }\n")
        #expect(FreezeFile.refusal(w, at: at("2026-12-25T12:00:00Z"))?.message.contains("holidays") == true)
        #expect(FreezeFile.refusal(w, at: at("2026-12-25T12:00:00Z"))?.until == at("2026-12-27T00:00:00Z"))
        #expect(FreezeFile.refusal(w, at: at("2026-12-27T00:00:01Z")) == nil)
        #expect(w[0].nextStart(after: at("2026-12-01T00:00:00Z")) == at("2026-12-24T00:00:00Z"))
    }

    @Test func weeklyWindowsFollowTheirTimeZoneAndRunPastMidnight() throws {
        let w = try windows("""
            windows:
              - { days: [sat, sun], from: "18:00", to: "23:59", tz: Europe/Paris, reason: weekend evenings }
              - { days: [fri], from: "22:00", to: "06:00", tz: UTC, reason: night deploys }
            """)
        // Saturday 2026-11-28 18:30 in Paris is 17:30 UTC.
        #expect(w[0].contains(at("2026-11-28T17:30:00Z")))
        #expect(!w[0].contains(at("2026-11-28T16:30:00Z")))
        #expect(!w[0].contains(at("2026-11-27T17:30:00Z")), "a Friday")
        // Friday 22:00 UTC to Saturday 06:00 UTC.
        #expect(w[1].contains(at("2026-11-27T23:00:00Z")))
        #expect(w[1].contains(at("2026-11-28T05:59:00Z")))
        #expect(!w[1].contains(at("2026-11-28T06:01:00Z")))
        #expect(w[0].nextStart(after: at("2026-11-25T12:00:00Z")) == at("2026-11-28T17:00:00Z"))
    }

    @Test func everyProblemOfAFreezeFileIsLocated() {
        #expect {
            try windows("- { days: [xyz], from: \"18:00\", to: \"19:00\", tz: Mars/Olympus }\n- { from: nope, to: 2026-01-01T00:00:00Z }\n")
        } throws: { e in
            let d = (e as? LoadError)?.diagnostics ?? []
            return d.count == 3 && d.allSatisfy { $0.location.line > 0 }
        }
    }
}
