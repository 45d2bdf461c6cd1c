import Foundation
import NIOPosix

/// Whether a store on the network answers now, as its own health probe last found: a server asks
/// it before taking a request that needs the store, and a call made in `failingFast` gives up as
/// soon as the probe finds the store gone, so a caller is told "send again" within about a second
/// instead of waiting out the query timeout (or being answered after the database came back).
public final class StoreReachability: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var current = State()

    struct State {
        var unreachable: (since: Date, why: String)?
        var lastProbe: Date?
    }

    public init() {}

    private func withState<T>(_ body: (inout State) -> T) -> T { lock.withLock { body(&current) } }

    /// Why the store is unreachable, or nil while it answers.
    public var unreachableReason: String? { withState { $0.unreachable?.why } }

    /// Since when it has been unreachable.
    public var unreachableSince: Date? { withState { $0.unreachable?.since } }

    /// The probe got an answer.
    public func markReachable(at now: Date = Date()) {
        withState {
            $0.unreachable = nil
            $0.lastProbe = now
        }
    }

    /// The probe got no answer, or an error, for `why`.
    public func markUnreachable(_ why: String, at now: Date = Date()) {
        withState {
            $0.unreachable = ($0.unreachable?.since ?? now, why)
            $0.lastProbe = now
        }
    }

    // MARK: Fail-fast scope

    private final class Flag: Sendable {}
    private static let failFast = ThreadSpecificVariable<Flag>()

    /// Runs `body` (blocking, on this thread) so that the store calls it makes fail with
    /// `StoreUnreachableError` at once when the store is known unreachable, and give up waiting as
    /// soon as the probe finds it gone. For calls that answer a client who can send again (webhooks,
    /// reads); a run's own writes wait out the query timeout as before.
    public static func failingFast<T>(_ body: () throws -> T) rethrows -> T {
        let outer = failFast.currentValue
        failFast.currentValue = Flag()
        defer { failFast.currentValue = outer }
        return try body()
    }

    /// True inside `failingFast` on this thread.
    public static var failsFast: Bool { failFast.currentValue != nil }
}

/// A store whose reachability a probe watches (PostgreSQL). SQLite is a local file: it has none.
public protocol ReachabilityMonitored: RunDatabase {
    /// What the probe last found.
    var reachability: StoreReachability { get }
    /// Starts the probe (a connection of its own, a trivial query every half second); idempotent.
    func startMonitoring()
}

/// A store call refused or abandoned because the store is unreachable: nothing was written.
public struct StoreUnreachableError: Error, CustomStringConvertible, Sendable {
    public var location: String
    public var reason: String
    public init(location: String, reason: String) {
        self.location = location
        self.reason = reason
    }
    public var description: String { "the database \(location) is unreachable (\(reason)); nothing was recorded" }
}
