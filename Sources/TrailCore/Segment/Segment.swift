/// A contiguous run of one namespace's log, as it travels between relays and
/// into export and backup files: a header naming the namespace and, per origin,
/// the range of origin sequence numbers it carries (the vector it advances),
/// then the records in log order, zstd-compressed, then a SHA-256 checksum.
/// `Docs/FORMAT.md` ("Segment") specifies it byte by byte.
///
/// Event ids are not carried: a receiver must hash every event to verify it
/// anyway, and the hash is the id. Each origin's records are consecutive
/// originSeqs, so a record names only its origin; its originSeq follows.
public struct Segment: Sendable, Hashable {
    public struct Record: Sendable, Hashable {
        public let origin: RelayID
        public let originSeq: UInt64
        public let event: Event

        public init(origin: RelayID, originSeq: UInt64, event: Event) {
            self.origin = origin
            self.originSeq = originSeq
            self.event = event
        }

        public init(event: Event, origin: RelayID, originSeq: UInt64) {
            self.init(origin: origin, originSeq: originSeq, event: event)
        }
    }

    /// The origin sequence numbers of one origin that a segment carries.
    public struct Range: Sendable, Hashable {
        public let origin: RelayID
        public let first: UInt64
        public let last: UInt64
    }

    public static let magic: [UInt8] = Array("TRLS".utf8)
    public static let version: UInt8 = 1
    static let flagZstd: UInt8 = 1
    static let flagAliases: UInt8 = 2
    static let flagsKnown = flagZstd | flagAliases
    /// The largest body a reader expands (frozen for version 1).
    public static let rawByteCountMax = 64 << 20
    public static let checksumByteCount = SHA256.byteCount

    public let namespace: Namespace
    /// The position of the first record in the writer's log (informational: positions are per relay).
    public let firstPosition: UInt64
    public let records: [Record]
    public let ranges: [Range]
    /// The records are aliases (an export's `aliases` file), not log records:
    /// each names a slot filled by an event its log holds under another slot,
    /// and `firstPosition` is the position the alias entered after.
    public let holdsAliases: Bool

    public enum Invalid: Error, Equatable, Sendable, CustomStringConvertible {
        case otherNamespace(index: Int, found: Namespace, expected: Namespace)
        case notConsecutive(index: Int, origin: RelayID, originSeq: UInt64, expected: UInt64)
        case tooManyOrigins(Int)

        public var description: String {
            switch self {
            case .otherNamespace(let index, let found, let expected):
                "record \(index) is in namespace \(found); the segment is \(expected)"
            case .notConsecutive(let index, let origin, let originSeq, let expected):
                "record \(index) of origin \(origin.hex.prefix(16)) has originSeq \(originSeq); expected \(expected)"
            case .tooManyOrigins(let count):
                "\(count) origins; a segment holds at most \(UInt16.max)"
            }
        }
    }

    /// Builds a segment. Every record must be in `namespace`, and each origin's
    /// records must carry consecutive, ascending originSeqs.
    public init(namespace: Namespace, firstPosition: UInt64 = 0, records: [Record], holdsAliases: Bool = false) throws(Invalid) {
        var ranges = [Range]()
        var slot = [RelayID: Int]()
        for (index, record) in records.enumerated() {
            guard record.event.namespace == namespace else {
                throw .otherNamespace(index: index, found: record.event.namespace, expected: namespace)
            }
            if let at = slot[record.origin] {
                let expected = ranges[at].last + 1
                guard record.originSeq == expected else {
                    throw .notConsecutive(index: index, origin: record.origin, originSeq: record.originSeq, expected: expected)
                }
                ranges[at] = Range(origin: record.origin, first: ranges[at].first, last: expected)
            } else {
                guard record.originSeq >= 1 else {
                    throw .notConsecutive(index: index, origin: record.origin, originSeq: 0, expected: 1)
                }
                slot[record.origin] = ranges.count
                ranges.append(Range(origin: record.origin, first: record.originSeq, last: record.originSeq))
            }
        }
        guard ranges.count <= Int(UInt16.max) else { throw .tooManyOrigins(ranges.count) }
        self.namespace = namespace
        self.firstPosition = firstPosition
        self.records = records
        self.ranges = ranges
        self.holdsAliases = holdsAliases
    }

    /// Per origin, the highest originSeq this segment carries: what a relay
    /// holds, at least, once it has applied the segment.
    public var advances: VersionVector {
        VersionVector(Dictionary(uniqueKeysWithValues: ranges.map { ($0.origin, $0.last) }))
    }

    // MARK: Encoding

    /// Bodies shorter than this are stored as they are: zstd's frame header
    /// and its setup would cost more than it saves (a live link's segments
    /// often carry one small event).
    public static let compressedBodyByteCountMin = 256

    /// The segment's bytes. With `compress`, a body of at least
    /// `compressedBodyByteCountMin` bytes is one zstd frame.
    public func encoded(compress: Bool = true, level: Int32 = Zstd.defaultLevel) -> [UInt8] {
        var slot = [RelayID: UInt16]()
        for (index, range) in ranges.enumerated() { slot[range.origin] = UInt16(index) }
        var body = ByteWriter(capacity: records.reduce(0) { $0 + 6 + $1.event.encodedByteCount })
        for record in records {
            body.write(slot[record.origin]!)
            body.write(UInt32(record.event.encodedByteCount))
            record.event.encode(into: &body)
        }
        let compress = compress && body.count >= Self.compressedBodyByteCountMin
        let stored = compress ? body.bytes.withUnsafeBytes { Zstd.compress($0, level: level) } : body.bytes

        let name = namespace.name.utf8
        var writer = ByteWriter(capacity: 64 + name.count + ranges.count * 48 + stored.count)
        writer.write(contentsOf: Self.magic)
        writer.write(Self.version)
        writer.write((compress ? Self.flagZstd : 0) | (holdsAliases ? Self.flagAliases : 0))
        writer.write(UInt8(name.count))
        writer.write(contentsOf: name)
        writer.write(firstPosition)
        writer.write(UInt32(records.count))
        writer.write(UInt16(ranges.count))
        for range in ranges {
            range.origin.write(into: &writer)
            writer.write(range.first)
            writer.write(range.last)
        }
        writer.write(UInt32(body.count))
        writer.write(UInt32(stored.count))
        writer.write(contentsOf: stored)
        let checksum = writer.bytes.withUnsafeBytes { SHA256.hash(buffer: $0) }
        writer.write(contentsOf: checksum)
        return writer.bytes
    }

    // MARK: Decoding

    /// Decodes untrusted bytes: checks the checksum first, then every field,
    /// every event (its id is computed from its bytes), and that the records
    /// match the header's ranges. Never traps: every bad input is a `DecodeError`.
    public init(decoding bytes: [UInt8], limits: EventLimits = .default) throws(DecodeError) {
        let result = bytes.withUnsafeBytes { buffer in
            Result { () throws(DecodeError) in try Segment(decoding: buffer, limits: limits) }
        }
        self = try result.get()
    }

    public init(decoding bytes: UnsafeRawBufferPointer, limits: EventLimits = .default) throws(DecodeError) {
        let context = "segment"
        // Magic and version, then at least the checksum: the header is read from offset 5.
        let smallest = Self.magic.count + 1 + Self.checksumByteCount
        guard bytes.count >= smallest else {
            throw DecodeError(context: context, field: "segment", offset: 0, reason: .truncated(needed: smallest, available: bytes.count))
        }
        var reader = ByteReader(bytes, context: context)
        let magic = try reader.readBytes(4, "magic")
        guard magic.elementsEqual(Self.magic) else {
            throw reader.error("magic", .invalid("is not \"TRLS\": not a Trail segment"), at: 0)
        }
        let version = try reader.readUInt8("version")
        guard version == Self.version else { throw reader.error("version", .unsupportedVersion(version), at: 4) }
        let checksumStart = bytes.count - Self.checksumByteCount
        let computed = SHA256.hash(buffer: UnsafeRawBufferPointer(rebasing: bytes[0..<checksumStart]))
        // A fuzzing build (Tools/fuzz) reads past a wrong checksum, so that
        // mutated inputs reach the decoder behind it instead of stopping here.
        #if !TRAIL_FUZZING
        guard computed.elementsEqual(bytes[checksumStart...]) else {
            throw reader.error("checksum", .checksumMismatch, at: checksumStart)
        }
        #endif
        // The checksum matched: what follows was written by an encoder, but still
        // may come from a hostile one, so every field is checked all the same.
        let header = UnsafeRawBufferPointer(rebasing: bytes[0..<checksumStart])
        reader = ByteReader(header, offset: 5, context: context)
        let flagsOffset = reader.offset
        let flags = try reader.readUInt8("flags")
        guard flags & ~Self.flagsKnown == 0 else {
            throw reader.error("flags", .invalid("has unknown bits \(flags & ~Self.flagsKnown)"), at: flagsOffset)
        }
        let nameLength = Int(try reader.readUInt8("namespace length"))
        let nameOffset = reader.offset
        let nameBytes = try reader.readBytes(nameLength, "namespace")
        guard let name = String(validUTF8: nameBytes), let namespace = try? Namespace(name) else {
            throw reader.error("namespace", .invalid("is not a valid namespace name"), at: nameOffset)
        }
        let firstPosition = try reader.readUInt64("first position")
        let countOffset = reader.offset
        let recordCount = Int(try reader.readUInt32("record count"))
        let originCount = Int(try reader.readUInt16("origin count"))
        guard originCount <= max(recordCount, 0), recordCount == 0 || originCount > 0 else {
            throw reader.error("origin count", .invalid("is \(originCount) for \(recordCount) records"), at: countOffset + 4)
        }
        var ranges = [Range]()
        ranges.reserveCapacity(originCount)
        var total: UInt64 = 0
        for index in 0..<originCount {
            let at = reader.offset
            let origin = try reader.readPublicKey("origin \(index)")
            let first = try reader.readUInt64("origin \(index) first originSeq")
            let last = try reader.readUInt64("origin \(index) last originSeq")
            guard first >= 1, last >= first, last - first < UInt64(recordCount) else {
                throw reader.error("origin \(index) range", .invalid("\(first)...\(last) is not a range of at most \(recordCount) originSeqs from 1"), at: at)
            }
            guard !ranges.contains(where: { $0.origin == origin }) else {
                throw reader.error("origin \(index)", .invalid("repeats an earlier origin"), at: at)
            }
            total += last - first + 1
            ranges.append(Range(origin: origin, first: first, last: last))
        }
        guard total == UInt64(recordCount) else {
            throw reader.error("origin ranges", .invalid("cover \(total) originSeqs; the segment has \(recordCount) records"), at: countOffset)
        }
        let rawOffset = reader.offset
        let rawCount = Int(try reader.readUInt32("body length"))
        guard rawCount <= Self.rawByteCountMax else {
            throw reader.error("body length", .tooLarge(value: rawCount, limit: Self.rawByteCountMax), at: rawOffset)
        }
        let storedCount = Int(try reader.readUInt32("stored body length"))
        let storedOffset = reader.offset
        let stored = UnsafeRawBufferPointer(rebasing: try reader.readBytes(storedCount, "body"))
        try reader.expectEnd()

        let body: [UInt8]
        if flags & Self.flagZstd != 0 {
            do { body = try Zstd.decompress(stored, size: rawCount) } catch {
                throw reader.error("body", .invalid("does not decompress: \(error.description)"), at: storedOffset)
            }
        } else {
            guard storedCount == rawCount else {
                throw reader.error("stored body length", .invalid("is \(storedCount); uncompressed bodies are their body length \(rawCount)"), at: storedOffset - 4)
            }
            body = Array(stored)
        }
        let records = try body.withUnsafeBytes { buffer in
            Result { () throws(DecodeError) in
                try Self.decodeRecords(buffer, count: recordCount, namespace: namespace, ranges: ranges, limits: limits)
            }
        }.get()
        self.namespace = namespace
        self.firstPosition = firstPosition
        self.records = records
        self.ranges = ranges
        self.holdsAliases = flags & Self.flagAliases != 0
    }

    private static func decodeRecords(
        _ body: UnsafeRawBufferPointer, count: Int, namespace: Namespace, ranges: [Range], limits: EventLimits
    ) throws(DecodeError) -> [Record] {
        var reader = ByteReader(body, context: "segment body")
        var next = ranges.map(\.first)
        var records = [Record]()
        records.reserveCapacity(count)
        // The namespace and a type equal to the previous event's are reused rather
        // than parsed again; the id is computed from the bytes, as always.
        var lastType: String?
        for index in 0..<count {
            let at = reader.offset
            let slot = Int(try reader.readUInt16("record \(index) origin"))
            guard slot < ranges.count else {
                throw reader.error("record \(index) origin", .invalid("is \(slot); the header names \(ranges.count) origins"), at: at)
            }
            guard next[slot] <= ranges[slot].last else {
                throw reader.error("record \(index) origin", .invalid("origin \(slot) already has all \(ranges[slot].last - ranges[slot].first + 1) of its records"), at: at)
            }
            let length = Int(try reader.readUInt32("record \(index) length"))
            let eventOffset = reader.offset
            let bytes = try reader.readBytes(length, "record \(index) event")
            let event: Event
            do {
                event = try EventCodec.decode(
                    UnsafeRawBufferPointer(rebasing: bytes), from: 0, limits: limits, storedID: nil, storedNamespace: namespace, typeHint: lastType)
            } catch {
                throw DecodeError(context: "segment body", field: "record \(index) event", offset: eventOffset + error.offset,
                                  reason: .invalid("\(error.field): \(error.description)"))
            }
            guard event.namespace == namespace else {
                throw reader.error("record \(index) event", .invalid("is in namespace \(event.namespace); the segment is \(namespace)"), at: eventOffset)
            }
            lastType = event.type
            records.append(Record(origin: ranges[slot].origin, originSeq: next[slot], event: event))
            next[slot] += 1
        }
        try reader.expectEnd()
        return records
    }
}
