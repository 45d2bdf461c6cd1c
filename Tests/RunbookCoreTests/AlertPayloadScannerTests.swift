import Foundation
import Testing
@testable import RunbookCore

/// The payload scanner reads what `JSONDecoder` reads, the same way, and leaves the rest to it.
@Suite struct AlertPayloadScannerTests {
    /// A payload reduced to comparable text.
    static func text(_ p: AlertPayload) -> String {
        let alerts = p.alerts.map { a in
            "\(a.status)|\(a.labels.sorted { $0.key < $1.key })|\(a.annotations.map { $0.sorted { $0.key < $1.key } } as Any)|"
                + "\(a.startsAt as Any)|\(a.endsAt as Any)|\(a.generatorURL as Any)|\(a.fingerprint as Any)"
        }
        return "\(p.version as Any)|\(p.groupKey as Any)|\(p.truncatedAlerts as Any)|\(p.status as Any)|\(p.receiver as Any)|\(p.externalURL as Any)|\(alerts)"
    }

    static let wellFormed: [String] = [
        #"{"alerts":[]}"#,
        #" { "version" : "4", "groupKey": "{}:{alertname=\"X\"}", "truncatedAlerts": 0, "status": "firing", "receiver": "rb", "#
            + #""groupLabels": {"alertname": "X"}, "commonLabels": {}, "commonAnnotations": {"a": [1, -2.5e3, true, false, null, {"b": {}}]}, "#
            + #""externalURL": "http://am:9093", "alerts": [ {"status": "firing", "labels": {"alertname": "X", "instance": "n-1:9100"}, "#
            + #""annotations": {"summary": "tab\there \"quoted\" \\ slash\/ \u00e9 \ud83d\udd25 é"}, "startsAt": "2026-11-25T10:00:00Z", "#
            + #""endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://p/graph?g0.expr=up%3D%3D0", "fingerprint": "abc"} ] } "#,
        #"{"alerts":[{"status":"resolved","labels":{},"annotations":null,"startsAt":null,"fingerprint":null,"extra":[[[]]]}],"version":null,"truncatedAlerts":null}"#,
        #"{"alerts":[{"labels":{"":"","k":"\u0000\u001f"},"status":"firing"},{"status":"firing","labels":{"a":"b"},"values":{"x":1.5E-3}}]}"#,
    ]

    @Test(arguments: wellFormed)
    func aWellFormedPayloadIsScannedAsJSONDecoderDecodesIt(_ json: String) throws {
        let data = Data(json.utf8)
        let scanned = try #require(AlertPayloadScanner.payload(data), "the scanner reads it")
        let decoded = try JSONDecoder().decode(AlertPayload.self, from: data)
        #expect(Self.text(scanned) == Self.text(decoded))
        // And `decode` (which normalises the zero end time) takes it.
        let payload = try AlertPayload.decode(data)
        #expect(payload.alerts.count == decoded.alerts.count)
    }

    static let leftToJSONDecoder: [String] = [
        #"{"alerts":[{"status":"firing","labels":{},"status":"resolved"}]}"#,  // a field twice
        #"{"alerts":[{"status":"firing","labels":{"a":"1","a":"2"}}]}"#,  // a label twice
        #"{"alerts":[{"status":"firing","labels":{"a":1}}]}"#,  // a label that is not a string
        #"{"alerts":[{"labels":{}}]}"#,  // no status
        #"{"alerts":[{"status":"firing","labels":{}},]}"#,  // a trailing comma
        #"{"alerts":[{"status":"firing","labels":{"a":"\ud83d"}}]}"#,  // a lone surrogate
        #"{"alerts":[{"status":"firing","labels":{"a":"b\x"}}]}"#,  // a bad escape
        #"{"alerts":[],"extra":01}"#,  // a bad number
        #"{"alerts":[],"truncatedAlerts":1.5}"#,  // a count that is not whole
        #"{"alerts":[]} x"#,  // text after the payload
        #"{"status":"firing"}"#,  // no alerts
        #"[]"#,
    ]

    @Test(arguments: leftToJSONDecoder)
    func anythingElseIsLeftToJSONDecoder(_ json: String) {
        #expect(AlertPayloadScanner.payload(Data(json.utf8)) == nil)
    }

    @Test func invalidUTF8IsLeftToJSONDecoder() {
        var bytes = Array(#"{"alerts":[{"status":"firing","labels":{"a":"x"}}]}"#.utf8)
        bytes[bytes.count - 6] = 0xff
        #expect(AlertPayloadScanner.payload(Data(bytes)) == nil)
    }

    @Test func aPayloadDecodesTheSameWithOrWithoutTheScanner() throws {
        // What the server sees: the same alerts whichever reader decoded them, errors named as before.
        let alerts = (0..<50).map { i in
            #"{"status":"firing","labels":{"alertname":"Storm","instance":"node-\#(i):9100"},"annotations":{"summary":"node \#(i) is on fire"},"fingerprint":"fp-\#(i)"}"#
        }
        let data = Data(#"{"version":"4","alerts":[\#(alerts.joined(separator: ","))]}"#.utf8)
        let payload = try AlertPayload.decode(data)
        #expect(Self.text(payload) == Self.text(try JSONDecoder().decode(AlertPayload.self, from: data)))
        do { _ = try AlertPayload.decode(Data(#"{"alerts":[{"status":"firing","labels":{}},{"labels":{"a":"b"},"status":7}]}"#.utf8)) } catch {
            #expect("\(error)" == "wrong type at 'alerts[1].status'")
        }
    }
}
