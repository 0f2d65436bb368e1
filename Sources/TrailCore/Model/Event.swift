/// An event: what an agent published to a namespace.
///
/// Immutable. Its `id` is SHA-256 of its canonical encoding without the
/// signature (see `Docs/FORMAT.md`), computed once when the event is built
/// or decoded.
public struct Event: Hashable, Sendable, CustomStringConvertible {
    public let namespace: Namespace
    /// The Ed25519 key of the agent that wrote it, or nil for an anonymous event.
    public let author: PublicKey?
    public let timestamp: HybridTimestamp
    /// The events this one causally follows, ascending by id, without repeats.
    public let parents: [EventID]
    public let type: String
    public let payload: [UInt8]
    public let signature: Signature?
    public let id: EventID

    /// Canonical encoding without the signature; `id` is its hash. Built on
    /// demand: keeping it would hold every payload twice.
    public var body: [UInt8] {
        EventCodec.encodeBody(namespace: namespace, author: author, timestamp: timestamp, parents: parents, type: type, payload: payload)
    }

    /// Builds an unsigned event. Parents are sorted and deduplicated here, so the
    /// same causal facts always give the same id.
    public init(
        namespace: Namespace,
        author: PublicKey? = nil,
        timestamp: HybridTimestamp,
        parents: [EventID] = [],
        type: String,
        payload: [UInt8],
        limits: EventLimits = .default
    ) throws(ModelError) {
        let parents = Array(Set(parents)).sorted()
        guard parents.count <= EventLimits.parentCountMax else {
            throw ModelError.tooManyParents(count: parents.count, limit: EventLimits.parentCountMax)
        }
        try Self.validate(type: type)
        guard payload.count <= limits.payloadBytesMax else {
            throw ModelError.payloadTooLarge(bytes: payload.count, limit: limits.payloadBytesMax)
        }
        let body = EventCodec.encodeBody(
            namespace: namespace, author: author, timestamp: timestamp,
            parents: parents, type: type, payload: payload)
        self.init(
            namespace: namespace, author: author, timestamp: timestamp, parents: parents,
            type: type, payload: payload, signature: nil, id: EventID(bytes: SHA256.hash(body)))
    }

    init(
        namespace: Namespace, author: PublicKey?, timestamp: HybridTimestamp, parents: [EventID],
        type: String, payload: [UInt8], signature: Signature?, id: EventID
    ) {
        self.namespace = namespace
        self.author = author
        self.timestamp = timestamp
        self.parents = parents
        self.type = type
        self.payload = payload
        self.signature = signature
        self.id = id
    }

    static func validate(type: String) throws(ModelError) {
        let count = type.utf8.count
        guard count > 0 else { throw ModelError.invalidType(type, "is empty") }
        guard count <= EventLimits.typeByteCountMax else {
            throw ModelError.invalidType(type, "is \(count) bytes; limit is \(EventLimits.typeByteCountMax)")
        }
        guard !type.utf8.contains(where: { $0 < 0x20 || $0 == 0x7F }) else {
            throw ModelError.invalidType(type, "has a control character")
        }
    }

    /// What an Ed25519 signature covers: a domain tag, then the id. The tag keeps
    /// an event signature from being replayed as any other message the same key signs.
    public static let signatureDomain = Array("trail.event.v1".utf8)

    public var signedMessage: [UInt8] { Self.signatureDomain + id.bytes }

    /// This event signed by its author. `key` must be the author's key.
    public func signed(by key: SigningKey) -> Event {
        precondition(author == key.publicKey, "an event is signed by its author's key")
        return Event(
            namespace: namespace, author: author, timestamp: timestamp, parents: parents, type: type,
            payload: payload, signature: key.sign(signedMessage), id: id)
    }

    /// This event with a signature made elsewhere (a client's, or one read back
    /// from JSON). It is not checked here: `signatureStatus` checks it, and the
    /// store refuses an event whose signature does not verify.
    public func attaching(signature: Signature) -> Event {
        Event(
            namespace: namespace, author: author, timestamp: timestamp, parents: parents, type: type,
            payload: payload, signature: signature, id: id)
    }

    public enum SignatureStatus: Equatable, Sendable {
        case unsigned, valid, invalid
        /// A signature on an event with no author: nothing to verify it against.
        case signedWithoutAuthor
    }

    /// Checks the signature against the author with OpenSSL.
    public var signatureStatus: SignatureStatus {
        guard let signature else { return .unsigned }
        guard let author else { return .signedWithoutAuthor }
        return author.verify(signature, message: signedMessage) ? .valid : .invalid
    }

    /// The full canonical encoding: body, then the signature section.
    public var encoded: [UInt8] {
        var writer = ByteWriter(capacity: encodedByteCount)
        encode(into: &writer)
        return writer.bytes
    }

    /// Appends the full canonical encoding to `writer` (a record that embeds the event).
    public func encode(into writer: inout ByteWriter) {
        EventCodec.encodeBody(namespace: namespace, author: author, timestamp: timestamp, parents: parents,
                              type: type, payload: payload, into: &writer)
        EventCodec.encodeSignature(signature, into: &writer)
    }

    public var encodedByteCount: Int {
        1 + 1 + namespace.name.utf8.count + 1 + (author == nil ? 0 : PublicKey.byteCount) + 8 + 2
            + EventID.byteCount * parents.count + 1 + type.utf8.count + 4 + payload.count
            + 1 + (signature == nil ? 0 : Signature.byteCount)
    }

    public var description: String {
        "Event(\(id.short) \(namespace) \(type) at \(timestamp), \(parents.count) parents, \(payload.count) bytes\(signature == nil ? "" : ", signed"))"
    }

    /// Decodes untrusted bytes. Never traps: every bad input is a `DecodeError`.
    public init(decoding bytes: [UInt8], limits: EventLimits = .default) throws(DecodeError) {
        self = try EventCodec.decode(bytes, from: 0, limits: limits, storedID: nil, storedNamespace: nil)
    }

    /// Decodes untrusted bytes in place (a record inside a segment). With
    /// `previous` (the event decoded just before, from a run of them), a
    /// namespace or type whose bytes equal its own is reused rather than
    /// parsed and validated again; everything else is checked as always, and
    /// the id is computed from the bytes.
    public init(decoding buffer: UnsafeRawBufferPointer, limits: EventLimits = .default, after previous: Event? = nil) throws(DecodeError) {
        self = try EventCodec.decode(
            buffer, from: 0, limits: limits, storedID: nil, storedNamespace: previous?.namespace, typeHint: previous?.type)
    }

    /// Decodes an event that a store wrote, starting at `offset` of `bytes`, with
    /// the id and namespace it recorded beside it. Every field is still checked,
    /// but the id is not recomputed (verification does that) and a namespace equal
    /// to `storedNamespace` is reused rather than parsed again: replay is the hot path.
    public init(stored bytes: [UInt8], offset: Int, id: EventID, namespace: Namespace) throws(DecodeError) {
        self = try EventCodec.decode(
            bytes, from: offset, limits: EventLimits(payloadBytesMax: EventLimits.payloadBytesCeiling),
            storedID: id, storedNamespace: namespace)
    }

    /// Decodes an event that a store wrote, starting at `offset`, and computes
    /// its id from the bytes (verification: the caller compares it with the
    /// id stored beside it). A namespace equal to `storedNamespace` is reused.
    public init(verifying bytes: [UInt8], offset: Int, namespace: Namespace) throws(DecodeError) {
        self = try EventCodec.decode(
            bytes, from: offset, limits: EventLimits(payloadBytesMax: EventLimits.payloadBytesCeiling),
            storedID: nil, storedNamespace: namespace)
    }

    /// The same, reading a buffer in place (a RocksDB value during replay). A
    /// type equal to `typeHint` (the previous event's, already checked) is
    /// reused rather than validated again.
    public init(stored buffer: UnsafeRawBufferPointer, offset: Int, id: EventID, namespace: Namespace, typeHint: String? = nil) throws(DecodeError) {
        self = try EventCodec.decode(
            buffer, from: offset, limits: EventLimits(payloadBytesMax: EventLimits.payloadBytesCeiling),
            storedID: id, storedNamespace: namespace, typeHint: typeHint)
    }
}
