import Dispatch
import Foundation
import RunbookStoreContract
import Testing

/// `AdmissionChunks.pipelined`: chunks recorded one at a time, in order, on the recorder's queue,
/// while the caller prepares the next chunk and finishes the one before.
@Suite(.timeLimit(.minutes(5)))
struct AdmissionPipelineTests {
    /// What happened, in order, from both threads.
    final class Log: @unchecked Sendable {
        private let lock = NSLock()
        private var lines: [String] = []
        func add(_ line: String) { lock.withLock { lines.append(line) } }
        var all: [String] { lock.withLock { lines } }
    }

    @Test func theNextChunkIsPreparedWhileOneIsRecordedAndEveryChunkIsRecordedAndFinishedInOrder() async throws {
        let log = Log()
        let secondPrepared = DispatchSemaphore(value: 0)
        let recorder = DispatchQueue(label: "test.recorder")
        let out = try await off {
            AdmissionChunks.pipelined(Array(0..<25), size: 10, recorder: recorder, prepare: { chunk -> [Int] in
                log.add("prepare \(chunk.first!)")
                if chunk.first == 10 { secondPrepared.signal() }
                return Array(chunk)
            }, record: { chunk -> [String] in
                // The first chunk is held until the caller has prepared the second: it would wait
                // out the minute if preparing waited for recording.
                if chunk.first == 0 { log.add(secondPrepared.wait(timeout: .now() + 60) == .success ? "overlapped" : "not overlapped") }
                dispatchPrecondition(condition: .onQueue(recorder))
                log.add("record \(chunk.first!)")
                return chunk.map { "d\($0)" }
            }, finish: { chunk, recorded -> [String] in
                log.add("finish \(chunk.first!)")
                return recorded
            })
        }
        #expect(out.failure == nil)
        #expect(out.decided == (0..<25).map { "d\($0)" })
        let lines = log.all
        #expect(lines.contains("overlapped"))
        #expect(lines.filter { $0.hasPrefix("record") } == ["record 0", "record 10", "record 20"])
        #expect(lines.filter { $0.hasPrefix("finish") } == ["finish 0", "finish 10", "finish 20"])
        for k in [0, 10, 20] {
            let recorded = try #require(lines.firstIndex(of: "record \(k)"))
            #expect(lines.firstIndex(of: "finish \(k)")! > recorded, "a chunk is finished after it is recorded")
            if k > 0 { #expect(recorded > lines.firstIndex(of: "record \(k - 10)")!) }
        }
    }

    @Test func aChunkThatFailsToRecordStopsThePipelineAndTheChunksBeforeItStayDecided() async throws {
        struct Down: Error {}
        let log = Log()
        let out = try await off {
            AdmissionChunks.pipelined(Array(0..<35), size: 10, recorder: DispatchQueue(label: "test.recorder"), prepare: { Array($0) },
                record: { chunk -> [String] in
                    log.add("record \(chunk.first!)")
                    if chunk.contains(15) { throw Down() }
                    return chunk.map { "d\($0)" }
                }, finish: { chunk, recorded -> [String] in
                    log.add("finish \(chunk.first!)")
                    return recorded
                })
        }
        #expect(out.decided == (0..<10).map { "d\($0)" })
        #expect(out.failure is Down)
        #expect(log.all.filter { $0.hasPrefix("record") } == ["record 0", "record 10"], "no chunk after the failed one is recorded")
        #expect(!log.all.contains("finish 10"))
    }

    /// A webhook's admission fails fast on an unreachable store (`StoreReachability`): so must the
    /// chunks it records on the recorder's thread (seen: they waited out the 15 s query timeout).
    @Test func chunksAreRecordedFailingFastWhenTheCallerIs() async throws {
        let recorder = DispatchQueue(label: "test.recorder")
        let run: @Sendable () -> [Bool] = {
            AdmissionChunks.pipelined(Array(0..<3), size: 2, recorder: recorder, prepare: { Array($0) },
                record: { chunk in chunk.map { _ in StoreReachability.failsFast } }, finish: { $1 }).decided
        }
        #expect(try await off { StoreReachability.failingFast { run() } } == [true, true, true])
        #expect(try await off { run() } == [false, false, false])
    }

    @Test func anEmptyBatchRecordsNothing() async throws {
        let out = try await off {
            AdmissionChunks.pipelined([Int](), size: 10, recorder: DispatchQueue(label: "test.recorder"), prepare: { Array($0) },
                record: { _ -> [Int] in Issue.record("nothing to record"); return [] }, finish: { $1 })
        }
        #expect(out.decided.isEmpty && out.failure == nil)
    }
}
