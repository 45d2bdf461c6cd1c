import Dispatch
import Foundation
import Testing
@testable import RunbookServer

/// Runs taken over go on a few at a time, in order; at shutdown the ones still waiting are handed
/// back and never started.
struct ResumePacerTests {
    /// What happened to each item, in order, across threads.
    final class Log: @unchecked Sendable {
        // Guarded by `condition`.
        private let condition = NSCondition()
        private var started: [Int] = []
        private var givenUp: [Int] = []

        func start(_ i: Int) { condition.withLock { started.append(i); condition.broadcast() } }
        func giveUp(_ i: Int) { condition.withLock { givenUp.append(i); condition.broadcast() } }
        var startedSoFar: [Int] { condition.withLock { started } }
        var givenUpSoFar: [Int] { condition.withLock { givenUp } }

        /// Waits (on a Dispatch thread, not the cooperative pool) until `count` items started.
        func waitForStarts(_ count: Int, seconds: Double) async -> Bool { await wait(seconds) { $0.started.count >= count } }
        /// Waits until `count` items were given up (hand-backs run off the caller's thread).
        func waitForGiveUps(_ count: Int, seconds: Double) async -> Bool { await wait(seconds) { $0.givenUp.count >= count } }

        private func wait(_ seconds: Double, until done: @escaping @Sendable (Log) -> Bool) async -> Bool {
            await withCheckedContinuation { c in
                DispatchQueue.global().async { [self] in
                    let deadline = Date().addingTimeInterval(seconds)
                    condition.lock()
                    while !done(self) { if !condition.wait(until: deadline) { break } }
                    let ok = done(self)
                    condition.unlock()
                    c.resume(returning: ok)
                }
            }
        }
    }

    static func items(_ range: Range<Int>, _ log: Log) -> [ResumePacer.Item] {
        range.map { i in ResumePacer.Item(start: { log.start(i) }, giveUp: { log.giveUp(i) }) }
    }

    /// `stop` waits for a group being started: called off the cooperative pool, as the server does.
    static func stop(_ pacer: ResumePacer) async -> Int {
        await withCheckedContinuation { c in DispatchQueue.global().async { c.resume(returning: pacer.stop()) } }
    }

    @Test func theFirstGroupGoesOnAtOnceAndTheRestWaitForTheirTurn() async {
        let log = Log()
        let pacer = ResumePacer(perTick: 20, interval: 3600)
        pacer.enqueue(Self.items(0..<50, log))
        #expect(await log.waitForStarts(20, seconds: 120))
        #expect(pacer.waitingCount == 30)
        // More taken over meanwhile wait behind them.
        pacer.enqueue(Self.items(50..<55, log))
        #expect(pacer.waitingCount == 35)
        // Stopping waits for a group being started, so none starts after it: the first 20 only.
        #expect(await Self.stop(pacer) == 35)
        #expect(log.startedSoFar == Array(0..<20))
    }

    @Test func everyRunGoesOnInOrder() async {
        let log = Log()
        let pacer = ResumePacer(perTick: 7, interval: 0.001)
        pacer.enqueue(Self.items(0..<40, log))
        pacer.enqueue(Self.items(40..<50, log))
        #expect(await log.waitForStarts(50, seconds: 120))
        #expect(log.startedSoFar == Array(0..<50))
        #expect(log.givenUpSoFar.isEmpty)
        #expect(pacer.waitingCount == 0)
        // Once it ran dry, a new takeover's runs go on too.
        pacer.enqueue(Self.items(50..<52, log))
        #expect(await log.waitForStarts(52, seconds: 120))
        #expect(log.startedSoFar == Array(0..<52))
    }

    @Test func stoppingHandsBackTheRunsStillWaitingAndStartsNoMore() async {
        let log = Log()
        let pacer = ResumePacer(perTick: 20, interval: 3600)
        pacer.enqueue(Self.items(0..<50, log))
        #expect(await log.waitForStarts(20, seconds: 120))
        #expect(await Self.stop(pacer) == 30)
        // Taken over after the stop: handed back too, never started.
        pacer.enqueue(Self.items(50..<53, log))
        #expect(await log.waitForGiveUps(33, seconds: 120))
        #expect(Set(log.givenUpSoFar) == Set(20..<53))
        #expect(log.startedSoFar == Array(0..<20))
    }
}
