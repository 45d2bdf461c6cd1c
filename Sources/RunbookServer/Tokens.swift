import Foundation

/// What a token may do on the alert server (SPEC §6.7).
public enum Role: String, Sendable, CaseIterable, Comparable {
    /// `POST /hooks/alertmanager` only: what Alertmanager holds.
    case alerts
    /// Every `GET`.
    case reader
    /// A reader that may also start runs (`POST /hooks/run`) and answer approvals.
    case `operator`
    /// Everything.
    case admin

    var rank: Int { Role.allCases.firstIndex(of: self)! }
    public static func < (a: Role, b: Role) -> Bool { a.rank < b.rank }
}

/// A request's permission, checked against the caller's role.
public enum Permission: Sendable {
    case postAlerts, read, startRuns, approve

    /// Whether `role` grants this.
    public func granted(to role: Role) -> Bool {
        switch self {
        case .postAlerts: role == .alerts || role == .admin
        case .read: role >= .reader
        case .startRuns, .approve: role >= .operator
        }
    }
}

/// One caller the server knows: its name (recorded as `by`), role and secret.
public struct APIToken: Sendable {
    public var name: String
    public var role: Role
    let secret: [UInt8]

    public init(name: String, role: Role, secret: String) {
        self.name = name
        self.role = role
        self.secret = Array(secret.utf8)
    }
}

/// A token file that cannot be used, with the line that is wrong.
public struct TokenFileError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var line: Int
    public var message: String
    public var description: String { "\(path)\(line > 0 ? ":\(line)" : ""): \(message)" }
}

/// The server's tokens, from a token file: one entry a line, `#` comments, `TOKEN` alone (name
/// `default`, role `admin`) or `NAME:ROLE:TOKEN`.
public struct TokenSet: Sendable {
    public private(set) var tokens: [APIToken]

    public init(tokens: [APIToken]) { self.tokens = tokens }

    /// Tokens shorter than this are refused: a short secret can be guessed.
    public static let minimumTokenLength = 16

    /// Reads a token file.
    /// - Throws: `TokenFileError` for an unreadable, empty or unprotected file (readable or writable by
    ///   group or others, as ssh refuses an unprotected key), a malformed line, an unknown role, a short
    ///   token, or two entries with one secret.
    public static func load(path: String) throws -> TokenSet {
        let attributes: [FileAttributeKey: Any]
        do { attributes = try FileManager.default.attributesOfItem(atPath: path) } catch {
            throw TokenFileError(path: path, line: 0, message: "cannot read the token file: \(String(cString: strerror(errno)))")
        }
        let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue ?? 0o777
        if mode & 0o077 != 0 {
            throw TokenFileError(path: path, line: 0, message: "the token file is open to others (mode \(String(mode, radix: 8))): anyone on this machine could read the tokens; make it private with: chmod 600 \(path)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TokenFileError(path: path, line: 0, message: "cannot read the token file: \(String(cString: strerror(errno)))")
        }
        return try parse(String(decoding: data, as: UTF8.self), path: path)
    }

    /// Parses a token file's text: each line `TOKEN` alone (no colon: name `default`, role `admin`) or
    /// exactly `NAME:ROLE:TOKEN` with a known role; every token at least 16 characters, without spaces.
    public static func parse(_ text: String, path: String) throws -> TokenSet {
        var tokens: [APIToken] = []
        var lineNumber = 0
        let roles = Role.allCases.map(\.rawValue).joined(separator: ", ")
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = raw.trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: "\r")))
            if line.isEmpty || line.hasPrefix("#") { continue }
            func fail(_ message: String) -> TokenFileError { TokenFileError(path: path, line: lineNumber, message: message) }
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            let token: APIToken
            switch parts.count {
            case 1:
                token = APIToken(name: "default", role: .admin, secret: line)
            case 3:
                guard !parts[0].isEmpty, !parts[0].contains(where: \.isWhitespace) else {
                    throw fail("a token needs a name without spaces: NAME:ROLE:TOKEN")
                }
                guard let role = Role(rawValue: parts[1]) else {
                    throw fail("unknown role '\(parts[1])': use one of \(roles) (NAME:ROLE:TOKEN)")
                }
                token = APIToken(name: parts[0], role: role, secret: parts[2])
            default:
                throw fail("a line is either a TOKEN alone (no colon) or NAME:ROLE:TOKEN with a role of \(roles); this one has one colon")
            }
            let secret = String(decoding: token.secret, as: UTF8.self)
            if secret.contains(where: \.isWhitespace) { throw fail("a token has no spaces (NAME:ROLE:TOKEN, or TOKEN alone)") }
            if secret.count < minimumTokenLength {
                throw fail("token of \(secret.count) characters: use at least \(minimumTokenLength) (openssl rand -hex 24 makes one)")
            }
            if tokens.contains(where: { $0.secret == token.secret }) {
                throw fail("the same token appears twice; give each caller its own")
            }
            tokens.append(token)
        }
        guard !tokens.isEmpty else { throw TokenFileError(path: path, line: 0, message: "no token in the file") }
        return TokenSet(tokens: tokens)
    }

    /// The token a request's `Authorization` header carries, if it is one of ours. Every known token
    /// is compared in full, in time that depends only on the lengths, so timing tells nothing.
    /// The scheme is matched without regard to case (`bearer`, `BEARER`), as HTTP says.
    public func caller(authorization header: String?) -> APIToken? {
        var given = Array((header ?? "").utf8)
        let prefix = Array("Bearer ".utf8)
        if given.count >= prefix.count, String(decoding: given[0..<prefix.count], as: UTF8.self).lowercased() == "bearer " {
            given.replaceSubrange(0..<prefix.count, with: prefix)
        }
        var found: APIToken?
        for t in tokens {
            let expected = prefix + t.secret
            var diff = UInt8(given.count == expected.count ? 0 : 1)
            for i in 0..<expected.count { diff |= expected[i] ^ (i < given.count ? given[i] : 0) }
            if diff == 0 { found = t }
        }
        return found
    }
}
