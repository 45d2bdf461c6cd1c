import Testing
@testable import RunbookCore

struct QuantityTests {
    @Test(arguments: [("250ms", 0.25), ("30s", 30), ("10m", 600), ("1h", 3600), ("1m30s", 90), ("0s", 0)])
    func parsesDurations(_ text: String, _ seconds: Double) { #expect(Quantity.duration(text) == seconds) }

    @Test(arguments: ["", "5", "5 minutes", "s", "1x", "-1s"])
    func rejectsBadDurations(_ text: String) { #expect(Quantity.duration(text) == nil) }

    @Test(arguments: [("512KB", 524_288.0), ("2GB", 2_147_483_648.0), ("1MB", 1_048_576.0), ("100B", 100.0)])
    func parsesSizesBase1024(_ text: String, _ bytes: Double) { #expect(Quantity.size(text) == bytes) }

    @Test func parsesRatesPerSecond() {
        let perMinute: Double = 10_485_760 / 60
        #expect(Quantity.rate("1MB/s") == 1_048_576)
        #expect(Quantity.rate("10MB/min") == perMinute)
        #expect(Quantity.size("12 parsecs") == nil)
        #expect(Quantity.rate("1MB") == nil)
    }
}
