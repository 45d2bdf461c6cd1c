import Foundation

/// A one-pass reader of a well-formed Alertmanager payload, straight from its bytes. It reads strict
/// JSON (RFC 8259: no comments, no trailing commas, UTF-8) and gives up (nil) on anything it is
/// not sure `JSONDecoder` would read the same way: malformed JSON, a missing or mistyped field, a
/// duplicated field or label, a lone surrogate, deep nesting. `AlertPayload.decode` then asks
/// `JSONDecoder`, which decodes it or says what is wrong; so the scanner only ever saves time.
struct AlertPayloadScanner {
    private let bytes: UnsafeBufferPointer<UInt8>
    private var i = 0

    private init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    /// The payload, or nil when `JSONDecoder` must decide.
    static func payload(_ data: Data) -> AlertPayload? {
        data.withUnsafeBytes { raw in
            var s = AlertPayloadScanner(raw.bindMemory(to: UInt8.self))
            guard let p = s.payload(), s.atEnd else { return nil }
            return p
        }
    }

    private var atEnd: Bool {
        mutating get {
            skipSpace()
            return i == bytes.count
        }
    }

    private mutating func payload() -> AlertPayload? {
        var p = AlertPayload(alerts: [])
        var seen = Set<String>(), alerts = false
        let ok = object { s, key in
            guard seen.insert(key).inserted else { return false }
            switch key {
            case "version": return s.optionalString(&p.version)
            case "groupKey": return s.optionalString(&p.groupKey)
            case "status": return s.optionalString(&p.status)
            case "receiver": return s.optionalString(&p.receiver)
            case "externalURL": return s.optionalString(&p.externalURL)
            case "truncatedAlerts":
                if s.null() { return true }
                guard let n = s.integer() else { return false }
                p.truncatedAlerts = n
                return true
            case "alerts":
                alerts = true
                return s.array { s in
                    guard let a = s.alert() else { return false }
                    p.alerts.append(a)
                    return true
                }
            default: return s.skipValue(depth: 0)
            }
        }
        return ok && alerts ? p : nil
    }

    private mutating func alert() -> AlertPayload.Alert? {
        var status: String?, labels: [String: String]?
        var annotations: [String: String]?, startsAt: String?, endsAt: String?, generatorURL: String?, fingerprint: String?
        // The fields read, each once (a bit each, in the order of the cases).
        var seen: UInt8 = 0
        let ok = object { s, key in
            if let k = Self.alertFields.firstIndex(of: key) {
                guard seen & (1 << k) == 0 else { return false }
                seen |= 1 << k
            }
            switch key {
            case "status":
                status = s.string()
                return status != nil
            case "labels":
                labels = s.labels()
                return labels != nil
            case "annotations":
                if s.null() { return true }
                annotations = s.labels()
                return annotations != nil
            case "startsAt": return s.optionalString(&startsAt)
            case "endsAt": return s.optionalString(&endsAt)
            case "generatorURL": return s.optionalString(&generatorURL)
            case "fingerprint": return s.optionalString(&fingerprint)
            default: return s.skipValue(depth: 0)
            }
        }
        guard ok, let status, let labels else { return nil }
        return AlertPayload.Alert(status: status, labels: labels, annotations: annotations, startsAt: startsAt, endsAt: endsAt,
                                  generatorURL: generatorURL, fingerprint: fingerprint)
    }

    /// The fields of an alert that are read, each at most once.
    private static let alertFields = ["status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"]

    /// An object of strings, no name twice.
    private mutating func labels() -> [String: String]? {
        var out: [String: String] = [:]
        let ok = object { s, key in
            guard let v = s.string() else { return false }
            return out.updateValue(v, forKey: key) == nil
        }
        return ok ? out : nil
    }

    // MARK: JSON

    private mutating func skipSpace() {
        while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x0a || bytes[i] == 0x0d || bytes[i] == 0x09 { i += 1 }
    }

    /// Takes `c` (after white space) if it is next.
    private mutating func take(_ c: UInt8) -> Bool {
        skipSpace()
        guard i < bytes.count, bytes[i] == c else { return false }
        i += 1
        return true
    }

    /// Takes the literal `word` if it is next.
    private mutating func take(word: StaticString) -> Bool {
        skipSpace()
        let n = word.utf8CodeUnitCount
        guard bytes.count - i >= n else { return false }
        for k in 0..<n where bytes[i + k] != word.utf8Start[k] { return false }
        i += n
        return true
    }

    private mutating func null() -> Bool { take(word: "null") }

    /// An object: `member` reads each value after its name.
    private mutating func object(_ member: (inout AlertPayloadScanner, String) -> Bool) -> Bool {
        guard take(0x7b) else { return false }
        if take(0x7d) { return true }
        repeat {
            guard let key = string(), take(0x3a), member(&self, key) else { return false }
        } while take(0x2c)
        return take(0x7d)
    }

    /// An array: `element` reads each element.
    private mutating func array(_ element: (inout AlertPayloadScanner) -> Bool) -> Bool {
        guard take(0x5b) else { return false }
        if take(0x5d) { return true }
        repeat {
            guard element(&self) else { return false }
        } while take(0x2c)
        return take(0x5d)
    }

    /// A string or null into `value`.
    private mutating func optionalString(_ value: inout String?) -> Bool {
        if null() { return true }
        value = string()
        return value != nil
    }

    /// A string: escapes decoded, valid UTF-8 only, no raw control characters.
    private mutating func string() -> String? {
        guard take(0x22) else { return nil }
        let start = i
        while i < bytes.count {
            let c = bytes[i]
            if c == 0x22 {
                defer { i += 1 }
                return String(validating: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
            }
            if c == 0x5c { break }
            if c < 0x20 { return nil }
            i += 1
        }
        var out = Array(bytes[start..<i])
        while i < bytes.count {
            let c = bytes[i]
            i += 1
            switch c {
            case 0x22: return String(validating: out, as: UTF8.self)
            case 0x5c:
                guard i < bytes.count else { return nil }
                let e = bytes[i]
                i += 1
                switch e {
                case 0x22, 0x5c, 0x2f: out.append(e)
                case 0x62: out.append(0x08)
                case 0x66: out.append(0x0c)
                case 0x6e: out.append(0x0a)
                case 0x72: out.append(0x0d)
                case 0x74: out.append(0x09)
                case 0x75:
                    guard var u = hex4() else { return nil }
                    if (0xd800..<0xdc00).contains(u) {
                        guard bytes.count - i >= 2, bytes[i] == 0x5c, bytes[i + 1] == 0x75 else { return nil }
                        i += 2
                        guard let low = hex4(), (0xdc00..<0xe000).contains(low) else { return nil }
                        u = 0x10000 + ((u - 0xd800) << 10) + (low - 0xdc00)
                    } else if (0xdc00..<0xe000).contains(u) {
                        return nil
                    }
                    guard let scalar = Unicode.Scalar(u) else { return nil }
                    out.append(contentsOf: String(scalar).utf8)
                default: return nil
                }
            default:
                if c < 0x20 { return nil }
                out.append(c)
            }
        }
        return nil
    }

    /// Four hex digits of a `\u` escape.
    private mutating func hex4() -> UInt32? {
        guard bytes.count - i >= 4 else { return nil }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = bytes[i]
            i += 1
            switch c {
            case 0x30...0x39: v = v << 4 | UInt32(c - 0x30)
            case 0x41...0x46: v = v << 4 | UInt32(c - 0x41 + 10)
            case 0x61...0x66: v = v << 4 | UInt32(c - 0x61 + 10)
            default: return nil
            }
        }
        return v
    }

    /// A number as JSON writes it (`-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?`); its text.
    private mutating func number() -> String? {
        skipSpace()
        let start = i
        func digits(_ s: inout AlertPayloadScanner) -> Int {
            let from = s.i
            while s.i < s.bytes.count, (0x30...0x39).contains(s.bytes[s.i]) { s.i += 1 }
            return s.i - from
        }
        if i < bytes.count, bytes[i] == 0x2d { i += 1 }
        guard i < bytes.count else { return nil }
        if bytes[i] == 0x30 { i += 1 } else if digits(&self) == 0 { return nil }
        if i < bytes.count, bytes[i] == 0x2e {
            i += 1
            guard digits(&self) > 0 else { return nil }
        }
        if i < bytes.count, bytes[i] == 0x65 || bytes[i] == 0x45 {
            i += 1
            if i < bytes.count, bytes[i] == 0x2b || bytes[i] == 0x2d { i += 1 }
            guard digits(&self) > 0 else { return nil }
        }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<i]), as: UTF8.self)
    }

    /// A whole number that fits an Int, written without fraction or exponent.
    private mutating func integer() -> Int? {
        guard let text = number() else { return nil }
        return Int(text)
    }

    /// Any value, checked but not kept (fields the payload does not use); at most 64 levels deep.
    private mutating func skipValue(depth: Int) -> Bool {
        guard depth < 64 else { return false }
        skipSpace()
        guard i < bytes.count else { return false }
        switch bytes[i] {
        case 0x7b: return object { s, _ in s.skipValue(depth: depth + 1) }
        case 0x5b: return array { s in s.skipValue(depth: depth + 1) }
        case 0x22: return string() != nil
        case 0x74: return take(word: "true")
        case 0x66: return take(word: "false")
        case 0x6e: return null()
        default: return number() != nil
        }
    }
}
