import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Writes to standard output and standard error with write(2). A reader that went away (a closed
/// pipe, `| head -1`) never stops a run: the output is dropped from then on, the run goes on.
/// (Foundation's `FileHandle.write(_:)` traps on EPIPE.)
enum StandardStreams {
    /// Writes all of `text` to `fd`; false once the reader is gone or the write fails.
    @discardableResult
    static func write(_ fd: Int32, _ text: String) -> Bool {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0, errno == EINTR { continue }
            if n <= 0 { return false }
            offset += n
        }
        bytes.removeAll()
        return true
    }

    static func out(_ text: String) { write(1, text) }
    static func err(_ text: String) { write(2, text) }
}
