import Dispatch
import Foundation
import Testing
@testable import RunbookServer

/// Runs taken over go on a few at a time, in order; at shutdown the ones still waiting are handed
/// back and never started.
struct ResumePacerTests {
    /// What happened to each item, in order, across threads.
    final class Log: @unchecked Sendable {
        // Guarded by `lock`.
        private let lock = NSLock()
        private var started: [Int] = []
        private var givenUp: [Int] = []
        private var waiters: [(count: Int, done: DispatchSemaphore)] = []

        func start(_ i: Int) {
            let ready = lock.withLock { () -> [DispatchSemaphore] in
                started.append(i)
                let (due, rest) = (waiters.filter { $0.count <= started.count }, waiters.filter { $0.count > started.count })
                waiters = rest
                return due.map(\.done)
            }
            ready.forEach { $0.signal() }
        }
        func giveUp(_ i: Int) { lock.withLock { givenUp.append(i) } }
        var startedSoFar: [Int] { lock.withLock { started } }
        var givenUpSoFar: [Int] { lock.withLock { givenUp } }

        /// Waits (off the cooperative pool) until `count` items started, at most `seconds`.
        func waitForStarts(_ count: Int, seconds: Double) async -> Bool {
            let done = DispatchSemaphore(value: 0)
            let already = lock.withLock { () -> Bool in
                if started.count >= count { return true }
                waiters.append((count, done))
                return false
            }
            if already { return true }
            return await withCheckedContinuation { c in
                DispatchQueue.global().async { c.resume(returning: done.wait(timeout: .now() + seconds) == .success) }
            }
        }
    }

    static func items(_ range: Range<Int>, _ log: Log) -> [ResumePacer.Item] {
        range.map { i in ResumePacer.Item(start: { log.start(i) }, giveUp: { log.giveUp(i) }) }
    }

    @Test func theFirstGroupGoesOnAtOnceAndTheRestWaitForTheirTurn() {
        let log = Log()
        let pacer = ResumePacer(perTick: 20, interval: 3600)
        pacer.enqueue(Self.items(0..<50, log))
        #expect(log.startedSoFar == Array(0..<20))
        #expect(pacer.waitingCount == 30)
        // More taken over meanwhile wait behind them; none starts before its turn.
        pacer.enqueue(Self.items(50..<55, log))
        #expect(log.startedSoFar == Array(0..<20))
        #expect(pacer.waitingCount == 35)
        pacer.stop()
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

    @Test func stoppingHandsBackTheRunsStillWaitingAndStartsNoMore() {
        let log = Log()
        let pacer = ResumePacer(perTick: 20, interval: 3600)
        pacer.enqueue(Self.items(0..<50, log))
        #expect(pacer.stop() == 30)
        #expect(log.givenUpSoFar == Array(20..<50))
        // Taken over after the stop: handed back at once, never started.
        pacer.enqueue(Self.items(50..<53, log))
        #expect(log.givenUpSoFar == Array(20..<53))
        #expect(log.startedSoFar == Array(0..<20))
    }
}
