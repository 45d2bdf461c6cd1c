import Foundation
import RunbookCore

/// Edits an OpenFeature flagd flag file in place: only the one value changes, every other byte
/// (other flags, `targeting`, formatting) stays; the write is atomic (temp file, fsync, rename).
public enum FlagFile {
    /// A flag file problem; a failed step, with a message a responder can act on.
    public typealias Failure = FlagFileReader.Failure

    public static func locate(in data: Data, key: String, field: String) throws -> (text: String, range: Range<Int>) {
        try FlagFileReader.locate(in: data, key: key, field: field)
    }

    public static func variants(in data: Data, key: String) -> [String]? { FlagFileReader.variants(in: data, key: key) }

    /// Sets `flags.KEY.FIELD` to the JSON text `newText`; returns the previous JSON text.
    /// - Throws: `Failure` when the file, flag or field is missing, or the write fails.
    @discardableResult
    public static func set(path: String, key: String, field: String, newText: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else { throw Failure(description: "cannot read flag file \(path)") }
        let (old, range) = try FlagFileReader.locate(in: data, key: key, field: field)
        var bytes = [UInt8](data)
        bytes.replaceSubrange(range, with: Array(newText.utf8))
        try atomicWrite(Data(bytes), to: path)
        return old
    }

    /// Writes via a temp file in the same folder, fsyncs it, renames it over the target, and fsyncs the folder.
    public static func atomicWrite(_ data: Data, to path: String) throws {
        let dir = (path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent
        let tmp = "\(dir)/.\((path as NSString).lastPathComponent).runbook-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).tmp"
        let mode = (try? FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? 0o644
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode_t(mode))
        guard fd >= 0 else { throw Failure(description: "cannot create \(tmp): \(String(cString: strerror(errno)))") }
        var ok = data.withUnsafeBytes { buf -> Bool in
            var offset = 0
            while offset < buf.count {
                let n = write(fd, buf.baseAddress! + offset, buf.count - offset)
                if n <= 0 { return false }
                offset += n
            }
            return true
        }
        ok = ok && fsync(fd) == 0
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            let why = String(cString: strerror(errno))
            unlink(tmp)
            throw Failure(description: "cannot write \(path): \(why)")
        }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}

