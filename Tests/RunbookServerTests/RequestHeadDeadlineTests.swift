import NIOCore
import NIOEmbedded
import Testing
@testable import RunbookServer

/// The request-head deadline cuts off slow heads, never a request in hand.
struct RequestHeadDeadlineTests {
    func connected() throws -> (EmbeddedChannel, EmbeddedEventLoop) {
        let loop = EmbeddedEventLoop()
        let channel = EmbeddedChannel(handler: RequestHeadDeadline(limit: .seconds(10)), loop: loop)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 9)).wait()
        return (channel, loop)
    }

    @Test func aRequestStillBeingHandledIsNotCutOff() throws {
        let (channel, loop) = try connected()
        let body = "{\"alerts\":[" + String(repeating: "{\"labels\":{}},", count: 200) + "{}]}"
        try channel.writeInbound(ByteBuffer(string: "POST /hooks/alertmanager HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n"))
        try channel.writeInbound(ByteBuffer(string: body))
        // The handler takes long; nothing more comes from the client.
        loop.advanceTime(by: .seconds(60))
        #expect(channel.isActive)
        _ = try? channel.finish()
    }

    @Test func aHeadThatNeverEndsIsCutOffAtTheDeadline() throws {
        let (channel, loop) = try connected()
        try channel.writeInbound(ByteBuffer(string: "POST /hooks/alertmanager HTTP/1.1\r\nHost: a\r\n"))
        loop.advanceTime(by: .seconds(9))
        #expect(channel.isActive)
        loop.advanceTime(by: .seconds(2))
        #expect(!channel.isActive)
    }

    @Test(arguments: [
        ("post / http/1.1\r\nhost: a\r\ncontent-length: 42\r\n\r\n", 42),
        ("post / http/1.1\nhost: a\ncontent-length:7\n\n", 7),
        ("get / http/1.1\r\nhost: a\r\n\r\n", nil),
    ] as [(String, Int?)])
    func readsTheContentLengthOfCRLFAndLFHeads(head: String, length: Int?) {
        #expect(RequestHeadDeadline.contentLength(head) == length)
    }
}
