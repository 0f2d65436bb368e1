/// An event's id: SHA-256 of its canonical encoding without the signature.
/// The same event has the same id on every relay.
///
/// Held as `Bytes32` (four words) rather than an array: ids are hashed,
/// compared and copied on every append (measured: array-backed ids cost
/// several percent of an append).
public struct EventID: Bytes32Value, Sendable {
    public static let byteCount = Bytes32.byteCount
    public let storage: Bytes32

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

    /// The first 8 bytes as a big-endian integer (a hash of the event on its own).
    public var prefix64: UInt64 { storage.prefix64 }

    /// Twelve hex digits: enough to tell events apart in logs and listings.
    public var short: String { String(hex.prefix(12)) }
}
