import Dispatch
import Foundation
import Logging
import NIOPosix
import RunbookActions
import RunbookCore
import RunbookStoreContract
import ServiceLifecycle

/// The server's runs as a service: it does nothing until the group shuts down (after the HTTP
/// server stopped taking requests), then drains them. Runs that only wait for approval are left
/// paused for the next server; running steps may finish for the grace period; then every run still
/// going ends `interrupted`. No thread of the cooperative pool waits: the blocking parts run on the
/// server's own threads, and the grace period is a wait for the last run's end or the deadline.
struct RunDrainService: Service {
    let launcher: RunLauncher
    let threads: ServerThreads
    let grace: Double
    let logger: Logger

    func run() async throws {
        // Wait for the group's shutdown; a cancelled group drains too.
        try? await gracefulShutdown()
        let (n, paused) = (try? await threads.store.runIfActive { launcher.drainAll() }) ?? (0, 0)
        if paused > 0 { logger.info("left \(paused) run(s) paused for approval: the next server resumes them") }
        await launcher.idle(within: grace)
        let cut = launcher.activeCount
        if cut > 0 {
            _ = try? await threads.store.runIfActive { launcher.interruptAll(reason: .gracePeriodEnded(grace)) }
        }
        // Stopped process trees are owed their KILL: do not exit before it is sent.
        _ = try? await threads.store.runIfActive { ChildWatcher.shared.waitForOwedKills(timeout: ChildWatcher.killGrace + 5) }
        logger.info("runbook serve stopped", metadata: ["interrupted_runs": "\(n)", "cut_at_grace": "\(cut)"])
    }
}

/// With a database replicas share: every `every` seconds, claims runs whose owner stopped renewing
/// its lease and takes them over (`run.taken_over`), on the server's own threads. Stops when the
/// group shuts down.
struct TakeoverService: Service {
    let launcher: RunLauncher
    let runbooks: [Runbook]
    let threads: ServerThreads
    let every: Double
    let logger: Logger

    func run() async throws {
        let log: @Sendable (String) -> Void = { [logger] in logger.info("\($0)") }
        launcher.watchLostRuns(logger: log)
        while !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(Int64(every * 1000))) }
            } catch {
                return
            }
            _ = try? await threads.store.runIfActive { [launcher, runbooks] in launcher.takeOverExpiredRuns(runbooks: runbooks, logger: log) }
        }
    }
}

/// With a database replicas share: renews the leases of the runs this replica owns every
/// `LeaseTiming.renewEvery` seconds, and gives up in time those it could not renew
/// (`giveUpLapsedLeases`, four times a second, on a thread of its own so that a renewal waiting
/// for a database that went away never holds it up). Stops when the group shuts down; the runs'
/// drain goes on renewing through the store's own timers.
struct LeaseService: Service {
    let store: any ReplicatedRunDatabase
    let threads: ServerThreads
    let logger: Logger

    func run() async throws {
        let store = self.store
        store.renewsOnItsOwn = false
        let watch = Thread { [store] in
            while store.renewsOnItsOwn == false, !Thread.current.isCancelled {
                store.giveUpLapsedLeases()
                usleep(250_000)
            }
        }
        watch.name = "runbook.serve.lease-watch"
        watch.start()
        defer {
            watch.cancel()
            // The drain after this service stops still needs its leases renewed.
            store.renewsOnItsOwn = true
        }
        while !Task.isShuttingDownGracefully {
            _ = try? await threads.store.runIfActive { store.renewLeases() }
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(Int64(LeaseTiming.renewEvery * 1000))) }
            } catch {
                return
            }
        }
    }
}

extension RunLauncher {
    /// Returns once no run is active, or once `seconds` have passed, whichever comes first; no thread
    /// waits meanwhile.
    func idle(within seconds: Double) async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let once = ResumeOnce(c)
            whenIdle { once.resume() }
            DispatchQueue.global().asyncAfter(deadline: .now() + max(0, seconds)) { once.resume() }
        }
    }
}

/// Resumes a continuation the first time it is asked; later calls do nothing.
final class ResumeOnce: @unchecked Sendable {
    // Guarded by `lock`; nil once resumed.
    private let lock = NSLock()
    private var continuation: CheckedContinuation<Void, Never>?

    init(_ c: CheckedContinuation<Void, Never>) { continuation = c }

    func resume() {
        let c = lock.withLock { () -> CheckedContinuation<Void, Never>? in
            defer { continuation = nil }
            return continuation
        }
        c?.resume()
    }
}
