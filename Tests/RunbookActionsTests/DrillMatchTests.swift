@testable import RunbookDrills
import Testing

@Suite(.timeLimit(.minutes(10)))
struct DrillMatchTests {
    @Test(arguments: [
        ("flag image-resize: on -> off", "flag image-resize: on -> off in flags.json", true),
        ("flag image-resize: on -> off", "flag image-resize: ? -> off in missing.json", true),
        ("flag image-resize: on -> off", "flag image-resize: ? -> on in missing.json", false),
        ("flag image-resize: on -> off", "flag image-resize: off -> on in flags.json", false),
        ("restart shop", "restart shop: running -> restarted", true),
        ("restart shop", "restart shopfront: running -> restarted", false),
    ])
    func expectedChangesMatchByPrefix(_ expected: String, _ actual: String, _ matches: Bool) {
        #expect(DrillRunner.changeMatches(expected: expected, actual: actual) == matches)
    }
}
