/// A JSON scalar: string, number, bool or null (a step's `output` values).
extension Value: Codable {
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() {
            self = .null
        } else if let b = try? c.decode(Bool.self) {
            self = .bool(b)
        } else if let d = try? c.decode(Double.self) {
            self = .number(d)
        } else {
            self = .string(try c.decode(String.self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .string(let s): try c.encode(s)
        case .number(let d): if d.isFinite { try c.encode(d) } else { try c.encodeNil() }
        case .bool(let b): try c.encode(b)
        case .null: try c.encodeNil()
        }
    }
}
