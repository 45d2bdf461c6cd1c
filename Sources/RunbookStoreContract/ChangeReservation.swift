import Foundation

/// What `RunDatabase.reserveChange` did: the change has its place in the breaker's window, or the
/// window is full (`used` changes applied or reserved, at or over the cap).
public enum ChangeReservation: Sendable, Equatable {
    case reserved
    case full(used: Int)

    /// The decision both stores make once they hold the breaker's lock and counted the window.
    public static func decide(used: Int, cap: Int) -> ChangeReservation {
        used < cap ? .reserved : .full(used: used)
    }
}
