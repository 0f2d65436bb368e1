/// An event's id: SHA-256 of its canonical encoding without the signature.
/// The same event has the same id on every relay.
public struct EventID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let byteCount = 32
    public let bytes: [UInt8]

    /// `bytes` must be 32 bytes; the codec and the store check lengths before calling.
    public init(bytes: some Collection<UInt8>) {
        let array = Array(bytes)
        precondition(array.count == Self.byteCount, "an event id is 32 bytes, got \(array.count)")
        self.bytes = array
    }

    public init(hex: String) throws(ModelError) {
        guard let bytes = Hex.decode(hex), bytes.count == Self.byteCount else {
            throw ModelError.invalidID(hex)
        }
        self.bytes = bytes
    }

    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }
    /// Twelve hex digits: enough to tell events apart in logs and listings.
    public var short: String { String(hex.prefix(12)) }

    /// Hashes the 32 bytes at once; the synthesized hash feeds them one by one, which
    /// showed up at 3% of an append profile.
    public func hash(into hasher: inout Hasher) {
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    public static func == (lhs: EventID, rhs: EventID) -> Bool { lhs.bytes == rhs.bytes }

    public static func < (lhs: EventID, rhs: EventID) -> Bool {
        lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }
}
