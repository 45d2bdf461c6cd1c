import NIOCore
import NIOEmbedded
import Testing
@testable import RunbookServer

/// The connection gate lets go of connections without a token first, so they cannot keep
/// authenticated requests (alerts) out; the head handler tells it who authenticated.
struct ConnectionGateTests {
    func channel() -> EmbeddedChannel { EmbeddedChannel() }

    @Test func aFullServerClosesTheOldestUnauthenticatedConnectionNotAnAuthenticatedOne() {
        let gate = ConnectionGate(capacity: 3, unauthenticatedPerAddress: 10)
        let (alert, old, newer, fresh) = (channel(), channel(), channel(), channel())
        #expect(gate.opened(alert, address: "10.0.0.1").isEmpty)
        gate.authenticated(alert)
        #expect(gate.opened(old, address: "10.0.0.2").isEmpty)
        #expect(gate.opened(newer, address: "10.0.0.3").isEmpty)
        let closed = gate.opened(fresh, address: "10.0.0.4")
        #expect(closed.map(ObjectIdentifier.init) == [ObjectIdentifier(old)])
        #expect(gate.counts.open == 3 && gate.counts.unauthenticated == 2)
        #expect(gate.evictions == 1)
    }

    @Test func anAddressOverItsCapLosesItsOldestUnauthenticatedConnectionNeverTheNewOne() {
        let gate = ConnectionGate(capacity: 100, unauthenticatedPerAddress: 2)
        let c = (0..<5).map { _ in channel() }
        #expect(gate.opened(c[0], address: "127.0.0.1").isEmpty)
        #expect(gate.opened(c[1], address: "127.0.0.1").isEmpty)
        // c[1] authenticates: it no longer counts against the address.
        gate.authenticated(c[1])
        #expect(gate.opened(c[2], address: "127.0.0.1").isEmpty)
        #expect(gate.opened(c[3], address: "127.0.0.1").map(ObjectIdentifier.init) == [ObjectIdentifier(c[0])])
        // Another address is not touched.
        let other = channel()
        #expect(gate.opened(other, address: "10.9.9.9").isEmpty)
        #expect(gate.opened(c[4], address: "127.0.0.1").map(ObjectIdentifier.init) == [ObjectIdentifier(c[2])])
        #expect(gate.counts.open == 4 && gate.counts.unauthenticated == 3)
    }

    @Test func whenEveryConnectionHeldHasAuthenticatedNewOnesWaitUntilOneCloses() {
        let gate = ConnectionGate(capacity: 2, unauthenticatedPerAddress: 8)
        let (a, b) = (channel(), channel())
        _ = gate.opened(a, address: "10.0.0.1")
        #expect(gate.mayAccept())
        _ = gate.opened(b, address: "10.0.0.1")
        // Full, but b has not authenticated: it can be closed to make room.
        #expect(gate.mayAccept())
        gate.authenticated(a)
        gate.authenticated(b)
        #expect(!gate.mayAccept())
        gate.closed(a)
        #expect(gate.mayAccept())
    }

    @Test func closedAndAuthenticatedConnectionsAreNeverChosenAndTheQueuesStaySmall() {
        let gate = ConnectionGate(capacity: 10, unauthenticatedPerAddress: 10)
        // Many connections come and go (authenticated, or closed by their clients).
        for i in 0..<5_000 {
            let c = channel()
            _ = gate.opened(c, address: "127.0.0.1")
            if i % 2 == 0 { gate.authenticated(c) }
            gate.closed(c)
        }
        #expect(gate.counts.open == 0 && gate.counts.unauthenticated == 0)
        let (a, b) = (channel(), channel())
        _ = gate.opened(a, address: "127.0.0.1")
        gate.authenticated(a)
        let rest = (0..<10).map { _ in channel() }
        var closed: [ObjectIdentifier] = []
        for c in rest { closed += gate.opened(c, address: "127.0.0.1").map(ObjectIdentifier.init) }
        closed += gate.opened(b, address: "127.0.0.1").map(ObjectIdentifier.init)
        #expect(closed == [ObjectIdentifier(rest[0]), ObjectIdentifier(rest[1])])
        #expect(gate.queuedArrivals <= 2 * 10 + 64)
    }

    @Test(arguments: [
        ("POST / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer secret-token-0123456789\r\n\r\n", true),
        ("POST / HTTP/1.1\r\nhost: a\r\nauthorization: bearer secret-token-0123456789\r\n\r\n", true),
        ("POST / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer wrong-token-0123456789\r\n\r\n", false),
        ("POST / HTTP/1.1\r\nHost: a\r\nX-Authorization: Bearer secret-token-0123456789\r\n\r\n", false),
        ("GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n", false),
    ])
    func aHeadAuthenticatesOnlyWithAKnownBearerToken(head: String, known: Bool) {
        let admission = ConnectionAdmission(gate: ConnectionGate(capacity: 1, unauthenticatedPerAddress: 1),
                                            tokens: TokenSet(tokens: [APIToken(name: "am", role: .alerts, secret: "secret-token-0123456789")]))
        #expect(admission.authenticates(head: head) == known)
    }

    @Test func aConnectionWithoutATokenGetsTheShortHeadDeadlineAndAnAuthenticatedOneTheLongOne() throws {
        let gate = ConnectionGate(capacity: 10, unauthenticatedPerAddress: 10)
        let admission = ConnectionAdmission(gate: gate, tokens: TokenSet(tokens: [APIToken(name: "am", role: .alerts, secret: "secret-token-0123456789")]))
        func connected() throws -> (EmbeddedChannel, EmbeddedEventLoop) {
            let loop = EmbeddedEventLoop()
            let handler = RequestHeadDeadline(limit: .seconds(10), unauthenticatedLimit: .seconds(2), admission: admission)
            let c = EmbeddedChannel(handler: handler, loop: loop)
            _ = gate.opened(c, address: "127.0.0.1")
            c.closeFuture.whenComplete { _ in gate.closed(c) }
            try c.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
            return (c, loop)
        }
        let (stranger, loop1) = try connected()
        try stranger.writeInbound(ByteBuffer(string: "POST /hooks/alertmanager HTTP/1.1\r\nHost: a\r\n"))
        loop1.advanceTime(by: .milliseconds(2_100))
        #expect(!stranger.isActive)

        let (alerts, loop2) = try connected()
        try alerts.writeInbound(ByteBuffer(string: "GET /runs HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer secret-token-0123456789\r\n\r\n"))
        #expect(gate.counts.unauthenticated == 0)
        // Its next head may take the long deadline.
        try alerts.writeInbound(ByteBuffer(string: "GET /runs HTTP/1.1\r\n"))
        loop2.advanceTime(by: .seconds(9))
        #expect(alerts.isActive)
        loop2.advanceTime(by: .seconds(2))
        #expect(!alerts.isActive)
    }
}
