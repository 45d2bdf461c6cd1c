import Foundation
import Hummingbird
import HTTPTypes

/// Who a request comes from and whether it may do what it asks: a bearer token, or the console's
/// session cookie. A state-changing request carried by a cookie (or sent to a `--no-auth` server)
/// must come from the server's own page: an `Origin` (or, without one, a `Referer`) naming another
/// site is refused with 403. Bearer requests need no `Origin` (a browser never adds the header).
struct Gatekeeper: Sendable {
    let tokens: TokenSet?
    let sessions: ConsoleSessions
    static let anonymous = APIToken(name: "anonymous", role: .admin, secret: "")

    /// The caller, or the answer refusing it: 401 without a known token or session, 403 when its role
    /// lacks `permission` or a state-changing request comes from another site.
    func caller(_ request: Request, _ permission: Permission) -> Result<APIToken, HTTPRefusal> {
        let changes = request.method != .get && request.method != .head
        guard let tokens else {
            if changes, !Self.sameOrigin(request) { return .failure(Self.foreign) }
            return .success(Self.anonymous)
        }
        let token: APIToken
        if request.headers[.authorization] != nil {
            guard let t = tokens.caller(authorization: request.headers[.authorization]) else {
                return .failure(HTTPRefusal(answer: RunAPI.error(401, "missing or wrong bearer token")))
            }
            token = t
        } else if let id = Self.sessionID(request), let t = sessions.token(id) {
            if changes, !Self.sameOrigin(request) { return .failure(Self.foreign) }
            token = t
        } else {
            return .failure(HTTPRefusal(answer: RunAPI.error(401, "missing or wrong bearer token (or sign in at /ui/login)")))
        }
        guard permission.granted(to: token.role) else {
            return .failure(HTTPRefusal(answer: RunAPI.error(403, "token '\(token.name)' (role \(token.role.rawValue)) may not do this")))
        }
        return .success(token)
    }

    static let foreign = HTTPRefusal(answer: RunAPI.error(403, "request from another site (Origin does not match this server): refused"))

    /// The session cookie's value, if the request has one.
    static func sessionID(_ request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for part in header.split(separator: ";") {
                let kv = part.trimmingCharacters(in: .whitespaces)
                if kv.hasPrefix(ConsoleSessions.cookie + "=") { return String(kv.dropFirst(ConsoleSessions.cookie.count + 1)) }
            }
        }
        return nil
    }

    /// Whether the request's `Origin` (else `Referer`) names this server (its `Host`); a request with
    /// neither is taken as same-site (a browser sends `Origin` with every POST).
    static func sameOrigin(_ request: Request) -> Bool {
        let host = (request.head.authority ?? "").lowercased()
        let given = request.headers[.origin] ?? request.headers[.referer]
        guard let given else { return true }
        guard given != "null", let url = URL(string: given), let h = url.host?.lowercased() else { return false }
        let authority = url.port.map { "\(h):\($0)" } ?? h
        let bracketed = h.contains(":") ? "[\(h)]" + (url.port.map { ":\($0)" } ?? "") : authority
        return !host.isEmpty && (host == authority || host == bracketed)
    }

    /// Whether the request reached us over TLS (a proxy in front says so with `X-Forwarded-Proto`).
    static func overTLS(_ request: Request) -> Bool {
        request.head.scheme == "https" || request.headers[HTTPField.Name("X-Forwarded-Proto")!]?.lowercased() == "https"
    }
}
