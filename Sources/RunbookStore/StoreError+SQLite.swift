import Foundation
import GRDB
import RunbookStoreContract

#if canImport(Glibc)
import Glibc
#endif

/// SQLite's result codes, as the errno a responder can act on.
extension DatabaseError: StoreErrorConvertible {
    public func storeError(path: String) -> StoreError {
        var operation = "write"
        let code: Int32?
        switch resultCode {
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
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            code = nil
            operation = "lock"
        default: code = nil
        }
        var reason = code.map { String(cString: strerror($0)) } ?? (message ?? "\(resultCode)")
        if resultCode == .SQLITE_READONLY { reason = "the database or its folder is read-only" }
        return StoreError(path: path, operation: operation, code: code, reason: reason)
    }
}
