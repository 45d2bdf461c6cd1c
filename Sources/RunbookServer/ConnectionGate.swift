import Foundation
import HummingbirdCore
import NIOCore

/// Which connections the server holds, and which it lets go when it is full, so that callers
/// without a token cannot keep alerts out.
///
/// A connection is unauthenticated until a complete request head on it carries a known token.
/// - Per address, at most `unauthenticatedPerAddress` unauthenticated connections are held; a new
///   one beyond that closes the address's oldest unauthenticated connection (not the new one: on a
///   shared address, such as loopback or a proxy, the newest may be a real alert about to send its
///   head).
/// - In all, at most `capacity` connections; a new one beyond that closes the oldest unauthenticated
///   connection anywhere. Only when every connection held has authenticated does the server stop
///   accepting (new connections wait in the listen backlog).
///
/// Thread-safe: connections open and close on every event loop.
final class ConnectionGate: @unchecked Sendable {
    let capacity: Int
    let unauthenticatedPerAddress: Int

    struct Entry {
        let serial: UInt64
        let address: String
        var authenticated: Bool
        let channel: any Channel
    }

    // All guarded by `lock`.
    private let lock = NSLock()
    private var entries: [ObjectIdentifier: Entry] = [:]
    /// Unauthenticated connections in arrival order, overall and by address; entries that have
    /// authenticated or closed since are skipped when met (and swept out now and then).
    private var arrivals = CircularBuffer<(ObjectIdentifier, UInt64)>()
    private var arrivalsByAddress: [String: CircularBuffer<(ObjectIdentifier, UInt64)>] = [:]
    private var unauthenticatedByAddress: [String: Int] = [:]
    private var unauthenticated = 0
    private var nextSerial: UInt64 = 0
    /// Connections closed to make room, since start.
    private(set) var evictions = 0

    init(capacity: Int, unauthenticatedPerAddress: Int) {
        self.capacity = max(1, capacity)
        self.unauthenticatedPerAddress = max(1, unauthenticatedPerAddress)
    }

    /// Connections held, and how many of them have not authenticated.
    var counts: (open: Int, unauthenticated: Int) { lock.withLock { (entries.count, unauthenticated) } }

    /// A new connection from `address`: held as unauthenticated. Returns the connections to close to
    /// make room for it (the caller closes them, outside the lock).
    func opened(_ channel: any Channel, address: String) -> [any Channel] {
        lock.withLock {
            let id = ObjectIdentifier(channel)
            nextSerial += 1
            entries[id] = Entry(serial: nextSerial, address: address, authenticated: false, channel: channel)
            arrivals.append((id, nextSerial))
            arrivalsByAddress[address, default: CircularBuffer()].append((id, nextSerial))
            unauthenticatedByAddress[address, default: 0] += 1
            unauthenticated += 1
            var out: [any Channel] = []
            while unauthenticatedByAddress[address, default: 0] > unauthenticatedPerAddress,
                  let victim = oldestUnauthenticated(from: address, sparing: id) {
                out.append(evict(victim))
            }
            while entries.count > capacity, let victim = oldestUnauthenticated(from: nil, sparing: id) {
                out.append(evict(victim))
            }
            sweepIfStale()
            return out
        }
    }

    /// The connection sent a request with a known token: it no longer counts against its address
    /// and is never closed to make room.
    func authenticated(_ channel: any Channel) {
        lock.withLock {
            let id = ObjectIdentifier(channel)
            guard var e = entries[id], !e.authenticated else { return }
            e.authenticated = true
            entries[id] = e
            dropUnauthenticated(e.address)
        }
    }

    /// The connection closed.
    func closed(_ channel: any Channel) {
        lock.withLock {
            guard let e = entries.removeValue(forKey: ObjectIdentifier(channel)) else { return }
            if !e.authenticated { dropUnauthenticated(e.address) }
        }
    }

    /// The process's soft descriptor limit (the child watcher raised it to the hard one).
    static func descriptorLimit() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1024 }
        return Int(min(limit.rlim_cur, 1 << 20))
    }

    /// Entries in the arrival queue (live or stale), for tests.
    var queuedArrivals: Int { lock.withLock { arrivals.count } }

    /// Whether to accept another connection now: there is room, or an unauthenticated one to close.
    func mayAccept() -> Bool { lock.withLock { entries.count < capacity || unauthenticated > 0 } }

    // MARK: Under the lock

    private func dropUnauthenticated(_ address: String) {
        unauthenticated -= 1
        let left = unauthenticatedByAddress[address, default: 1] - 1
        unauthenticatedByAddress[address] = left > 0 ? left : nil
        if left <= 0 { arrivalsByAddress[address] = nil }
    }

    private func isUnauthenticated(_ item: (ObjectIdentifier, UInt64)) -> Bool {
        guard let e = entries[item.0] else { return false }
        return e.serial == item.1 && !e.authenticated
    }

    /// The oldest unauthenticated connection of `address` (or anywhere), unless that is `spared`:
    /// the connection just opened, always the last in both queues.
    private func oldestUnauthenticated(from address: String?, sparing spared: ObjectIdentifier) -> ObjectIdentifier? {
        func front(_ queue: inout CircularBuffer<(ObjectIdentifier, UInt64)>) -> ObjectIdentifier? {
            while let first = queue.first, !isUnauthenticated(first) { queue.removeFirst() }
            guard let first = queue.first, first.0 != spared else { return nil }
            return first.0
        }
        guard let address else { return front(&arrivals) }
        guard var queue = arrivalsByAddress[address] else { return nil }
        defer { arrivalsByAddress[address] = queue.isEmpty ? nil : queue }
        return front(&queue)
    }

    private func evict(_ id: ObjectIdentifier) -> any Channel {
        let e = entries.removeValue(forKey: id)!
        dropUnauthenticated(e.address)
        evictions += 1
        return e.channel
    }

    /// Drops queue entries of connections that authenticated or closed, once they outnumber the
    /// live ones, so the queues stay as small as the unauthenticated connections held.
    private func sweepIfStale() {
        guard arrivals.count > 2 * unauthenticated + 64 else { return }
        arrivals = CircularBuffer(arrivals.filter(isUnauthenticated))
        for (address, queue) in arrivalsByAddress {
            let live = queue.filter(isUnauthenticated)
            arrivalsByAddress[address] = live.isEmpty ? nil : CircularBuffer(live)
        }
    }

    /// Hummingbird's accept switch: accept while `mayAccept`.
    struct Availability: AvailableConnectionsDelegate {
        let gate: ConnectionGate
        mutating func connectionOpened() {}
        mutating func connectionClosed() {}
        func isAcceptingNewConnections() -> Bool { gate.mayAccept() }
    }
}

/// What the request-head handler needs to sort connections: the gate and the server's tokens.
struct ConnectionAdmission: Sendable {
    let gate: ConnectionGate
    /// nil: `--no-auth` (every complete head counts as authenticated).
    let tokens: TokenSet?

    /// Whether a complete request head carries a known token (`Authorization: Bearer ...`).
    func authenticates(head: String) -> Bool {
        guard let tokens else { return true }
        for line in head.utf8.split(separator: UInt8(ascii: "\n")) {
            let text = String(decoding: line, as: UTF8.self)
            guard let colon = text.firstIndex(of: ":"), text[..<colon].lowercased() == "authorization" else { continue }
            let value = text[text.index(after: colon)...].trimmingCharacters(in: .whitespacesAndNewlines)
            return tokens.caller(authorization: value) != nil
        }
        return false
    }
}
