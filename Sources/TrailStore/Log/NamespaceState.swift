import TrailCore

/// One namespace's log state as the shard writer keeps it and readers see it
/// after each commit. `vector` is keyed by origin index (see `OriginRegistry`).
struct NamespaceState: Sendable {
    var number: UInt32
    var namespace: Namespace
    var shard: UInt16
    /// The highest position in the log; positions are dense from 1.
    var lastPosition: UInt64 = 0
    /// Positions up to and including this one were trimmed by retention.
    var trimmedThrough: UInt64 = 0
    /// Events and canonical bytes in the log now (not counting trimmed ones).
    var eventCount: UInt64 = 0
    var byteCount: UInt64 = 0
    var retention: Retention = .keepAll
    var vector: [UInt32: UInt64] = [:]
    /// The newest timestamp (raw HLC) of any event that entered this log.
    var timestampMax: UInt64 = 0
    /// Origin slots filled by an event already in the log under another slot
    /// (see `Alias`): the vector counts them, the log does not, so
    /// `vector.values.sum == lastPosition + aliasCount`.
    var aliasCount: UInt64 = 0
    /// `lastPosition` as of the state record on disk. Appends do not rewrite the
    /// record every group: opening the store replays the log after this
    /// position instead (see `ShardWriter.load`). Not part of the record.
    var persistedPosition: UInt64 = 0
    /// Set by changes the log cannot replay (trim, retention): the record is
    /// written in the same batch. Not part of the record.
    var mustPersist = false

    /// A namespace's record is rewritten once this many events were appended
    /// since the last one: bounds the log replayed per namespace at open.
    static let persistEventCountMax: UInt64 = 1024

    /// How far behind the tip a read still fills RocksDB's block cache: live
    /// readers share those blocks; a replay or a catch-up reads older history
    /// once, and would only evict them (measured: a 1M-event replay filled the
    /// whole 32 MiB cache, held in RSS ever after).
    static let cachedTailEventCount: UInt64 = 16_384

    /// Whether a read from `position` on is near enough the tip to be cached.
    func cachesRead(from position: UInt64) -> Bool {
        position >= lastPosition || lastPosition - position <= Self.cachedTailEventCount
    }

    var needsPersist: Bool {
        mustPersist || lastPosition - persistedPosition >= Self.persistEventCountMax
    }

    init(number: UInt32, namespace: Namespace, shard: UInt16) {
        self.number = number
        self.namespace = namespace
        self.shard = shard
    }

    /// 2 adds `aliasCount`; a version 1 record (written before aliases) reads as none.
    static let recordVersion: UInt8 = 2

    /// `state` value: version (2) | lastPosition (8) | trimmedThrough (8) | eventCount (8) |
    /// byteCount (8) | retention age, count, bytes (8 each, 0 = none) | timestampMax (8) | aliasCount (8) |
    /// vector size (4) | (origin index (4) | originSeq (8)) ascending by origin index.
    var encoded: [UInt8] {
        var writer = ByteWriter(capacity: 69 + 12 * vector.count)
        writer.write(Self.recordVersion)
        writer.write(lastPosition)
        writer.write(trimmedThrough)
        writer.write(eventCount)
        writer.write(byteCount)
        writer.write(retention.ageMillisecondsMax ?? 0)
        writer.write(retention.eventCountMax ?? 0)
        writer.write(retention.byteCountMax ?? 0)
        writer.write(timestampMax)
        writer.write(aliasCount)
        writer.write(UInt32(vector.count))
        for origin in vector.keys.sorted() {
            writer.write(origin)
            writer.write(vector[origin]!)
        }
        return writer.bytes
    }

    mutating func decode(_ bytes: [UInt8]) throws(DecodeError) {
        var reader = ByteReader(bytes, context: "namespace state of \(namespace)")
        let version = try reader.readUInt8("version")
        guard version == 1 || version == Self.recordVersion else { throw reader.error("version", .unsupportedVersion(version), at: 0) }
        lastPosition = try reader.readUInt64("lastPosition")
        trimmedThrough = try reader.readUInt64("trimmedThrough")
        eventCount = try reader.readUInt64("eventCount")
        byteCount = try reader.readUInt64("byteCount")
        let age = try reader.readUInt64("retention age")
        let count = try reader.readUInt64("retention count")
        let bytes = try reader.readUInt64("retention bytes")
        retention = Retention(
            ageMillisecondsMax: age == 0 ? nil : age, eventCountMax: count == 0 ? nil : count,
            byteCountMax: bytes == 0 ? nil : bytes)
        timestampMax = try reader.readUInt64("timestampMax")
        aliasCount = version >= 2 ? try reader.readUInt64("aliasCount") : 0
        let size = try reader.readUInt32("vector size")
        vector = [:]
        for _ in 0..<size {
            let origin = try reader.readUInt32("origin")
            vector[origin] = try reader.readUInt64("originSeq")
        }
        try reader.expectEnd()
        guard trimmedThrough <= lastPosition, eventCount == lastPosition - trimmedThrough else {
            throw reader.error("eventCount", .invalid("\(eventCount) events disagree with positions \(trimmedThrough)...\(lastPosition)"))
        }
    }
}
