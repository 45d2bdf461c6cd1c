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

    /// Reads a token file.
    /// - Throws: `TokenFileError` for an unreadable or empty file, an unknown role, or two entries with one secret.
    public static func load(path: String) throws -> TokenSet {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TokenFileError(path: path, line: 0, message: "cannot read the token file: \(String(cString: strerror(errno)))")
        }
        return try parse(String(decoding: data, as: UTF8.self), path: path)
    }

    public static func parse(_ text: String, path: String) throws -> TokenSet {
        var tokens: [APIToken] = []
        var lineNumber = 0
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = raw.trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: "\r")))
            if line.isEmpty || line.hasPrefix("#") { continue }
            let parts = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false).map(String.init)
            let token: APIToken
            if parts.count == 3, let role = Role(rawValue: parts[1]) {
                guard !parts[0].isEmpty else { throw TokenFileError(path: path, line: lineNumber, message: "a token needs a name: NAME:ROLE:TOKEN") }
                token = APIToken(name: parts[0], role: role, secret: parts[2])
            } else if parts.count == 3, !parts[0].isEmpty, parts[1].allSatisfy({ $0.isLetter }), !parts[1].isEmpty {
                throw TokenFileError(path: path, line: lineNumber, message: "unknown role '\(parts[1])': use one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
            } else {
                token = APIToken(name: "default", role: .admin, secret: line)
            }
            guard !token.secret.isEmpty else { throw TokenFileError(path: path, line: lineNumber, message: "empty token") }
            if tokens.contains(where: { $0.secret == token.secret }) {
                throw TokenFileError(path: path, line: lineNumber, message: "the same token appears twice; give each caller its own")
            }
            tokens.append(token)
        }
        guard !tokens.isEmpty else { throw TokenFileError(path: path, line: 0, message: "no token in the file") }
        return TokenSet(tokens: tokens)
    }

    /// The token a request's `Authorization` header carries, if it is one of ours. Every known token
    /// is compared in full, in time that depends only on the lengths, so timing tells nothing.
    public func caller(authorization header: String?) -> APIToken? {
        let given = Array((header ?? "").utf8)
        let prefix = Array("Bearer ".utf8)
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
