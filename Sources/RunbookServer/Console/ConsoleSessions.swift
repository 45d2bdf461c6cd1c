import Foundation

/// Signed-in browsers: a random session id (the cookie's value) to the token it signed in with. The
/// token itself never reaches the page; a session expires after `lifetime` and ends at sign-out.
/// Sessions live in this process: a restart, or another replica, asks for a sign-in again.
final class ConsoleSessions: @unchecked Sendable {
    // `sessions` is guarded by `lock`.
    private let lock = NSLock()
    private var sessions: [String: (token: APIToken, expires: Date)] = [:]
    /// Seconds a session lasts.
    let lifetime: Double

    /// The cookie's name.
    static let cookie = "runbook_session"

    init(lifetime: Double = 12 * 3600) { self.lifetime = lifetime }

    /// A new session for `token`: its id (256 random bits, hex).
    func open(_ token: APIToken, now: Date = Date()) -> String {
        var g = SystemRandomNumberGenerator()
        let id = (0..<4).map { _ in String(format: "%016llx", g.next() as UInt64) }.joined()
        lock.withLock {
            sessions = sessions.filter { $0.value.expires > now }
            sessions[id] = (token, now.addingTimeInterval(lifetime))
        }
        return id
    }

    /// The token a live session signed in with.
    func token(_ id: String, now: Date = Date()) -> APIToken? {
        lock.withLock {
            guard let s = sessions[id] else { return nil }
            guard s.expires > now else {
                sessions[id] = nil
                return nil
            }
            return s.token
        }
    }

    /// Ends a session.
    func close(_ id: String) { lock.withLock { _ = sessions.removeValue(forKey: id) } }
}
