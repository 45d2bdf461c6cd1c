import Foundation
import RunbookCore
import RunbookRuntime
import Testing
@testable import RunbookServer

/// A run's feed numbers events by their place in the record, whether they come from a read of the
/// record or live from the run, and sends each once.
struct ConsoleFeedTests {
    static func event(_ i: Int, _ name: String = "step.started") -> TimelineEvent {
        var e = TimelineEvent(time: Date(timeIntervalSince1970: 1_780_000_000 + Double(i) * 0.0137), run: "r1", event: name)
        e.step = "s\(i)"
        return e
    }

    static let finished = event(99, "run.finished")

    /// Every item until the stream ends: (id, line) per event; nil if it ended by dropping the watcher.
    static func drain(_ stream: AsyncThrowingStream<FeedItem, any Error>) async -> (events: [(Int, String)], dropped: Bool) {
        var out: [(Int, String)] = []
        do {
            for try await item in stream { if case .event(let id, let line) = item { out.append((id, line)) } }
        } catch {
            return (out, true)
        }
        return (out, false)
    }

    @Test func liveEventsTheRecordReadAlreadyGaveAreNotSentAgain() async {
        let feed = RunFeed(runID: "r1")
        let stream = feed.subscribe(after: 0, buffer: 64)
        let e = (0..<5).map { Self.event($0) }
        feed.publish(record: Array(e[0...2]), finished: false)
        // The live view was attached before the read: it repeats e1 and e2.
        feed.publish(live: Array(e[1...3]))
        feed.publish(live: [e[4], Self.finished])
        let got = await Self.drain(stream)
        #expect(got.events.map(\.0) == [1, 2, 3, 4, 5, 6])
        #expect(got.events.map(\.1) == (e + [Self.finished]).map { $0.jsonLine() })
        #expect(!got.dropped)
    }

    @Test func aLiveEventNotYetDeliveredAtTheReadIsPlacedWhereTheRecordHasIt() async {
        let feed = RunFeed(runID: "r1")
        let stream = feed.subscribe(after: 0, buffer: 64)
        let e = (0..<4).map { Self.event($0) }
        // e2 was recorded (so read) before the live view delivered it.
        feed.publish(record: Array(e[0...2]), finished: false)
        feed.publish(live: [e[2]])
        feed.publish(live: [e[3]])
        feed.publish(live: [Self.finished])
        let got = await Self.drain(stream)
        #expect(got.events.map(\.0) == [1, 2, 3, 4, 5])
        #expect(got.events.map(\.1) == (e + [Self.finished]).map { $0.jsonLine() })
    }

    @Test func liveEventsAfterTheReadTakeTheNextPlaces() async {
        let feed = RunFeed(runID: "r1")
        let e = (0..<4).map { Self.event($0) }
        feed.publish(record: Array(e[0...1]), finished: false)
        feed.publish(live: [e[2], e[3]])
        #expect(feed.count == 4)
        // A read after a gap gives nothing twice and places the next live event anew.
        feed.publish(record: Array(e[0...3]) + [Self.event(4)], finished: false)
        feed.publish(live: [Self.event(4), Self.event(5)])
        #expect(feed.count == 6)
    }

    @Test func aWatcherResumingAfterEventNGetsOnlyTheEventsAfterN() async {
        let feed = RunFeed(runID: "r1")
        let e = (0..<4).map { Self.event($0) }
        feed.publish(record: Array(e[0...2]), finished: false)
        let stream = feed.subscribe(after: 2, buffer: 64)
        feed.publish(live: [e[3], Self.finished])
        let got = await Self.drain(stream)
        #expect(got.events.map(\.0) == [3, 4, 5])
        #expect(feed.isEnded)
        // After the end, a watcher gets the rest and the stream ends at once.
        let late = await Self.drain(feed.subscribe(after: 4, buffer: 1))
        #expect(late.events.map(\.0) == [5])
    }

    @Test func aSlowWatcherIsDroppedAndTheFeedGoesOn() async {
        let feed = RunFeed(runID: "r1")
        let slow = feed.subscribe(after: 0, buffer: 2)
        let other = feed.subscribe(after: 0, buffer: 64)
        feed.publish(live: (0..<5).map { Self.event($0) })
        #expect(feed.watcherCount == 1)
        feed.publish(live: [Self.finished])
        let s = await Self.drain(slow)
        #expect(s.dropped && s.events.map(\.0) == [1, 2])
        let o = await Self.drain(other)
        #expect(!o.dropped && o.events.map(\.0) == [1, 2, 3, 4, 5, 6])
    }

    @Test func aClosedRowEndsTheStreamAfterItsEvents() async {
        let feed = RunFeed(runID: "r1")
        let stream = feed.subscribe(after: 0, buffer: 64)
        #expect(feed.publish(record: [Self.event(0)], finished: true))
        let got = await Self.drain(stream)
        #expect(got.events.map(\.0) == [1] && !got.dropped)
    }
}
