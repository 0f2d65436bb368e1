import TrailCore

/// Values stored in RocksDB. Each has an encode and a decode that checks
/// lengths, so a damaged value is reported as corruption, never misread.

/// `log` value: origin index (4) | originSeq (8) | canonical event bytes.
struct LogRecord {
    var origin: UInt32
    var originSeq: UInt64
    var event: [UInt8]

    static let headerByteCount = 12

    static func encode(origin: UInt32, originSeq: UInt64, event: Event) -> [UInt8] {
        var writer = ByteWriter(capacity: headerByteCount + event.encodedByteCount)
        writer.write(origin)
        writer.write(originSeq)
        writer.write(contentsOf: event.body)
        writer.write(contentsOf: event.signature == nil ? [0] : [1] + event.signature!.bytes)
        return writer.bytes
    }

    static func decode(_ bytes: [UInt8]) throws(DecodeError) -> LogRecord {
        var reader = ByteReader(bytes, context: "log record")
        let origin = try reader.readUInt32("origin")
        let originSeq = try reader.readUInt64("originSeq")
        return LogRecord(origin: origin, originSeq: originSeq, event: Array(bytes[headerByteCount...]))
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
        writer.write(namespace)
        writer.write(position)
        writer.write(origin)
        writer.write(originSeq)
        return writer.bytes
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

/// `pending` value: origin index (4; `localOrigin` when the event was accepted
/// here and gets its originSeq on entry) | originSeq (8) | canonical event bytes.
struct PendingRecord {
    static let localOrigin = UInt32.max
    var origin: UInt32
    var originSeq: UInt64
    var event: [UInt8]

    static func encode(origin: UInt32, originSeq: UInt64, event: Event) -> [UInt8] {
        LogRecord.encode(origin: origin, originSeq: originSeq, event: event)
    }

    static func decode(_ bytes: [UInt8]) throws(DecodeError) -> PendingRecord {
        var reader = ByteReader(bytes, context: "pending record")
        let origin = try reader.readUInt32("origin")
        let originSeq = try reader.readUInt64("originSeq")
        return PendingRecord(origin: origin, originSeq: originSeq, event: Array(bytes[LogRecord.headerByteCount...]))
    }
}
