import Dispatch
import Foundation
import Testing
@testable import RunbookServer

/// Webhooks that arrive while an admission is in flight are decided together in the next one, each
/// caller getting its own decisions, in arrival order.
struct AdmissionCombinerTests {
    /// Records the batches `decide` was given; the first call waits until it is let go.
    final class Decider: @unchecked Sendable {
        // `batches` is guarded by `lock`.
        let lock = NSLock()
        var batches: [[Int]] = []
        let firstCallGoes = DispatchSemaphore(value: 0)
        let firstCallStarted = DispatchSemaphore(value: 0)

        func decide(_ requests: [Int]) -> [String] {
            let first = lock.withLock { () -> Bool in
                batches.append(requests)
                return batches.count == 1
            }
            if first {
                firstCallStarted.signal()
                firstCallGoes.wait()
            }
            return requests.map { "decided \($0)" }
        }
    }

    /// Submits `requests` on a thread of its own; `answer` gets the decisions.
    static func submit(_ combiner: AdmissionCombiner<Int, String>, _ decider: Decider, _ requests: [Int],
                       into answers: Answers) {
        Thread {
            let d = combiner.submit(requests) { decider.decide($0) }
            answers.add(requests, d)
        }.start()
    }

    final class Answers: @unchecked Sendable {
        // `got` is guarded by `lock`.
        let lock = NSLock()
        var got: [[Int]: [String]] = [:]
        let all = DispatchGroup()
        func expect(_ n: Int) { for _ in 0..<n { all.enter() } }
        func add(_ r: [Int], _ d: [String]) {
            lock.withLock { got[r] = d }
            all.leave()
        }
    }

    /// Waits, off the cooperative pool, until `combiner` has `n` callers waiting for a leader.
    static func waitForWaiting(_ combiner: AdmissionCombiner<Int, String>, _ n: Int) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            Thread {
                // A caller queues within microseconds of starting; a yield-only spin keeps the test free of timed waits.
                while combiner.waitingCount < n { sched_yield() }
                c.resume()
            }.start()
        }
    }

    /// Submits `[1]` and returns once its admission is in flight (held until `firstCallGoes`).
    static func admitFirst(_ combiner: AdmissionCombiner<Int, String>, _ decider: Decider, into answers: Answers) async {
        submit(combiner, decider, [1], into: answers)
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            Thread { decider.firstCallStarted.wait(); c.resume() }.start()
        }
    }

    static func finished(_ answers: Answers) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            Thread { answers.all.wait(); c.resume() }.start()
        }
    }

    @Test func callersThatArriveDuringAnAdmissionAreDecidedTogetherInTheNextOne() async {
        let combiner = AdmissionCombiner<Int, String>(limit: 250)
        let decider = Decider(), answers = Answers()
        answers.expect(4)
        await Self.admitFirst(combiner, decider, into: answers)
        // Three more webhooks arrive, one after the other, while the first is being admitted.
        Self.submit(combiner, decider, [2], into: answers)
        await Self.waitForWaiting(combiner, 1)
        Self.submit(combiner, decider, [3, 4], into: answers)
        await Self.waitForWaiting(combiner, 2)
        Self.submit(combiner, decider, [5], into: answers)
        await Self.waitForWaiting(combiner, 3)
        decider.firstCallGoes.signal()
        await Self.finished(answers)
        #expect(decider.lock.withLock { decider.batches } == [[1], [2, 3, 4, 5]])
        // Each caller gets its own decisions back, in its own order.
        let got = answers.lock.withLock { answers.got }
        #expect(got[[1]] == ["decided 1"])
        #expect(got[[2]] == ["decided 2"])
        #expect(got[[3, 4]] == ["decided 3", "decided 4"])
        #expect(got[[5]] == ["decided 5"])
    }

    @Test func aBatchStaysWithinTheLimitUnlessOneCallerAloneBringsMore() async {
        let combiner = AdmissionCombiner<Int, String>(limit: 3)
        let decider = Decider(), answers = Answers()
        answers.expect(5)
        await Self.admitFirst(combiner, decider, into: answers)
        Self.submit(combiner, decider, [10, 11], into: answers)
        await Self.waitForWaiting(combiner, 1)
        Self.submit(combiner, decider, [20, 21], into: answers)
        await Self.waitForWaiting(combiner, 2)
        Self.submit(combiner, decider, [30, 31, 32, 33], into: answers)
        await Self.waitForWaiting(combiner, 3)
        Self.submit(combiner, decider, [40], into: answers)
        await Self.waitForWaiting(combiner, 4)
        decider.firstCallGoes.signal()
        await Self.finished(answers)
        // Arrival order kept; [20, 21] would take the batch past 3; the caller of four is decided alone.
        #expect(decider.lock.withLock { decider.batches } == [[1], [10, 11], [20, 21], [30, 31, 32, 33], [40]])
        let got = answers.lock.withLock { answers.got }
        #expect(got[[30, 31, 32, 33]] == ["decided 30", "decided 31", "decided 32", "decided 33"])
        #expect(got[[40]] == ["decided 40"])
    }

    @Test func twentyRacingCallersEachGetExactlyTheirOwnDecisions() async {
        let combiner = AdmissionCombiner<Int, String>(limit: 250)
        let answers = Answers()
        // Slow enough that callers pile up behind each admission.
        let decide: @Sendable ([Int]) -> [String] = { r in usleep(2_000); return r.map { "decided \($0)" } }
        answers.expect(20)
        for i in 0..<20 {
            Thread {
                let r = [i * 10, i * 10 + 1]
                answers.add(r, combiner.submit(r, decide: decide))
            }.start()
        }
        await Self.finished(answers)
        let got = answers.lock.withLock { answers.got }
        #expect(got.count == 20)
        for i in 0..<20 { #expect(got[[i * 10, i * 10 + 1]] == ["decided \(i * 10)", "decided \(i * 10 + 1)"]) }
        #expect(combiner.waitingCount == 0)
    }
}
