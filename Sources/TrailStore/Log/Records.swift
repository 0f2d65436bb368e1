import TrailCore

/// Values stored in RocksDB. Each has an encode and a decode that checks
/// lengths, so a damaged value is reported as corruption, never misread.

/// `log` value: origin index (4) | originSeq (8) | event id (32) | canonical event bytes.
///
/// The id is stored so that replay need not hash every event again; `check`
/// recomputes it and reports any record whose id is not its hash.
struct LogRecord {
    var origin: UInt32
    var originSeq: UInt64
    var id: EventID
    /// The whole stored value; the event starts at `headerByteCount`.
    var bytes: [UInt8]

    static let headerByteCount = 44

    static func encode(origin: UInt32, originSeq: UInt64, event: Event) -> [UInt8] {
        var writer = ByteWriter(capacity: headerByteCount + event.encodedByteCount)
        encode(origin: origin, originSeq: originSeq, event: event, into: &writer)
        return writer.bytes
    }

    static func encode(origin: UInt32, originSeq: UInt64, event: Event, into writer: inout ByteWriter) {
        writer.write(origin)
        writer.write(originSeq)
        event.id.write(into: &writer)
        event.encode(into: &writer)
    }

    static func decode(_ bytes: [UInt8], context: String = "log record") throws(DecodeError) -> LogRecord {
        var reader = ByteReader(bytes, context: context)
        let origin = try reader.readUInt32("origin")
        let originSeq = try reader.readUInt64("originSeq")
        let id = EventID(bytes: try reader.readBytes(EventID.byteCount, "id"))
        return LogRecord(origin: origin, originSeq: originSeq, id: id, bytes: bytes)
    }

    /// The event's timestamp, read in place: its offset follows from the
    /// namespace length and author kind (Docs/FORMAT.md).
    var timestamp: HybridTimestamp? {
        let start = Self.headerByteCount
        guard bytes.count > start + 2 else { return nil }
        let namespaceLength = Int(bytes[start + 1])
        let authorKind = start + 2 + namespaceLength
        guard authorKind < bytes.count else { return nil }
        let at = authorKind + 1 + (bytes[authorKind] == 1 ? PublicKey.byteCount : 0)
        guard at + 8 <= bytes.count else { return nil }
        return HybridTimestamp(rawValue: bytes[at..<at + 8].reduce(0) { $0 << 8 | UInt64($1) })
    }

    /// Origin, originSeq and event of a stored record, read from `bytes` in
    /// place (an array, or a RocksDB buffer on the replay path).
    static func decodeEvent(_ bytes: UnsafeRawBufferPointer, namespace: Namespace, typeHint: String? = nil) throws(DecodeError) -> (UInt32, UInt64, Event) {
        var reader = ByteReader(bytes, context: "log record")
        let origin = try reader.readUInt32("origin")
        let originSeq = try reader.readUInt64("originSeq")
        let id = EventID(bytes: try reader.readBytes(EventID.byteCount, "id"))
        return (origin, originSeq, try Event(stored: bytes, offset: reader.offset, id: id, namespace: namespace, typeHint: typeHint))
    }

    /// The event, checked field by field, with the stored id.
    func event(in namespace: Namespace) throws(DecodeError) -> Event {
        try Event(stored: bytes, offset: Self.headerByteCount, id: id, namespace: namespace)
    }

    /// The event with its id recomputed from its bytes, for verification.
    func verifiedEvent() throws(DecodeError) -> Event {
        try Event(decoding: Array(bytes[Self.headerByteCount...]), limits: EventLimits(payloadBytesMax: EventLimits.payloadBytesCeiling))
    }
}

/// `ids` value: namespace (4) | position (8) | origin index (4) | originSeq (8).
struct IDRecord: Equatable {
    var namespace: UInt32
    var position: UInt64
    var origin: UInt32
    var originSeq: UInt64

    var encoded: [UInt8] {
        var writer = ByteWriter(capacity: 24)
        encode(into: &writer)
        return writer.bytes
    }

    func encode(into writer: inout ByteWriter) {
        writer.write(namespace)
        writer.write(position)
        writer.write(origin)
        writer.write(originSeq)
    }

    static func decode(_ bytes: [UInt8]) throws(DecodeError) -> IDRecord {
        var reader = ByteReader(bytes, context: "id record")
        let record = IDRecord(
            namespace: try reader.readUInt32("namespace"), position: try reader.readUInt64("position"),
            origin: try reader.readUInt32("origin"), originSeq: try reader.readUInt64("originSeq"))
        try reader.expectEnd()
        return record
    }
}

extension IDRecord {
    /// Decodes in place; nil when the value is not 24 bytes.
    init?(decoding bytes: UnsafeRawBufferPointer) {
        guard bytes.count == 24 else { return nil }
        self.init(namespace: UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt32.self)),
                  position: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt64.self)),
                  origin: UInt32(bigEndian: bytes.loadUnaligned(fromByteOffset: 12, as: UInt32.self)),
                  originSeq: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
    }
}

/// `pending` value: the same layout as a `log` value; origin index is
/// `localOrigin` for an event accepted here, which gets its originSeq on entry.
enum PendingRecord {
    static let localOrigin = UInt32.max

    static func encode(origin: UInt32, originSeq: UInt64, event: Event) -> [UInt8] {
        LogRecord.encode(origin: origin, originSeq: originSeq, event: event)
    }

    static func decode(_ bytes: [UInt8]) throws(DecodeError) -> LogRecord {
        try LogRecord.decode(bytes, context: "pending record")
    }
}

/// An origin slot filled by an event the log already holds under another slot.
///
/// The same event (byte for byte, so the same id) can be accepted by two
/// relays before either hears of the other: a client retried on a second
/// relay, or two agents wrote identical events. Each relay numbers it in its
/// own origin, `(A, 5)` and `(B, 7)`. Whoever holds it under one slot and
/// receives it under the other records an alias: the event stays once in the
/// log, and the second slot counts as held, so that B's later events, which
/// follow `(B, 7)`, are not left waiting for a predecessor that is never
/// "new". Aliases travel between relays like events (a segment record naming
/// the slot, with the event's bytes), so every relay's vector ends the same.
///
/// `origins` value under `Keys.alias`: origin index (4) | originSeq (8) |
/// event position (8) | after (8), where `after` is the log's last position
/// when the alias entered. The slot's own `origins` key maps to `after (8) |
/// event position (8)`: positions of one origin's slots stay ascending, which
/// cursor resumption relies on.
struct AliasRecord: Equatable {
    var origin: UInt32
    var originSeq: UInt64
    var eventPosition: UInt64
    var after: UInt64

    var encoded: [UInt8] {
        var writer = ByteWriter(capacity: 28)
        writer.write(origin)
        writer.write(originSeq)
        writer.write(eventPosition)
        writer.write(after)
        return writer.bytes
    }

    static func decode(_ bytes: [UInt8]) throws(DecodeError) -> AliasRecord {
        var reader = ByteReader(bytes, context: "alias record")
        let record = AliasRecord(
            origin: try reader.readUInt32("origin"), originSeq: try reader.readUInt64("originSeq"),
            eventPosition: try reader.readUInt64("event position"), after: try reader.readUInt64("after"))
        try reader.expectEnd()
        return record
    }

    /// The value of the slot's own `origins` key.
    var slotValue: [UInt8] {
        var writer = ByteWriter(capacity: 16)
        writer.write(after)
        writer.write(eventPosition)
        return writer.bytes
    }

    /// The key under which a pending alias waits in the `pending` family: it
    /// cannot be the event's id, which the log (or a pending event) holds.
    static func pendingKey(of id: EventID, origin: UInt32, originSeq: UInt64) -> EventID {
        var writer = ByteWriter(capacity: 64)
        writer.write(contentsOf: Array("trail-alias".utf8))
        id.write(into: &writer)
        writer.write(origin)
        writer.write(originSeq)
        return EventID(bytes: writer.bytes.withUnsafeBytes { SHA256.hash(buffer: $0) })
    }
}
