import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore

/// Closes a connection that does not deliver a complete request head (up to the blank line) within
/// `limit` of being accepted, or of the first byte of its next request; until a head on it carried
/// a known token (`admission`), within the shorter `unauthenticatedLimit`. A client that sends a
/// byte every few seconds (slowloris) no longer holds a connection for minutes; idle keep-alive
/// connections are left to the server's idle timeout (and, unauthenticated, to `ConnectionGate`).
///
/// It reads the raw bytes before the HTTP decoder and follows request boundaries through
/// `Content-Length`; a chunked request body stops the tracking for that connection (the idle
/// timeout still applies).
final class RequestHeadDeadline: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    enum State {
        /// Reading a head: the bytes so far (capped; the decoder enforces its own limits).
        case head([UInt8])
        /// Reading a body: bytes still to come.
        case body(Int)
        /// Boundaries unknown (chunked body): no deadline any more.
        case untracked
    }

    let limit: TimeAmount
    let unauthenticatedLimit: TimeAmount
    let admission: ConnectionAdmission?
    // Touched only on the channel's event loop.
    var state: State = .head([])
    var timer: Scheduled<Void>?
    /// A head on this connection carried a known token.
    var authenticated = false

    init(limit: TimeAmount, unauthenticatedLimit: TimeAmount? = nil, admission: ConnectionAdmission? = nil) {
        self.limit = limit
        self.unauthenticatedLimit = min(limit, unauthenticatedLimit ?? limit)
        self.admission = admission
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) { disarm() }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        disarm()
        context.fireChannelInactive()
    }

    func arm(_ context: ChannelHandlerContext) {
        guard timer == nil else { return }
        let channel = context.channel
        timer = context.eventLoop.scheduleTask(in: authenticated ? limit : unauthenticatedLimit) { channel.close(promise: nil) }
    }

    func disarm() {
        timer?.cancel()
        timer = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = unwrapInboundIn(data)
        var bytes = buffer.readableBytesView[...]
        while !bytes.isEmpty {
            switch state {
            case .untracked:
                bytes = bytes[bytes.endIndex...]
            case .body(let remaining):
                let n = min(remaining, bytes.count)
                bytes = bytes.dropFirst(n)
                state = remaining - n > 0 ? .body(remaining - n) : .head([])
            case .head(var head):
                arm(context)
                let start = head.count
                head.append(contentsOf: bytes.prefix(65536 - min(head.count, 65536)))
                if let end = Self.endOfHead(head, from: max(0, start - 3)) {
                    let consumed = end - start
                    bytes = bytes.dropFirst(consumed)
                    disarm()
                    let original = String(decoding: head[..<end], as: UTF8.self)
                    if !authenticated, let admission, admission.authenticates(head: original) {
                        authenticated = true
                        admission.gate.authenticated(context.channel)
                    }
                    let text = original.lowercased()
                    if text.contains("transfer-encoding:") {
                        state = .untracked
                    } else {
                        let length = Self.contentLength(text) ?? 0
                        state = length > 0 ? .body(length) : .head([])
                    }
                } else {
                    bytes = bytes[bytes.endIndex...]
                    state = .head(head)
                }
            }
        }
        context.fireChannelRead(data)
    }

    /// Index just past `\r\n\r\n` (or `\n\n`), searching from `from`.
    static func endOfHead(_ b: [UInt8], from: Int) -> Int? {
        var i = from
        while i < b.count {
            if b[i] == 10 {
                if i + 1 < b.count, b[i + 1] == 10 { return i + 2 }
                if i + 2 < b.count, b[i + 1] == 13, b[i + 2] == 10 { return i + 3 }
            }
            i += 1
        }
        return nil
    }

    /// The `Content-Length` of a request head. Lines are split on the bytes: in a Swift `String`,
    /// `\r\n` is one `Character`, so splitting on `"\n"` would find no line at all, the body would
    /// be read as the next head, and a request still being handled would be cut off at the deadline.
    static func contentLength(_ lowercasedHead: String) -> Int? {
        for line in lowercasedHead.utf8.split(separator: UInt8(ascii: "\n")) {
            let text = String(decoding: line, as: UTF8.self)
            guard text.hasPrefix("content-length:") else { continue }
            return Int(text.dropFirst("content-length:".count).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        return nil
    }
}

/// HTTP/1 with a request-head deadline in front of Hummingbird's own channel; each connection is
/// held by the `ConnectionGate`, which may close it to make room while it has not authenticated.
struct DeadlineHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value
    let inner: HTTP1Channel
    let headTimeout: TimeAmount
    let unauthenticatedHeadTimeout: TimeAmount
    let admission: ConnectionAdmission?

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let (limit, short, admission) = (headTimeout, unauthenticatedHeadTimeout, self.admission)
        if let gate = admission?.gate {
            let evicted = gate.opened(channel, address: channel.remoteAddress?.ipAddress ?? "?")
            channel.closeFuture.whenComplete { _ in gate.closed(channel) }
            for c in evicted { c.close(promise: nil) }
        }
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(RequestHeadDeadline(limit: limit, unauthenticatedLimit: short, admission: admission))
        }.flatMap { inner.setup(channel: channel, logger: logger) }
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1 with head deadlines (a shorter one until a connection authenticated), an idle
    /// timeout and, with `admission`, the connection gate.
    static func guardedHTTP1(headTimeout: Double, unauthenticatedHeadTimeout: Double, idleTimeout: Double,
                             admission: ConnectionAdmission?) -> HTTPServerBuilder {
        .init { responder in
            DeadlineHTTP1Channel(
                inner: HTTP1Channel(responder: responder, configuration: .init(idleTimeout: .milliseconds(Int64(idleTimeout * 1000)))),
                headTimeout: .milliseconds(Int64(headTimeout * 1000)),
                unauthenticatedHeadTimeout: .milliseconds(Int64(unauthenticatedHeadTimeout * 1000)),
                admission: admission)
        }
    }
}
