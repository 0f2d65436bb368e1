import TrailCore

/// Namespaces interned to 32-bit numbers, so that per-namespace keys are short.
/// A new name is written (with the store's durability) before any event names
/// its number, so a number found in a key always resolves.
final class NamespaceRegistry: Sendable {
    struct Entry: Sendable, Hashable {
        let number: UInt32
        let shard: UInt16
    }

    private struct Tables {
        var byName: [Namespace: Entry] = [:]
        var byNumber: [UInt32: Namespace] = [:]
        var next: UInt32 = 1
    }

    private let tables = Locked(Tables())
    private let database: Database
    private let shardCount: Int
    private let sync: Bool

    init(database: Database, shardCount: Int, sync: Bool) throws(StoreError) {
        self.database = database
        self.shardCount = shardCount
        self.sync = sync
        try reload()
    }

    /// Reads the table from disk (at open, and in a secondary after catching up).
    func reload() throws(StoreError) {
        var loaded = Tables()
        let prefix: [UInt8] = [UInt8(ascii: "n")]
        let iterator = database.iterator(.namespaces, lower: prefix, upper: Keys.successor(of: prefix))
        while iterator.isValid {
            let key = iterator.key
            let value = iterator.value
            guard let name = String(validating: key.dropFirst(), as: UTF8.self),
                  let namespace = try? Namespace(name), value.count == 6 else {
                throw StoreError.corrupt(what: "namespace table", detail: "entry \(Hex.encode(key)) is malformed")
            }
            let number = value[0..<4].reduce(0) { $0 << 8 | UInt32($1) }
            let shard = value[4..<6].reduce(0) { $0 << 8 | UInt16($1) }
            guard Int(shard) == Self.shard(of: namespace, shardCount: shardCount) else {
                throw StoreError.corrupt(what: "namespace table", detail: "\(namespace) is on shard \(shard), its hash says otherwise")
            }
            loaded.byName[namespace] = Entry(number: number, shard: shard)
            loaded.byNumber[number] = namespace
            loaded.next = max(loaded.next, number + 1)
            iterator.next()
        }
        do { try iterator.checkError() } catch { throw StoreError.rocksDB(error) }
        let final = loaded
        tables.withLock { $0 = final }
    }

    /// The stable placement of a namespace: the first 8 bytes of SHA-256 of its
    /// name, big-endian, modulo the shard count. Any language can compute it.
    static func shard(of namespace: Namespace, shardCount: Int) -> Int {
        let digest = SHA256.hash(Array(namespace.name.utf8))
        let prefix = digest.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        return Int(prefix % UInt64(shardCount))
    }

    func lookup(_ namespace: Namespace) -> Entry? { tables.withLock { $0.byName[namespace] } }
    func name(of number: UInt32) -> Namespace? { tables.withLock { $0.byNumber[number] } }
    var all: [(Namespace, Entry)] { tables.withLock { $0.byName.map { ($0.key, $0.value) } } }

    /// The namespace's entry, creating and persisting it on first use.
    func intern(_ namespace: Namespace) throws(StoreError) -> Entry {
        if let entry = lookup(namespace) { return entry }
        let result: Result<Entry, StoreError> = tables.withLock { tables in
            if let entry = tables.byName[namespace] { return .success(entry) }
            let entry = Entry(number: tables.next, shard: UInt16(Self.shard(of: namespace, shardCount: shardCount)))
            var value = ByteWriter(capacity: 6)
            value.write(entry.number)
            value.write(entry.shard)
            let batch = WriteBatch()
            batch.put(.namespaces, Keys.namespaceByName(namespace), value.bytes, in: database)
            batch.put(.namespaces, Keys.namespaceByNumber(entry.number), Array(namespace.name.utf8), in: database)
            do throws(RocksDBError) { try database.write(batch, sync: sync) } catch { return .failure(.rocksDB(error)) }
            tables.byName[namespace] = entry
            tables.byNumber[entry.number] = namespace
            tables.next += 1
            return .success(entry)
        }
        return try result.get()
    }
}

/// Relay identities (origins) interned to 32-bit indexes, persisted before first use.
final class OriginRegistry: Sendable {
    private struct Tables {
        var byKey: [RelayID: UInt32] = [:]
        var byIndex: [RelayID] = []
    }

    private let tables = Locked(Tables())
    private let database: Database
    private let sync: Bool

    init(database: Database, sync: Bool) throws(StoreError) {
        self.database = database
        self.sync = sync
        try reload()
    }

    func reload() throws(StoreError) {
        var loaded = Tables()
        let prefix: [UInt8] = [UInt8(ascii: "r")]
        let iterator = database.iterator(.meta, lower: prefix, upper: Keys.successor(of: prefix))
        while iterator.isValid {
            let key = iterator.key
            let index = key.dropFirst().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            guard key.count == 5, index == UInt32(loaded.byIndex.count),
                  let relay = try? RelayID(bytes: iterator.value) else {
                throw StoreError.corrupt(what: "origin table", detail: "entry \(Hex.encode(key)) is malformed or out of order")
            }
            loaded.byIndex.append(relay)
            loaded.byKey[relay] = index
            iterator.next()
        }
        do { try iterator.checkError() } catch { throw StoreError.rocksDB(error) }
        let final = loaded
        tables.withLock { $0 = final }
    }

    func relay(at index: UInt32) -> RelayID? {
        tables.withLock { Int(index) < $0.byIndex.count ? $0.byIndex[Int(index)] : nil }
    }

    func index(of relay: RelayID) -> UInt32? { tables.withLock { $0.byKey[relay] } }

    /// All origins by index: readers take one copy per page instead of locking per event.
    var snapshot: [RelayID] { tables.withLock { $0.byIndex } }

    func intern(_ relay: RelayID) throws(StoreError) -> UInt32 {
        if let index = index(of: relay) { return index }
        let result: Result<UInt32, StoreError> = tables.withLock { tables in
            if let index = tables.byKey[relay] { return .success(index) }
            let index = UInt32(tables.byIndex.count)
            var value = ByteWriter(capacity: 4)
            value.write(index)
            let batch = WriteBatch()
            batch.put(.meta, Keys.originByKey(relay), value.bytes, in: database)
            batch.put(.meta, Keys.originByIndex(index), relay.bytes, in: database)
            do throws(RocksDBError) { try database.write(batch, sync: sync) } catch { return .failure(.rocksDB(error)) }
            tables.byIndex.append(relay)
            tables.byKey[relay] = index
            return .success(index)
        }
        return try result.get()
    }
}
