/// Reads big-endian fields from untrusted bytes.
///
/// Every read names the field it is for, so that a short or bad input becomes
/// a `DecodeError` saying which field, at which offset, and why. Nothing here
/// traps on bad input. A name is built only when a read fails (`"origin \(i)"`
/// costs a string per field otherwise: a vector's decoding was mostly that).
///
/// Generic over its bytes so that the same checks read an array or, on the
/// replay path, a RocksDB value in place without copying it first.
public struct ByteReader<Bytes: RandomAccessCollection<UInt8>> where Bytes.Index == Int {
    public let bytes: Bytes
    @usableFromInline var cursor: Int
    /// Where the next field starts.
    @inlinable public var offset: Int { cursor }
    public let context: String
    // Methods are inlinable so that each client specializes them for its byte
    // container; unspecialized generic reads cost a witness call per byte.

    @inlinable public init(_ bytes: Bytes, context: String) {
        self.init(bytes, offset: bytes.startIndex, context: context)
    }

    /// Reads from `offset` on: lets a record's header and its event share one buffer.
    @inlinable public init(_ bytes: Bytes, offset: Int, context: String) {
        precondition(offset >= bytes.startIndex && offset <= bytes.endIndex, "reader offset outside its bytes")
        self.bytes = bytes
        self.cursor = offset
        self.context = context
    }

    @inlinable public var remaining: Int { bytes.endIndex - cursor }

    @inlinable public func error(_ field: String, _ reason: DecodeError.Reason, at position: Int? = nil) -> DecodeError {
        DecodeError(context: context, field: field, offset: position ?? offset, reason: reason)
    }

    @inlinable mutating func take(_ count: Int, _ field: @autoclosure () -> String) throws(DecodeError) -> Bytes.SubSequence {
        guard count <= remaining else {
            throw error(field(), .truncated(needed: count, available: remaining))
        }
        defer { cursor += count }
        return bytes[cursor..<cursor + count]
    }

    @inlinable public mutating func readUInt8(_ field: @autoclosure () -> String) throws(DecodeError) -> UInt8 {
        try take(1, field()).first!
    }

    @inlinable public mutating func readUInt16(_ field: @autoclosure () -> String) throws(DecodeError) -> UInt16 {
        try take(2, field()).reduce(0) { $0 << 8 | UInt16($1) }
    }

    @inlinable public mutating func readUInt32(_ field: @autoclosure () -> String) throws(DecodeError) -> UInt32 {
        try take(4, field()).reduce(0) { $0 << 8 | UInt32($1) }
    }

    @inlinable public mutating func readUInt64(_ field: @autoclosure () -> String) throws(DecodeError) -> UInt64 {
        try take(8, field()).reduce(0) { $0 << 8 | UInt64($1) }
    }

    @inlinable public mutating func readBytes(_ count: Int, _ field: @autoclosure () -> String) throws(DecodeError) -> Bytes.SubSequence {
        try take(count, field())
    }

    /// LEB128 varint, at most 10 bytes; a longer or overflowing one is refused.
    @inlinable public mutating func readVarint(_ field: @autoclosure () -> String) throws(DecodeError) -> UInt64 {
        let start = offset
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try readUInt8(field())
            if shift == 63, byte > 1 {
                throw error(field(), .invalid("varint overflows 64 bits"), at: start)
            }
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
            if shift > 63 { throw error(field(), .invalid("varint longer than 10 bytes"), at: start) }
        }
    }

    /// Refuses bytes left over after the last field: a canonical form has exactly one length.
    @inlinable public func expectEnd() throws(DecodeError) {
        guard remaining == 0 else { throw error("end", .trailingBytes(remaining)) }
    }
}
