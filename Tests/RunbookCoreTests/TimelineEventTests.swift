import Foundation
import Testing
@testable import RunbookCore

/// One definition of an event's fields: the JSON line, its reading back and the Codable form agree.
struct TimelineEventTests {
    static var everyField: TimelineEvent {
        var e = TimelineEvent(time: Date(timeIntervalSince1970: 1_780_626_900.123), run: "r-20260605-021500-a1b2", event: "step.finished")
        e.runbook = "memory-leak"
        e.trigger = "alert:HighMemory"
        e.params = ["service": "shop", "zone": "a \"quoted\" value"]
        e.dryRun = false
        e.drill = true
        e.step = "memory-growing"
        e.phase = "detect"
        e.status = "passed"
        e.attempt = 2
        e.durationMs = 20004
        e.delayMs = 500
        e.message = "slope 2.4 MB/s\nover 20 samples"
        e.output = ["slope_bytes_per_s": .number(2516582), "ok": .bool(true), "name": .string("x/y"), "none": .null]
        e.what = "flag f"
        e.from = "on"
        e.to = "off"
        e.outcome = "mitigated"
        e.guardName = "cooldown"
        e.until = Date(timeIntervalSince1970: 1_780_627_000.5)
        e.exitCode = 3
        e.stdout = "out"
        e.stderr = "err\u{1}"
        e.undoable = false
        e.by = "alice"
        e.gate = "changes"
        e.deadline = Date(timeIntervalSince1970: 1_780_628_000)
        e.location = "/srv/flags.json"
        e.flagKey = "image-resize"
        e.flagField = "defaultVariant"
        e.target = "web-3"
        return e
    }

    @Test func aTimestampIsRFC3339UTCWithMillisecondsThatReadsBackTheSame() throws {
        #expect(TimelineEvent.timestamp(Date(timeIntervalSince1970: 1_780_626_900.123)) == "2026-06-05T02:35:00.123Z")
        #expect(TimelineEvent.timestamp(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        #expect(TimelineEvent.timestamp(Date(timeIntervalSince1970: 951_782_400.999_9)) == "2000-02-29T00:00:00.999Z")
        #expect(TimelineEvent.timestamp(Date(timeIntervalSince1970: -0.25)) == "1969-12-31T23:59:59.750Z")
        #expect(TimelineEvent.timestamp(Date(timeIntervalSince1970: -62_135_596_800)) == "0001-01-01T00:00:00.000Z")
        for text in ["2026-11-30T23:59:59.550Z", "2026-12-01T00:00:00.001Z", "1999-12-31T23:59:59.999Z"] {
            let date = try #require(TimelineEvent.parseTimestamp(text))
            #expect(TimelineEvent.timestamp(date) == text)
        }
    }

    @Test func aLineReadsBackAsTheEventItWasWrittenFrom() throws {
        let e = Self.everyField
        #expect(TimelineEvent.parse(jsonLine: e.jsonLine()) == e)
    }

    @Test func everyCodingKeyIsWrittenOnTheLine() throws {
        let line = try #require(try JSONSerialization.jsonObject(with: Data(Self.everyField.jsonLine().utf8)) as? [String: Any])
        #expect(Set(line.keys) == Set(TimelineEvent.CodingKeys.allCases.map(\.stringValue)))
    }

    @Test func theCodableFormIsTheLineForm() throws {
        let e = Self.everyField
        let data = try TimelineEvent.encoder.encode(e)
        #expect(TimelineEvent.parse(jsonLine: String(decoding: data, as: UTF8.self)) == e)
    }

    @Test func theLineKeepsItsFieldOrder() {
        var e = TimelineEvent(time: Date(timeIntervalSince1970: 0), run: "r-1", event: "run.finished")
        e.outcome = "completed"
        e.durationMs = 5
        #expect(e.jsonLine() == #"{"time":"1970-01-01T00:00:00.000Z","run":"r-1","event":"run.finished","duration_ms":5,"outcome":"completed"}"#)
    }

    @Test func aDamagedLineIsNotAnEvent() {
        #expect(TimelineEvent.parse(jsonLine: #"{"time":"yesterday","run":"r-1","event":"x"}"#) == nil)
        #expect(TimelineEvent.parse(jsonLine: #"{"time":"2026-06-05T02:15:00.123Z","run":"r-1""#) == nil)
    }
}
