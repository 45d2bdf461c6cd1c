import Foundation
import RunbookCore
import RunbookStoreContract
import Testing

/// `runbook cancel` waits for its request to be taken. A run that takes it and ends between the
/// waiter's read of the timeline and its read of the row must count as taken: CI saw "finished
/// before the cancel was taken" (exit 1) for a cancel that had been taken.
struct CancelProgressTests {
    static func event(_ name: String, by: String? = nil) -> TimelineEvent {
        var e = TimelineEvent(time: Date(), run: "r-1", event: name)
        e.by = by
        return e
    }

    @Test func aCancelTakenBetweenTheTwoReadsCountsAsTaken() {
        let before = [Self.event("run.started"), Self.event("step.started")]
        let after = before + [Self.event("run.cancelled", by: "root"), Self.event("run.finished")]
        #expect(CancelProgress.of(before, by: "root", outcomeRecorded: { true }, reread: { after }) == .taken)
    }

    @Test func aRunThatEndedWithoutTheCancelFinishedFirst() {
        let ended = [Self.event("run.started"), Self.event("run.finished")]
        #expect(CancelProgress.of(ended, by: "root", outcomeRecorded: { true }, reread: { ended }) == .finishedFirst)
        // Another person's cancel is not ours.
        let other = [Self.event("run.cancelled", by: "nina"), Self.event("run.finished")]
        #expect(CancelProgress.of(other, by: "root", outcomeRecorded: { true }, reread: { other }) == .finishedFirst)
    }

    @Test func aRunStillGoingIsWaitedForAndItsTimelineIsReadOnce() {
        var rereads = 0
        let going = [Self.event("run.started"), Self.event("step.started")]
        #expect(CancelProgress.of(going, by: "root", outcomeRecorded: { false }, reread: { rereads += 1; return going }) == .waiting)
        #expect(rereads == 0)
        #expect(CancelProgress.of(going + [Self.event("run.cancelled", by: "root")], by: "root", outcomeRecorded: { false }, reread: { going }) == .taken)
    }
}
