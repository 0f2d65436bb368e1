/// An event's id: SHA-256 of its canonical encoding without the signature.
/// The same event has the same id on every relay.
///
/// Held as `Bytes32` (four words) rather than an array: ids are hashed,
/// compared and copied on every append (measured: array-backed ids cost
/// several percent of an append).
public struct EventID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let byteCount = Bytes32.byteCount
    @usableFromInline let storage: Bytes32

    /// `bytes` must be 32 bytes; the codec and the store check lengths before calling.
    @inlinable public init(bytes: some Collection<UInt8>) {
        storage = Bytes32(bytes)
    }

    public init(hex: String) throws(ModelError) {
        guard let bytes = Hex.decode(hex), bytes.count == Self.byteCount else {
            throw ModelError.invalidID(hex)
        }
        self.init(bytes: bytes)
    }

    public var bytes: [UInt8] { storage.array }

    /// The 32 bytes, without allocating, valid only inside `body`.
    public func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try storage.withBytes(body)
    }

    public func write(into writer: inout ByteWriter) { storage.write(into: &writer) }

    public var hex: String { withBytes { Hex.encode($0) } }
    public var description: String { hex }
    /// The first 8 bytes as a big-endian integer (a hash of the event on its own).
    public var prefix64: UInt64 { storage.prefix64 }

    /// Twelve hex digits: enough to tell events apart in logs and listings.
    public var short: String { String(hex.prefix(12)) }

    public func hash(into hasher: inout Hasher) { storage.hash(into: &hasher) }
    public static func == (lhs: EventID, rhs: EventID) -> Bool { lhs.storage == rhs.storage }
    /// Byte order.
    public static func < (lhs: EventID, rhs: EventID) -> Bool { lhs.storage < rhs.storage }
}
