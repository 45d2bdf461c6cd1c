import Testing
@testable import RunbookCore

/// Rate control without I/O: which host starts when, and when the step stops.
struct FleetPlannerTests {
    static func across(_ edit: (inout AcrossSpec) -> Void = { _ in }) -> AcrossSpec {
        var a = AcrossSpec(targets: "web", location: SourceLocation(file: "t", line: 1, column: 1))
        edit(&a)
        return a
    }

    static func starts(_ actions: [FleetPlanner.Action]) -> [Int] {
        actions.compactMap { if case .start(let i) = $0 { i } else { nil } }
    }

    @Test func slidingWindowNeverRunsMoreThanConcurrency() {
        var p = FleetPlanner(hosts: 20, across: Self.across { $0.concurrency = .count(5) })
        var running = Set(Self.starts(p.begin()))
        #expect(running == Set(0..<5))
        var finished = 0
        while let h = running.min() {
            running.remove(h)
            let actions = p.hostFinished(h, succeeded: true)
            running.formUnion(Self.starts(actions))
            #expect(running.count <= 5)
            finished += 1
            if case .finished(let passed, _)? = actions.last { #expect(passed) }
        }
        #expect(finished == 20)
    }

    @Test func percentConcurrencyRoundsUpAndMaxErrorsRoundsDown() {
        let p = FleetPlanner(hosts: 25, across: Self.across { $0.concurrency = .percent(10); $0.maxErrors = .percent(10) })
        #expect(p.concurrency == 3)
        #expect(p.maxErrors == 2)
    }

    @Test func rampStartsOneThenTwoThenFourEachAfterTheLastBatch() {
        var p = FleetPlanner(hosts: 10, across: Self.across { $0.concurrency = .count(4); $0.ramp = true })
        #expect(Self.starts(p.begin()) == [0])
        #expect(Self.starts(p.hostFinished(0, succeeded: true)) == [1, 2])
        #expect(Self.starts(p.hostFinished(1, succeeded: true)) == [])
        #expect(Self.starts(p.hostFinished(2, succeeded: true)) == [3, 4, 5, 6])
        for h in 3...5 { #expect(Self.starts(p.hostFinished(h, succeeded: true)) == []) }
        #expect(Self.starts(p.hostFinished(6, succeeded: true)) == [7, 8, 9])
    }

    @Test func maxErrorsTwoStopsAtTheThirdFailureAndLetsInFlightHostsFinish() {
        var p = FleetPlanner(hosts: 20, across: Self.across { $0.concurrency = .count(5); $0.maxErrors = .count(2) })
        _ = p.begin()
        #expect(Self.starts(p.hostFinished(0, succeeded: false)) == [5])
        #expect(Self.starts(p.hostFinished(1, succeeded: false)) == [6])
        // The third failure: no new host; four are still in flight.
        #expect(p.hostFinished(2, succeeded: false).isEmpty)
        #expect(p.hostFinished(3, succeeded: true).isEmpty)
        #expect(p.hostFinished(4, succeeded: true).isEmpty)
        #expect(p.hostFinished(5, succeeded: true).isEmpty)
        let last = p.hostFinished(6, succeeded: true)
        guard case .finished(let passed, let message)? = last.first else { Issue.record("not finished: \(last)"); return }
        #expect(!passed)
        #expect(message.contains("3 hosts failed, more than max_errors 2"))
        #expect(p.notStarted == 7..<20)
    }

    /// Hosts in flight when the step stopped may fail too: the message counts every failure the
    /// step ends with, not only those seen when it stopped (a new user saw "1 host failed" over a
    /// list of two).
    @Test func theStopMessageCountsFailuresOfHostsThatWereInFlight() {
        var p = FleetPlanner(hosts: 10, across: Self.across { $0.concurrency = .count(3) })
        _ = p.begin()
        #expect(p.hostFinished(0, succeeded: false).isEmpty)
        #expect(p.hostFinished(1, succeeded: false).isEmpty)
        let last = p.hostFinished(2, succeeded: true)
        #expect(last == [.finished(passed: false, message: "2 hosts failed, more than max_errors 0; 7 not started")])
    }

    @Test func failuresWithinMaxErrorsPass() {
        var p = FleetPlanner(hosts: 3, across: Self.across { $0.maxErrors = .count(1) })
        _ = p.begin()
        _ = p.hostFinished(0, succeeded: false)
        _ = p.hostFinished(1, succeeded: true)
        #expect(p.hostFinished(2, succeeded: true) == [.finished(passed: true, message: "2 of 3 hosts passed, 1 failed (within max_errors 1)")])
    }

    @Test func defaultMaxErrorsStopsAtTheFirstFailure() {
        var p = FleetPlanner(hosts: 5, across: Self.across())
        _ = p.begin()
        #expect(p.hostFinished(0, succeeded: false).first.map { if case .finished(false, _) = $0 { true } else { false } } == true)
    }

    @Test func canaryFailureStopsAfterOneHost() {
        var p = FleetPlanner(hosts: 20, across: Self.across { $0.concurrency = .count(5); $0.maxErrors = .count(5); $0.canary = .init(hosts: 1, verify: "ok") })
        #expect(Self.starts(p.begin()) == [0])
        let after = p.hostFinished(0, succeeded: false)
        guard case .finished(false, let message)? = after.first else { Issue.record("\(after)"); return }
        #expect(message.contains("canary"))
        #expect(p.notStarted.count == 19)
    }

    @Test func canaryCheckRunsBeforeTheRestAndItsFailureStops() {
        var p = FleetPlanner(hosts: 6, across: Self.across { $0.concurrency = .count(3); $0.canary = .init(hosts: 2, verify: "ok") })
        #expect(Self.starts(p.begin()) == [0, 1])
        #expect(p.hostFinished(0, succeeded: true).isEmpty)
        #expect(p.hostFinished(1, succeeded: true) == [.verify([0, 1])])
        #expect(Self.starts(p.verifyFinished(passed: true, message: "")) == [2, 3, 4])

        var q = FleetPlanner(hosts: 6, across: Self.across { $0.canary = .init(hosts: 1, verify: "ok") })
        _ = q.begin()
        #expect(q.hostFinished(0, succeeded: true) == [.verify([0])])
        guard case .finished(false, let m)? = q.verifyFinished(passed: false, message: "500").first else { Issue.record("no stop"); return }
        #expect(m.contains("canary check failed: 500"))
    }

    @Test func pauseComesBetweenBatches() {
        var p = FleetPlanner(hosts: 4, across: Self.across { $0.concurrency = .count(2); $0.pause = 5 })
        #expect(Self.starts(p.begin()) == [0, 1])
        _ = p.hostFinished(0, succeeded: true)
        #expect(p.hostFinished(1, succeeded: true) == [.pause(5)])
        #expect(Self.starts(p.pauseEnded()) == [2, 3])
    }

    @Test func haltStartsNothingNewAndEndsWhenTheLastHostReturns() {
        var p = FleetPlanner(hosts: 10, across: Self.across { $0.concurrency = .count(2) })
        _ = p.begin()
        #expect(p.halt("alarm").isEmpty)
        #expect(p.hostFinished(0, succeeded: true).isEmpty)
        #expect(p.hostFinished(1, succeeded: true) == [.finished(passed: false, message: "alarm")])
    }
}
