import Foundation
import GRDB

#if canImport(Glibc)
import Glibc
#endif

/// The state folder could not be read or written: which path, what was being done, and the OS's
/// reason, in one line a responder can act on (`cannot write /var/lib/runbook/runbook.sqlite: No
/// space left on device (errno 28)`).
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

    /// Wraps whatever SQLite or Foundation threw, naming the errno where SQLite's code implies one.
    public init(path: String, _ error: any Error) {
        if let e = error as? StoreError {
            self = e
            return
        }
        self.path = path
        self.operation = "write"
        if let db = error as? DatabaseError {
            switch db.resultCode {
            case .SQLITE_FULL: code = ENOSPC
            case .SQLITE_READONLY: code = EROFS
            case .SQLITE_PERM, .SQLITE_AUTH: code = EACCES
            case .SQLITE_CANTOPEN:
                let folder = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
                code = access(folder.isEmpty ? "/" : folder, W_OK) == 0 ? nil : errno
                operation = "open"
            case .SQLITE_IOERR:
                // SQLite says "disk I/O error" for a full disk too; ask the file system.
                let folder = path.lastIndex(of: "/").map { String(path[..<$0]) } ?? "."
                var fs = statvfs()
                code = statvfs(folder.isEmpty ? "/" : folder, &fs) == 0 && fs.f_bavail < 16 ? ENOSPC : EIO
            case .SQLITE_BUSY, .SQLITE_LOCKED: code = nil; operation = "lock"
            default: code = nil
            }
            reason = code.map { String(cString: strerror($0)) } ?? (db.message ?? "\(db.resultCode)")
            if db.resultCode == .SQLITE_READONLY { reason = "the database or its folder is read-only" }
        } else if let ns = error as NSError?, let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            code = Int32(underlying.code)
            reason = String(cString: strerror(code!))
        } else {
            code = nil
            reason = "\(error)"
        }
    }

    public var description: String {
        "cannot \(operation) \(path): \(reason)\(code.map { " (errno \($0))" } ?? "")"
    }

    /// Creates a folder and its parents (like `mkdir -p`), naming the errno when it cannot.
    static func makeFolder(_ path: String) throws {
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
}
