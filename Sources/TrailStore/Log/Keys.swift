import TrailCore

/// Key layouts, all big-endian so that RocksDB's byte order is numeric order.
/// `Docs/FORMAT.md` draws each one; the prefixes and widths are frozen for format version 1.
///
/// Every per-namespace key starts with `shard (2) | namespace (4)`: one shard is
/// one contiguous key range in each family, and one namespace's log is one
/// contiguous range inside it, read by one bounded iterator.
enum Keys {
    static let namespacePrefixByteCount = 6

    static func namespacePrefix(shard: UInt16, namespace: UInt32) -> [UInt8] {
        var writer = ByteWriter(capacity: 48)
        writer.write(shard)
        writer.write(namespace)
        return writer.bytes
    }

    static func shardPrefix(_ shard: UInt16) -> [UInt8] {
        var writer = ByteWriter(capacity: 2)
        writer.write(shard)
        return writer.bytes
    }

    /// `log`: shard | namespace | position → `LogRecord`.
    static func log(shard: UInt16, namespace: UInt32, position: UInt64) -> [UInt8] {
        var writer = ByteWriter(capacity: 14)
        writer.write(shard)
        writer.write(namespace)
        writer.write(position)
        return writer.bytes
    }

    static func log(shard: UInt16, namespace: UInt32, position: UInt64, into writer: inout ByteWriter) {
        writer.write(shard)
        writer.write(namespace)
        writer.write(position)
    }

    static func position(fromLogKey key: [UInt8]) -> UInt64? {
        guard key.count == 14 else { return nil }
        return key[6..<14].reduce(0) { $0 << 8 | UInt64($1) }
    }

    /// An `origins` value: the position, 8 bytes.
    static func positionValue(_ position: UInt64) -> [UInt8] {
        var writer = ByteWriter(capacity: 8)
        writer.write(position)
        return writer.bytes
    }

    /// `ids`: event id → `IDRecord`.
    static func id(_ id: EventID) -> [UInt8] { id.bytes }

    /// `origins`: shard | namespace | origin index | originSeq → position.
    static func origin(shard: UInt16, namespace: UInt32, origin: UInt32, originSeq: UInt64) -> [UInt8] {
        var writer = ByteWriter(capacity: 18)
        writer.write(shard)
        writer.write(namespace)
        writer.write(origin)
        writer.write(originSeq)
        return writer.bytes
    }

    /// `origins`: shard | namespace | FFFFFFFF | alias number → `AliasRecord`. No
    /// origin has index FFFFFFFF (`PendingRecord.localOrigin`), so a namespace's
    /// aliases are one range after its origin index entries, numbered from 1.
    static func alias(shard: UInt16, namespace: UInt32, number: UInt64) -> [UInt8] {
        origin(shard: shard, namespace: namespace, origin: aliasOrigin, originSeq: number)
    }

    static let aliasOrigin = UInt32.max

    /// `state`: shard | namespace → `NamespaceRecord`.
    static func state(shard: UInt16, namespace: UInt32) -> [UInt8] {
        namespacePrefix(shard: shard, namespace: namespace)
    }

    /// `pending`: shard | namespace | event id → `PendingRecord`.
    static func pending(shard: UInt16, namespace: UInt32, id: EventID) -> [UInt8] {
        namespacePrefix(shard: shard, namespace: namespace) + id.bytes
    }

    /// `namespaces`: "n" | name → namespace number (4) | shard (2).
    static func namespaceByName(_ namespace: Namespace) -> [UInt8] { [UInt8(ascii: "n")] + Array(namespace.name.utf8) }
    /// `namespaces`: "i" | namespace number → name.
    static func namespaceByNumber(_ number: UInt32) -> [UInt8] {
        var writer = ByteWriter(capacity: 5)
        writer.write(UInt8(ascii: "i"))
        writer.write(number)
        return writer.bytes
    }

    /// `default` (meta): "o" | relay key → origin index (4); "r" | origin index → relay key.
    static func originByKey(_ relay: RelayID) -> [UInt8] { [UInt8(ascii: "o")] + relay.bytes }
    static func originByIndex(_ index: UInt32) -> [UInt8] {
        var writer = ByteWriter(capacity: 5)
        writer.write(UInt8(ascii: "r"))
        writer.write(index)
        return writer.bytes
    }

    static let formatVersion = Array("format-version".utf8)
    static let shardCount = Array("shard-count".utf8)
    static let incarnation = Array("incarnation".utf8)

    /// The least key above every key starting with `prefix`, for exclusive upper bounds.
    static func successor(of prefix: [UInt8]) -> [UInt8] {
        var key = prefix
        while let last = key.last {
            if last < 0xFF {
                key[key.count - 1] = last + 1
                return key
            }
            key.removeLast()
        }
        return [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]
    }
}
