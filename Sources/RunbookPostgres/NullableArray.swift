import NIOCore
import PostgresNIO

/// A one-dimensional array parameter whose elements may be NULL, in PostgreSQL's binary array
/// format (postgres-nio encodes `[Element]` but not `[Element?]`). Batch statements take one of
/// these per column and `unnest` them together, so that thousands of rows go in as typed binary
/// values: no JSON written by us and parsed again by the server.
struct NullableArray<Element: PostgresArrayEncodable & PostgresNonThrowingEncodable>: PostgresNonThrowingEncodable, PostgresDynamicTypeEncodable {
    var elements: [Element?]

    init(_ elements: [Element?]) { self.elements = elements }

    static var psqlType: PostgresDataType { Element.psqlArrayType }
    static var psqlFormat: PostgresFormat { .binary }

    func encode<JSONEncoder: PostgresJSONEncoder>(into buffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        // Header: dimensions (0 for an empty array), whether any element is NULL, the element type.
        buffer.writeInteger(elements.isEmpty ? 0 : 1, as: Int32.self)
        buffer.writeInteger(elements.contains { $0 == nil } ? 1 : 0, as: Int32.self)
        buffer.writeInteger(Element.psqlType.rawValue)
        guard !elements.isEmpty else { return }
        // The one dimension: its length and lower bound (1).
        buffer.writeInteger(Int32(elements.count), as: Int32.self)
        buffer.writeInteger(1, as: Int32.self)
        for element in elements {
            // Each element: its length then its bytes (encodeRaw), or a length of -1 for NULL.
            guard let element else {
                buffer.writeInteger(-1, as: Int32.self)
                continue
            }
            let lengthAt = buffer.writerIndex
            buffer.writeInteger(0, as: Int32.self)
            element.encode(into: &buffer, context: context)
            buffer.setInteger(Int32(buffer.writerIndex - lengthAt - 4), at: lengthAt, as: Int32.self)
        }
    }
}

extension NullableArray: PostgresDecodable where Element: PostgresDecodable {
    /// Reads a one-dimensional binary array whose elements may be NULL (postgres-nio reads only
    /// arrays without NULLs). An empty array has no dimensions.
    init<JSONDecoder: PostgresJSONDecoder>(from buffer: inout ByteBuffer, type: PostgresDataType, format: PostgresFormat,
                                           context: PostgresDecodingContext<JSONDecoder>) throws {
        guard case .binary = format,
              let (dimensions, _, elementOID) = buffer.readMultipleIntegers(endianness: .big, as: (Int32, Int32, UInt32).self),
              dimensions == 0 || dimensions == 1
        else { throw PostgresDecodingError.Code.failure }
        guard dimensions == 1 else {
            self.init([])
            return
        }
        // Each element takes at least its 4-byte length: a count beyond that is not believed.
        guard let (count, _) = buffer.readMultipleIntegers(endianness: .big, as: (Int32, Int32).self), count >= 0,
              Int(count) <= buffer.readableBytes / 4 else {
            throw PostgresDecodingError.Code.failure
        }
        let elementType = PostgresDataType(elementOID)
        var elements: [Element?] = []
        elements.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let length = buffer.readInteger(as: Int32.self) else { throw PostgresDecodingError.Code.failure }
            if length < 0 {
                elements.append(nil)
                continue
            }
            guard var bytes = buffer.readSlice(length: Int(length)) else { throw PostgresDecodingError.Code.failure }
            elements.append(try Element(from: &bytes, type: elementType, format: .binary, context: context))
        }
        self.init(elements)
    }
}

extension NullableArray: Sendable where Element: Sendable {}
