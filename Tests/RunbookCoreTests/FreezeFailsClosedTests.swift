import Foundation
import Testing
@testable import RunbookCore

/// A freeze file that is misread must not let changes through: unknown keys and impossible values
/// are located errors, never silently ignored.
@Suite struct FreezeFailsClosedTests {
    func problems(_ yaml: String) -> [Diagnostic] {
        let path = NSTemporaryDirectory() + "freeze-\(UUID().uuidString).yaml"
        try? yaml.write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        do { _ = try FreezeFile.load(path: path); return [] } catch let e as LoadError { return e.diagnostics } catch { return [] }
    }

    @Test func timezoneInsteadOfTzIsAnErrorNamingTz() {
        let found = problems("- days: [sat, sun]\n  from: \"00:00\"\n  to: \"23:59\"\n  timezone: Europe/Paris\n")
        #expect(found.count == 1)
        #expect(found.first?.location.line == 4)
        #expect(found.first?.message.contains("unknown key 'timezone'") == true)
        #expect(found.first?.message.contains("did you mean 'tz'") == true, "\(found)")
    }

    @Test func anUnknownKeyInADatedWindowIsAnError() {
        let found = problems("- { from: 2026-12-24T00:00:00Z, to: 2026-12-27T00:00:00Z, reasn: holidays }\n")
        #expect(found.count == 1)
        #expect(found.first?.message.contains("unknown key 'reasn'") == true, "\(found)")
    }

    @Test func anEmptyDayListIsAnError() {
        let found = problems("- { days: [], from: \"18:00\", to: \"19:00\" }\n")
        #expect(found.count == 1)
        #expect(found.first?.message.contains("days is empty") == true, "\(found)")
    }

    @Test func aWeeklyWindowEndingWhenItStartsIsAnError() {
        let found = problems("- { days: [mon], from: \"18:00\", to: \"18:00\" }\n")
        #expect(found.count == 1)
        #expect(found.first?.message.contains("equals its from") == true, "\(found)")
    }

    @Test func aZoneThatDoesNotExistIsAnError() {
        let found = problems("- { days: [mon], from: \"18:00\", to: \"19:00\", tz: Europe/Atlantis }\n")
        #expect(found.first?.message.contains("unknown time zone 'Europe/Atlantis'") == true, "\(found)")
    }

    @Test func aWindowThatIsNotAMappingIsAnError() {
        #expect(problems("- sat\n").first?.message.contains("a window is a mapping") == true)
    }
}
