/// Reads big-endian fields from untrusted bytes.
///
/// Every read names the field it is for, so that a short or bad input becomes
/// a `DecodeError` saying which field, at which offset, and why. Nothing here
/// traps on bad input.
public struct ByteReader {
    public let bytes: [UInt8]
    public private(set) var offset: Int
    public let context: String

    public init(_ bytes: [UInt8], context: String) {
        self.init(bytes, offset: 0, context: context)
    }

    /// Reads from `offset` on: lets a record's header and its event share one buffer.
    public init(_ bytes: [UInt8], offset: Int, context: String) {
        precondition(offset >= 0 && offset <= bytes.count, "reader offset outside its bytes")
        self.bytes = bytes
        self.offset = offset
        self.context = context
    }

    public var remaining: Int { bytes.count - offset }

    public func error(_ field: String, _ reason: DecodeError.Reason, at position: Int? = nil) -> DecodeError {
        DecodeError(context: context, field: field, offset: position ?? offset, reason: reason)
    }

    private mutating func take(_ count: Int, _ field: String) throws(DecodeError) -> ArraySlice<UInt8> {
        guard count <= remaining else {
            throw error(field, .truncated(needed: count, available: remaining))
        }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    public mutating func readUInt8(_ field: String) throws(DecodeError) -> UInt8 {
        try take(1, field).first!
    }

    public mutating func readUInt16(_ field: String) throws(DecodeError) -> UInt16 {
        try take(2, field).reduce(0) { $0 << 8 | UInt16($1) }
    }

    public mutating func readUInt32(_ field: String) throws(DecodeError) -> UInt32 {
        try take(4, field).reduce(0) { $0 << 8 | UInt32($1) }
    }

    public mutating func readUInt64(_ field: String) throws(DecodeError) -> UInt64 {
        try take(8, field).reduce(0) { $0 << 8 | UInt64($1) }
    }

    public mutating func readBytes(_ count: Int, _ field: String) throws(DecodeError) -> ArraySlice<UInt8> {
        try take(count, field)
    }

    /// LEB128 varint, at most 10 bytes; a longer or overflowing one is refused.
    public mutating func readVarint(_ field: String) throws(DecodeError) -> UInt64 {
        let start = offset
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try readUInt8(field)
            if shift == 63, byte > 1 {
                throw error(field, .invalid("varint overflows 64 bits"), at: start)
            }
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
            if shift > 63 { throw error(field, .invalid("varint longer than 10 bytes"), at: start) }
        }
    }

    /// Refuses bytes left over after the last field: a canonical form has exactly one length.
    public func expectEnd() throws(DecodeError) {
        guard remaining == 0 else { throw error("end", .trailingBytes(remaining)) }
    }
}
