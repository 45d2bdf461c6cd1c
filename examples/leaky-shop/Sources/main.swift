// leaky-shop: a small e-commerce HTTP service that leaks memory on its product-image path while the
// `image-resize` flag is on, like the image-resizing library of the reference incident.
//
// Usage: leaky-shop [--port 8080] [--flags FILE] [--pidfile FILE]
// Endpoints: /products, /products/ID/image, /cart (GET, POST), /health, /health/db, /metrics.
// The flag is read from the flagd file at start (a restart picks up a change). /health/db fails
// while a file named `db-down` exists beside the flag file.
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

struct Options {
    var port = 8080
    var flags = ".run/flags.json"
    var pidfile: String?

    init(_ args: [String]) {
        var i = 1
        while i < args.count {
            let value = i + 1 < args.count ? args[i + 1] : ""
            switch args[i] {
            case "--port": port = Int(value) ?? port; i += 1
            case "--flags": flags = value; i += 1
            case "--pidfile": pidfile = value; i += 1
            default: break
            }
            i += 1
        }
    }
}

/// Reads `flags.KEY` from a flagd file: the default variant's value, or false when DISABLED.
func flagEnabled(_ key: String, file: String) -> Bool {
    guard let data = FileManager.default.contents(atPath: file),
          let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
          let flag = (root["flags"] as? [String: Any])?[key] as? [String: Any] else { return false }
    if flag["state"] as? String == "DISABLED" { return false }
    guard let variant = flag["defaultVariant"] as? String, let variants = flag["variants"] as? [String: Any] else { return false }
    return (variants[variant] as? Bool) ?? false
}

/// Resident memory from /proc, as Prometheus' process collector reports it.
func residentBytes() -> Double {
    guard let s = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = s.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
          let kb = line.split(separator: " ").compactMap({ Double($0) }).first else { return 0 }
    return kb * 1024
}

/// The shop's state; one lock, tiny critical sections.
final class Shop: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var leaked: [[UInt8]] = []
    private var cart: [String] = []
    private var requests = 0
    private var errors = 0
    let imageResize: Bool
    let dbDownMarker: String

    init(imageResize: Bool, dbDownMarker: String) {
        self.imageResize = imageResize
        self.dbDownMarker = dbDownMarker
    }

    /// The leak: the "resizer" keeps a 256 KiB buffer per image it touches, and never frees it.
    func resizeImage(_ id: String) -> String {
        lock.withLock {
            requests += 1
            if imageResize {
                var buffer = [UInt8](repeating: 0, count: 256 * 1024)
                for i in stride(from: 0, to: buffer.count, by: 4096) { buffer[i] = UInt8(truncatingIfNeeded: i / 4096 + requests) }
                leaked.append(buffer)
            }
        }
        return "{\"product\":\"\(id)\",\"image\":\"\(imageResize ? "resized" : "original")\"}"
    }

    func addToCart(_ item: String) -> Int { lock.withLock { cart.append(item); return cart.count } }
    func cartJSON() -> String { lock.withLock { "{\"items\":[" + cart.map { "\"\($0)\"" }.joined(separator: ",") + "]}" } }
    var requestCount: Int { lock.withLock { requests } }
    /// Responses with a 5xx status, for the runbook's abort_if alarm.
    var errorCount: Int { lock.withLock { errors } }
    func countError() { lock.withLock { errors += 1 } }
    var dbUp: Bool { !FileManager.default.fileExists(atPath: dbDownMarker) }
}

final class Handler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let shop: Shop
    var head: HTTPRequestHead?

    init(shop: Shop) { self.shop = shop }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let h): head = h
        case .body: break
        case .end:
            guard let h = head else { return }
            let (status, type, body) = route(h)
            if status.code >= 500 { shop.countError() }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: type)
            headers.add(name: "Content-Length", value: "\(body.utf8.count)")
            headers.add(name: "Connection", value: h.isKeepAlive ? "keep-alive" : "close")
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: h.version, status: status, headers: headers))), promise: nil)
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: body)))), promise: nil)
            let keepAlive = h.isKeepAlive
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in if !keepAlive { context.close(promise: nil) } }
        }
    }

    func route(_ h: HTTPRequestHead) -> (HTTPResponseStatus, String, String) {
        let path = h.uri.split(separator: "?").first.map(String.init) ?? h.uri
        let parts = path.split(separator: "/").map(String.init)
        if h.method == .GET, parts.count == 3, parts[0] == "products", parts[2] == "image" {
            return (.ok, "application/json", shop.resizeImage(parts[1]))
        }
        switch (h.method, parts) {
        case (.GET, ["health"]): return (.ok, "text/plain", "ok\n")
        case (.GET, ["health", "db"]):
            return shop.dbUp ? (.ok, "application/json", "{\"db\":{\"up\":true}}") : (.serviceUnavailable, "application/json", "{\"db\":{\"up\":false}}")
        case (.GET, ["products"]):
            return (.ok, "application/json", "[{\"id\":\"mug\",\"price\":12},{\"id\":\"tee\",\"price\":20},{\"id\":\"cap\",\"price\":15}]")
        case (.GET, ["cart"]): return (.ok, "application/json", shop.cartJSON())
        case (.POST, ["cart"]): return (.created, "application/json", "{\"count\":\(shop.addToCart("item"))}")
        case (.GET, ["metrics"]):
            let text = """
            # HELP process_resident_memory_bytes Resident memory size in bytes.
            # TYPE process_resident_memory_bytes gauge
            process_resident_memory_bytes \(residentBytes())
            # HELP shop_image_requests_total Product image requests served.
            # TYPE shop_image_requests_total counter
            shop_image_requests_total \(shop.requestCount)
            # HELP shop_http_errors_total Responses with a 5xx status.
            # TYPE shop_http_errors_total counter
            shop_http_errors_total \(shop.errorCount)
            # HELP shop_image_resize_enabled Whether the image-resize flag was on at start.
            # TYPE shop_image_resize_enabled gauge
            shop_image_resize_enabled \(shop.imageResize ? 1 : 0)

            """
            return (.ok, "text/plain; version=0.0.4", text)
        default: return (.notFound, "text/plain", "not found\n")
        }
    }
}

let options = Options(CommandLine.arguments)
let flagsDir = (options.flags as NSString).deletingLastPathComponent
let shop = Shop(imageResize: flagEnabled("image-resize", file: options.flags),
                dbDownMarker: (flagsDir.isEmpty ? "." : flagsDir) + "/db-down")
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
let bootstrap = ServerBootstrap(group: group)
    .serverChannelOption(ChannelOptions.backlog, value: 256)
    .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
    .childChannelInitializer { channel in
        channel.pipeline.configureHTTPServerPipeline().flatMap { channel.pipeline.addHandler(Handler(shop: shop)) }
    }
do {
    let channel = try bootstrap.bind(host: "127.0.0.1", port: options.port).wait()
    if let pidfile = options.pidfile { try "\(getpid())\n".write(toFile: pidfile, atomically: true, encoding: .utf8) }
    FileHandle.standardOutput.write(Data("leaky-shop on http://127.0.0.1:\(options.port) (pid \(getpid()), image-resize \(shop.imageResize ? "on" : "off"))\n".utf8))

    try channel.closeFuture.wait()
} catch {
    FileHandle.standardError.write(Data("leaky-shop: \(error)\n".utf8))
    exit(1)
}
