import Foundation
import Testing
@testable import RunbookCore

@Suite struct EscapeTests {
    @Test func aRightToLeftOverrideIsShownAsAnEscape() {
        let label = "Disk\u{202E}gpj.exe"
        #expect(Escape.text(label) == "Disk\\u{202E}gpj.exe")
        #expect(Escape.text("a\u{2066}b\u{2069}c\u{200F}") == "a\\u{2066}b\\u{2069}c\\u{200F}")
    }

    @Test func aPostmortemEscapesBidiControlsInAlertNames() {
        var start = TimelineEvent(time: .init(timeIntervalSince1970: 0), run: "r-1", event: "run.started")
        start.runbook = "rb"
        start.trigger = "alert:High\u{202E}Memory"
        let md = Postmortem.markdown(events: [start], runbook: nil)
        #expect(!md.unicodeScalars.contains { $0.value == 0x202E })
        #expect(md.contains("High\\u{202E}Memory"))
    }

    @Test func paramValidationStillAcceptsBidiText() {
        // Params are judged by the SPEC's control-character list; only the display escapes bidi.
        #expect(Escape.firstControl(in: "שלום\u{202E}") == nil)
    }
}
