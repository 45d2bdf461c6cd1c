import Foundation

/// Reads an OpenFeature flagd flag file without re-encoding it: finds the exact bytes of one value.
public enum FlagFileReader {
    /// A flag file problem a responder can act on.
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    /// The current JSON text of `flags.KEY.FIELD` (e.g. `"on"` with quotes), and its byte range.
    public static func locate(in data: Data, key: String, field: String) throws -> (text: String, range: Range<Int>) {
        let bytes = [UInt8](data)
        let scanner = JSONSpanScanner(bytes: bytes)
        guard let root = try? scanner.objectMembers(at: scanner.skipSpace(0)) else {
            throw Failure(description: "not a JSON object")
        }
        // JSON readers (flagd among them) take the last of duplicate keys; editing the first would
        // change nothing they see. Refuse the file rather than guess.
        if let dup = scanner.firstDuplicateKey(at: scanner.skipSpace(0), path: "") {
            throw Failure(description: "duplicate key \(dup): fix the flag file (JSON readers would use the last one)")
        }
        guard let flags = root.first(where: { $0.key == "flags" }) else { throw Failure(description: "no \"flags\" object") }
        guard let flagMembers = try? scanner.objectMembers(at: flags.value.lowerBound) else { throw Failure(description: "\"flags\" is not an object") }
        guard let flag = flagMembers.first(where: { $0.key == key }) else {
            let known = flagMembers.map(\.key)
            throw Failure(description: "no flag '\(key)' (flags here: \(known.joined(separator: ", ")))")
        }
        guard let members = try? scanner.objectMembers(at: flag.value.lowerBound) else { throw Failure(description: "flag '\(key)' is not an object") }
        guard let value = members.first(where: { $0.key == field }) else { throw Failure(description: "flag '\(key)' has no \"\(field)\"") }
        return (String(decoding: bytes[value.value], as: UTF8.self), value.value)
    }

    /// The variant names a flag declares.
    public static func variants(in data: Data, key: String) -> [String]? {
        guard let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let flags = obj["flags"] as? [String: Any], let flag = flags[key] as? [String: Any],
              let variants = flag["variants"] as? [String: Any] else { return nil }
        return variants.keys.sorted()
    }

}

/// Finds byte ranges of JSON values without re-encoding anything.
struct JSONSpanScanner {
    let bytes: [UInt8]
    struct Bad: Error {}

    func skipSpace(_ i: Int) -> Int {
        var i = i
        while i < bytes.count, [0x20, 0x0a, 0x0d, 0x09].contains(bytes[i]) { i += 1 }
        return i
    }

    /// Members of the object starting at `start`: key and value byte range.
    func objectMembers(at start: Int) throws -> [(key: String, value: Range<Int>)] {
        guard start < bytes.count, bytes[start] == UInt8(ascii: "{") else { throw Bad() }
        var out: [(String, Range<Int>)] = []
        var i = skipSpace(start + 1)
        if i < bytes.count, bytes[i] == UInt8(ascii: "}") { return [] }
        while i < bytes.count {
            let keyEnd = try endOfValue(i)
            guard bytes[i] == UInt8(ascii: "\""),
                  let key = try? JSONDecoder().decode(String.self, from: Data(bytes[i..<keyEnd])) else { throw Bad() }
            i = skipSpace(keyEnd)
            guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { throw Bad() }
            let vStart = skipSpace(i + 1)
            let vEnd = try endOfValue(vStart)
            out.append((key, vStart..<vEnd))
            i = skipSpace(vEnd)
            guard i < bytes.count else { throw Bad() }
            if bytes[i] == UInt8(ascii: "}") { return out }
            guard bytes[i] == UInt8(ascii: ",") else { throw Bad() }
            i = skipSpace(i + 1)
        }
        throw Bad()
    }

    /// The first key that appears twice in one object, anywhere in the value at `start`, as a path
    /// (`flags.image-resize.state`); nil when there is none.
    func firstDuplicateKey(at start: Int, path: String) -> String? {
        guard start < bytes.count else { return nil }
        if bytes[start] == UInt8(ascii: "{") {
            guard let members = try? objectMembers(at: start) else { return nil }
            var seen = Set<String>()
            for m in members {
                let p = path.isEmpty ? m.key : path + "." + m.key
                if !seen.insert(m.key).inserted { return p }
                if let d = firstDuplicateKey(at: m.value.lowerBound, path: p) { return d }
            }
        } else if bytes[start] == UInt8(ascii: "[") {
            var i = skipSpace(start + 1)
            var index = 0
            while i < bytes.count, bytes[i] != UInt8(ascii: "]") {
                guard let end = try? endOfValue(i) else { return nil }
                if let d = firstDuplicateKey(at: i, path: "\(path)[\(index)]") { return d }
                index += 1
                i = skipSpace(end)
                if i < bytes.count, bytes[i] == UInt8(ascii: ",") { i = skipSpace(i + 1) }
            }
        }
        return nil
    }

    /// Index just past the value starting at `i`.
    func endOfValue(_ i: Int) throws -> Int {
        guard i < bytes.count else { throw Bad() }
        switch bytes[i] {
        case UInt8(ascii: "\""):
            var j = i + 1
            while j < bytes.count {
                if bytes[j] == UInt8(ascii: "\\") { j += 2; continue }
                if bytes[j] == UInt8(ascii: "\"") { return j + 1 }
                j += 1
            }
            throw Bad()
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0, j = i
            while j < bytes.count {
                let b = bytes[j]
                if b == UInt8(ascii: "\"") { j = try endOfValue(j); continue }
                if b == UInt8(ascii: "{") || b == UInt8(ascii: "[") { depth += 1 }
                if b == UInt8(ascii: "}") || b == UInt8(ascii: "]") {
                    depth -= 1
                    if depth == 0 { return j + 1 }
                }
                j += 1
            }
            throw Bad()
        default:
            var j = i
            while j < bytes.count, ![UInt8(ascii: ","), UInt8(ascii: "}"), UInt8(ascii: "]"), 0x20, 0x0a, 0x0d, 0x09].contains(bytes[j]) { j += 1 }
            guard j > i else { throw Bad() }
            return j
        }
    }
}
