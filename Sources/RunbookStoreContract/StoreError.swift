import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The store could not be read or written: which path, what was being done, and the OS's reason,
/// in one line a responder can act on (`cannot write /var/lib/runbook/runbook.sqlite: No space
/// left on device (errno 28)`).
public struct StoreError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var operation: String
    /// The OS error number, when there is one.
    public var code: Int32?
    public var reason: String

    public init(path: String, operation: String, errno code: Int32) {
        self.path = path
        self.operation = operation
        self.code = code
        self.reason = String(cString: strerror(code))
    }

    public init(path: String, operation: String, code: Int32?, reason: String) {
        self.path = path
        self.operation = operation
        self.code = code
        self.reason = reason
    }

    /// Wraps whatever a store or Foundation threw: a store's own error (`StoreErrorConvertible`,
    /// like SQLite's) says what it means, a POSIX error names its errno.
    public init(path: String, _ error: any Error) {
        if let e = error as? StoreError {
            self = e
            return
        }
        if let c = error as? any StoreErrorConvertible {
            self = c.storeError(path: path)
            return
        }
        self.path = path
        self.operation = "write"
        if let ns = error as NSError?, let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            code = Int32(underlying.code)
            reason = String(cString: strerror(Int32(underlying.code)))
        } else {
            code = nil
            reason = "\(error)"
        }
    }

    public var description: String {
        "cannot \(operation) \(path): \(reason)\(code.map { " (errno \($0))" } ?? "")"
    }

    /// Creates a folder and its parents (like `mkdir -p`), naming the errno when it cannot.
    public static func makeFolder(_ path: String) throws {
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDir) {
            guard isDir.boolValue else { throw StoreError(path: path, operation: "use", errno: ENOTDIR) }
            return
        }
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed = trimmed.dropLast() }
        if let slash = trimmed.lastIndex(of: "/"), slash != trimmed.startIndex {
            try makeFolder(String(trimmed[..<slash]))
        }
        if mkdir(path, 0o755) != 0, errno != EEXIST { throw StoreError(path: path, operation: "create", errno: errno) }
    }
}

/// An error of a store's driver that knows which `StoreError` it is (SQLite's result codes).
public protocol StoreErrorConvertible: Error {
    /// This error, as a `StoreError` about `path`.
    func storeError(path: String) -> StoreError
}

/// A run id given on the command line that names no run, or more than one.
public struct RunIDError: Error, CustomStringConvertible, Sendable {
    public var given: String
    public var matches: [String]
    public var directory: String

    public init(given: String, matches: [String], directory: String) {
        self.given = given
        self.matches = matches
        self.directory = directory
    }

    public var description: String {
        if matches.isEmpty {
            return given == "last" ? "no runs yet in \(directory)" : "no run '\(given)' in \(directory): see runbook history"
        }
        return "run id '\(given)' is ambiguous: it matches \(matches.prefix(10).joined(separator: ", "))\(matches.count > 10 ? ", ..." : ""); give more of it"
    }

    /// The one run `given` names among `ids` (whole, or a prefix of an id or of its final hex part).
    /// - Throws: `RunIDError` when none or several match.
    public static func uniqueRun(_ given: String, text: String, among ids: [String], location: String) throws -> String {
        if ids.contains(given) { return given }
        let unique = Array(Set(ids.filter { id in id.hasPrefix(given) || (id.split(separator: "-").last.map { $0.hasPrefix(given) } ?? false) })).sorted()
        guard unique.count == 1 else { throw RunIDError(given: text, matches: unique, directory: location) }
        return unique[0]
    }
}
