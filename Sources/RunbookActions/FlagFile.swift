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

    /// What a flag-file step sets, templates rendered: the file, the flag, the field (`defaultVariant`
    /// for `variant:`, `state` for `state:`) and the value it is set to.
    public struct Target: Sendable {
        public var path: String
        public var key: String
        public var field: String
        public var value: String
        /// `flag KEY`, or `flag KEY state`: the change's `what`.
        public var what: String { field == "state" ? "flag \(key) state" : "flag \(key)" }
    }

    /// The target of a `flag: { file, key, variant | state }` step, templates rendered.
    public static func target(_ f: FlagSpec, file: Template, render: (Template) -> String) -> Target {
        let (field, value): (String, String)
        switch f.setting {
        case .variant(let v)?: (field, value) = ("defaultVariant", render(v))
        case .state(let s)?: (field, value) = ("state", s)
        case nil: (field, value) = ("state", "")
        }
        return Target(path: render(file), key: f.key.map(render) ?? "", field: field, value: value)
    }

    /// A field's value as the file holds it, JSON text, made plain (a JSON string decoded).
    public static func plain(_ jsonText: String) -> String {
        (try? JSONDecoder().decode(String.self, from: Data(jsonText.utf8))) ?? jsonText
    }

    /// Sets `flags.KEY.FIELD` to the JSON text `newText`; returns the previous JSON text.
    /// A symlinked flag file is followed: its target is rewritten, in the target's folder, so the
    /// link (which flagd may watch) stays a link. The owner, group and mode are kept.
    /// - Throws: `Failure` when the file, flag or field is missing, a key is duplicated, or the write fails.
    @discardableResult
    public static func set(path: String, key: String, field: String, newText: String) throws -> String {
        let target = try resolve(path)
        guard let data = FileManager.default.contents(atPath: target) else { throw Failure(description: "cannot read flag file \(path)") }
        let (old, range) = try FlagFileReader.locate(in: data, key: key, field: field)
        var bytes = [UInt8](data)
        bytes.replaceSubrange(range, with: Array(newText.utf8))
        try atomicWrite(Data(bytes), to: target)
        return old
    }

    /// The real file behind `path` (symlinks followed).
    public static func resolve(_ path: String) throws -> String {
        guard let real = realpath(path, nil) else {
            throw Failure(description: "cannot read flag file \(path): \(String(cString: strerror(errno)))")
        }
        defer { free(real) }
        return String(cString: real)
    }

    /// Writes via a temp file in the same folder, with the target's owner, group and mode, fsyncs it,
    /// renames it over the target, and fsyncs the folder. `path` must not be a symlink (see `resolve`).
    public static func atomicWrite(_ data: Data, to path: String) throws {
        let slash = path.lastIndex(of: "/")
        let dir = slash.map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let tmp = "\(dir)/.\(name).runbook-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).tmp"
        var st = stat()
        let existing = stat(path, &st) == 0
        let mode = existing ? mode_t(st.st_mode & 0o7777) : 0o644
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw Failure(description: "cannot create \(tmp): \(String(cString: strerror(errno)))") }
        var why: String?
        if existing {
            if fchown(fd, st.st_uid, st.st_gid) != 0 { why = "cannot keep the owner of \(path): \(String(cString: strerror(errno)))" }
            else if fchmod(fd, mode) != 0 { why = "cannot keep the mode of \(path): \(String(cString: strerror(errno)))" }
        }
        if why == nil {
            let ok = data.withUnsafeBytes { buf -> Bool in
                var offset = 0
                while offset < buf.count {
                    let n = write(fd, buf.baseAddress! + offset, buf.count - offset)
                    if n < 0, errno == EINTR { continue }
                    if n <= 0 { return false }
                    offset += n
                }
                return true
            }
            if !ok || fsync(fd) != 0 { why = "cannot write \(path): \(String(cString: strerror(errno)))" }
        }
        close(fd)
        if why == nil, rename(tmp, path) != 0 { why = "cannot replace \(path): \(String(cString: strerror(errno)))" }
        if let why {
            unlink(tmp)
            throw Failure(description: why)
        }
        let dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if dfd >= 0 { fsync(dfd); close(dfd) }
    }
}
