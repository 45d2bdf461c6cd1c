import NIOPosix

/// The server's own threads for blocking work (SQLite, the PostgreSQL bridge, a run queue's
/// `sync`), so that no thread of Swift's cooperative pool ever waits on them.
///
/// Alert intake has threads of its own (64 by default, bounded): a webhook's payload is read on one,
/// and the webhooks that arrive while an admission is in flight wait on theirs to be admitted
/// together in the next one (`AdmissionCombiner`). Each waits mostly for PostgreSQL, so the bound is
/// set by arrivals times latency: with 8, three replicas at 200 alerts/s (about 130 webhooks/s each)
/// fell behind for good once a webhook took 60 ms; a flood beyond the bound waits in line. Approvals,
/// reads, `/metrics` and shutdown have a pool of their own, so they are never queued behind an
/// alert flood.
public final class ServerThreads: Sendable {
    /// `POST /hooks/alertmanager` and `/hooks/run`.
    public let intake: NIOThreadPool
    /// Approvals, reads, `/metrics`, start-up and shutdown work.
    public let store: NIOThreadPool

    /// Starts both pools.
    /// - Parameters:
    ///   - intakeThreads: threads for webhooks (bounded: a flood of them waits in line).
    ///   - storeThreads: threads for approvals, reads and the rest (bounded: a read flood waits in line).
    public init(intakeThreads: Int = 64, storeThreads: Int = 4) {
        intake = NIOThreadPool(numberOfThreads: max(1, intakeThreads))
        store = NIOThreadPool(numberOfThreads: max(1, storeThreads))
        intake.start()
        store.start()
    }

    /// Runs blocking `work` (opening the store, resuming runs) on the store pool and returns its result.
    /// - Throws: what `work` throws, or NIO's error once the pool has stopped.
    public func blocking<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await store.runIfActive(work)
    }

    /// Stops both pools once their work is done.
    public func shutdown() async {
        try? await intake.shutdownGracefully()
        try? await store.shutdownGracefully()
    }
}
