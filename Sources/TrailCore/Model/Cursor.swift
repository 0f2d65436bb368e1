/// What a reader has seen of one namespace.
///
/// - `position`: fast form, valid on one relay: the last log position read
///   there, with that relay's fingerprint so another relay can refuse it.
/// - `vector`: portable form, the version vector of everything seen. It
///   resumes on any relay holding the namespace and yields exactly the unseen
///   events in that relay's causal order.
///
/// Both have a compact URL-safe text form (`text`, `init(text:)`) carrying a
/// checksum, so a cursor that was cut or altered in storage is refused rather
/// than misread.
public enum Cursor: Hashable, Sendable, CustomStringConvertible {
    case position(relay: UInt64, position: UInt64)
    case vector(VersionVector)

    static let formatVersion: UInt8 = 1
    static let kindPosition: UInt8 = 1
    static let kindVector: UInt8 = 2
    static let checksumByteCount = 4
    /// Cursor text longer than this is refused before decoding (a vector of
    /// 4096 origins fits in about 190 KB of text).
    public static let textByteCountMax = 200_000

    /// The start of a namespace on `relay`: nothing seen yet.
    public static func start(relay: RelayID) -> Cursor { .position(relay: relay.fingerprint, position: 0) }

    public var text: String {
        var writer = ByteWriter()
        writer.write(Self.formatVersion)
        switch self {
        case .position(let relay, let position):
            writer.write(Self.kindPosition)
            writer.write(relay)
            writer.writeVarint(position)
        case .vector(let vector):
            writer.write(Self.kindVector)
            vector.encode(into: &writer)
        }
        writer.write(contentsOf: SHA256.hash(writer.bytes).prefix(Self.checksumByteCount))
        return Base64URL.encode(writer.bytes)
    }

    public var description: String { text }

    public init(text: String) throws(DecodeError) {
        guard text.utf8.count <= Self.textByteCountMax else {
            throw DecodeError(context: "cursor", field: "text", offset: 0,
                              reason: .tooLarge(value: text.utf8.count, limit: Self.textByteCountMax))
        }
        guard let bytes = Base64URL.decode(text) else {
            throw DecodeError(context: "cursor", field: "text", offset: 0,
                              reason: .invalid("is not base64url text (A–Z a–z 0–9 - _, no padding)"))
        }
        guard bytes.count > Self.checksumByteCount + 2 else {
            throw DecodeError(context: "cursor", field: "text", offset: 0,
                              reason: .truncated(needed: Self.checksumByteCount + 3, available: bytes.count))
        }
        let content = Array(bytes.dropLast(Self.checksumByteCount))
        guard SHA256.hash(content).prefix(Self.checksumByteCount).elementsEqual(bytes.suffix(Self.checksumByteCount)) else {
            throw DecodeError(context: "cursor", field: "checksum", offset: content.count, reason: .checksumMismatch)
        }
        var reader = ByteReader(content, context: "cursor")
        let version = try reader.readUInt8("version")
        guard version == Self.formatVersion else { throw reader.error("version", .unsupportedVersion(version), at: 0) }
        let kind = try reader.readUInt8("kind")
        switch kind {
        case Self.kindPosition:
            let relay = try reader.readUInt64("relay")
            let position = try reader.readVarint("position")
            self = .position(relay: relay, position: position)
        case Self.kindVector:
            self = .vector(try VersionVector.decode(from: &reader))
        default:
            throw reader.error("kind", .invalid("is \(kind); expected 1 (position) or 2 (vector)"), at: 1)
        }
        try reader.expectEnd()
    }
}
