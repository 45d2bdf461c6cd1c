import Foundation

/// The rate control of one `across:` step as a pure state machine: which host starts when, when
/// the canary's check runs, when a batch pauses, and when the step stops (issue 22, decision 2).
///
/// Hosts are indices into the resolved list. Without `ramp` or `pause` the step keeps
/// `concurrency` hosts running (a sliding window); with either, hosts go in batches, each starting
/// when the last has finished (ramp: 1, 2, 4... up to `concurrency`). A canary batch goes first
/// and alone; any failure there, or its check failing, stops the step. Once failures exceed
/// `max_errors` no new host starts; hosts in flight finish, then the step fails.
public struct FleetPlanner: Sendable {
    /// What the executor must do next.
    public enum Action: Sendable, Equatable {
        /// Start host `index`.
        case start(Int)
        /// Run the canary's check on these hosts; answer with `verifyFinished`.
        case verify([Int])
        /// Wait, then call `pauseEnded`.
        case pause(Double)
        /// The step is over: passed (failures within `max_errors`) or not, and why.
        case finished(passed: Bool, message: String)
    }

    enum Stage: Sendable, Equatable {
        case notStarted, canary, verifying, pausing, rolling
        case stopping(StopReason)
        case done
    }

    /// Why no new host starts. The message is worded when the step ends, so its counts include
    /// the hosts that were in flight when it stopped.
    enum StopReason: Sendable, Equatable {
        /// A canary host failed; `notStarted` hosts were never started.
        case canaryHost(notStarted: Int)
        /// Failures passed `max_errors`.
        case tooManyFailures(notStarted: Int)
        /// The canary's check failed.
        case canaryCheck(String, notStarted: Int)
        /// Stopped from outside (an alarm, an interrupt).
        case halted(String)
    }

    public let hosts: Int
    public let concurrency: Int
    public let maxErrors: Int
    let ramp: Bool
    let pause: Double
    let canary: Int
    let verifies: Bool
    var stage: Stage = .notStarted
    var next = 0
    var batch = 0
    var batchOpen = 0
    public private(set) var running: Set<Int> = []
    public private(set) var failed: [Int] = []
    public private(set) var succeeded: [Int] = []

    /// - Parameters:
    ///   - hosts: how many hosts were resolved (at least 1).
    public init(hosts: Int, across: AcrossSpec) {
        self.hosts = hosts
        concurrency = min(hosts, across.concurrency.of(hosts, roundingUp: true, minimum: 1))
        maxErrors = across.maxErrors.of(hosts, roundingUp: false, minimum: 0)
        ramp = across.ramp
        pause = across.pause
        canary = min(hosts, across.canary?.hosts ?? 0)
        verifies = across.canary?.verify != nil
    }

    var batched: Bool { ramp || pause > 0 }

    /// Hosts never started (the step stopped first).
    public var notStarted: Range<Int> { next..<hosts }

    /// Starts the step.
    public mutating func begin() -> [Action] {
        guard stage == .notStarted else { return [] }
        if canary > 0 {
            stage = .canary
            return startBatch(canary)
        }
        stage = .rolling
        return batched ? startBatch(ramp ? 1 : concurrency) : fill()
    }

    /// Host `index` ended; `succeeded` false for failed, timed-out and errored.
    public mutating func hostFinished(_ index: Int, succeeded ok: Bool) -> [Action] {
        guard running.remove(index) != nil else { return [] }
        batchOpen -= 1
        if ok { succeeded.append(index) } else { failed.append(index) }
        if !ok, stop == nil {
            if stage == .canary {
                stage = .stopping(.canaryHost(notStarted: hosts - next))
            } else if failed.count > maxErrors {
                stage = .stopping(.tooManyFailures(notStarted: hosts - next))
            }
        }
        return advance()
    }

    /// The canary's check ended.
    public mutating func verifyFinished(passed: Bool, message: String) -> [Action] {
        guard stage == .verifying else { return [] }
        if !passed {
            stage = .stopping(.canaryCheck(message, notStarted: hosts - next))
            return advance()
        }
        stage = .rolling
        return nextBatch()
    }

    /// A pause between batches ended.
    public mutating func pauseEnded() -> [Action] {
        guard stage == .pausing else { return [] }
        stage = .rolling
        batch = ramp ? min(concurrency, max(1, batch * 2)) : concurrency
        return startBatch(batch)
    }

    /// Stops starting hosts (an alarm, an interrupt): hosts in flight finish.
    public mutating func halt(_ why: String) -> [Action] {
        guard stop == nil, stage != .done else { return [] }
        stage = .stopping(.halted(why))
        return advance()
    }

    var stop: StopReason? {
        if case .stopping(let s) = stage { return s }
        return nil
    }

    /// The step's message once every host in flight has ended.
    func message(_ why: StopReason) -> String {
        func hostCount(_ n: Int) -> String { "\(n) host\(n == 1 ? "" : "s")" }
        switch why {
        case .canaryHost(let notStarted):
            let f = failed.count
            return "\(f == 1 ? "canary host" : "\(f) canary hosts") failed; \(hostCount(notStarted)) not started"
        case .tooManyFailures(let notStarted):
            return "\(hostCount(failed.count)) failed, more than max_errors \(maxErrors); \(notStarted) not started"
        case .canaryCheck(let message, let notStarted):
            return "canary check failed: \(message); \(hostCount(notStarted)) not started"
        case .halted(let why):
            return why
        }
    }

    mutating func advance() -> [Action] {
        if let why = stop {
            guard running.isEmpty else { return [] }
            stage = .done
            return [.finished(passed: false, message: message(why))]
        }
        switch stage {
        case .canary:
            guard running.isEmpty else { return [] }
            if verifies {
                stage = .verifying
                return [.verify(Array(0..<next))]
            }
            stage = .rolling
            return nextBatch()
        case .rolling:
            if next >= hosts {
                guard running.isEmpty else { return [] }
                stage = .done
                let f = failed.count
                return [.finished(passed: true, message: f == 0 ? "\(hosts) host\(hosts == 1 ? "" : "s") passed" : "\(hosts - f) of \(hosts) hosts passed, \(f) failed (within max_errors \(maxErrors))")]
            }
            if batched { return batchOpen == 0 ? nextBatch() : [] }
            return fill()
        default:
            return []
        }
    }

    /// After a finished batch: a pause, or the next batch.
    mutating func nextBatch() -> [Action] {
        guard next < hosts else { return advance() }
        if !batched { return fill() }
        if pause > 0, next > 0 {
            stage = .pausing
            return [.pause(pause)]
        }
        batch = ramp ? min(concurrency, max(1, batch * 2)) : concurrency
        return startBatch(batch)
    }

    mutating func startBatch(_ size: Int) -> [Action] {
        batch = size
        var out: [Action] = []
        while out.count < size, next < hosts {
            running.insert(next)
            out.append(.start(next))
            next += 1
        }
        batchOpen = out.count
        return out
    }

    /// Sliding window: start hosts until `concurrency` run.
    mutating func fill() -> [Action] {
        var out: [Action] = []
        while running.count < concurrency, next < hosts {
            running.insert(next)
            out.append(.start(next))
            next += 1
        }
        return out
    }
}
