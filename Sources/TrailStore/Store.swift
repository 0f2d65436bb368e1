import Foundation
import Logging
public import TrailCore

/// Trail's sharded, append-only, causally ordered event log on RocksDB.
///
/// Open one `Store` per data directory (RocksDB's lock file refuses a second
/// process). Appends from any number of tasks are grouped per shard into one
/// RocksDB write batch; reads and subscriptions run concurrently with them.
///
/// ```swift
/// let store = try Store(directory: "/var/lib/trail")
/// let event = try Event(namespace: Namespace("chat/room-1"), timestamp: store.now(),
///                       type: "message", payload: Array("hi".utf8))
/// let result = try await store.append(event)
/// for try await stored in store.subscribe(Namespace("chat/room-1")) { print(stored.position) }
/// ```
public final class Store: Sendable {
    /// Data directory format written by this build; a directory with another is refused.
    public static let formatVersion: UInt32 = 1
    public static let identityFileName = "relay.key"
    static let databaseDirectoryName = "rocksdb"

    public let directory: String
    /// This relay's Ed25519 key: its origin identity, kept in `relay.key`.
    public let identity: SigningKey
    public var relayID: RelayID { identity.publicKey }
    /// The relay's earlier keys, each handing over to the next and the last to
    /// `identity` (`relay.rotations`; empty until the first `rotateIdentity`).
    public let rotations: [KeyRotation]
    public let configuration: StoreConfiguration
    public let shardCount: Int

    let database: Database
    let namespaceRegistry: NamespaceRegistry
    let originRegistry: OriginRegistry
    let signals = CommitSignals()
    /// Each namespace's vector as last built, by namespace number, with the
    /// log length it was built at: a namespace's vector only grows, and its
    /// entries sum to `lastPosition + aliasCount`, so an unchanged length
    /// means an unchanged vector. Replication asks for vectors far more
    /// often than logs grow (every ACK, every routing check).
    private let vectorCache = Locked<[UInt32: (length: UInt64, vector: VersionVector)]>([:])
    let writers: [ShardWriter]

    /// The writer that owns `shard`.
    func writer(for shard: Int) -> ShardWriter { writers[shard % writers.count] }
    let currentIncarnation: Locked<Incarnation>
    private let clock: Locked<HybridClock>
    private let isClosed = Locked(false)

    public enum Mode: Sendable {
        /// The one process that appends; creates the directory if absent.
        case primary
        /// Read-only beside a primary in another process (RocksDB's secondary
        /// instance): sees what the primary committed as of the last `refresh()`.
        case secondary
    }

    public let mode: Mode

    /// Opens (creating if absent, as primary) the data directory at `directory`.
    public init(directory: String, configuration: StoreConfiguration = StoreConfiguration(), mode: Mode = .primary) throws {
        self.directory = directory
        self.configuration = configuration
        self.mode = mode
        let writable = mode == .primary
        if writable {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } else if !FileManager.default.fileExists(atPath: directory + "/" + Self.identityFileName) {
            throw StoreError.incompatibleDirectory("\(directory) is not a Trail data directory (no \(Self.identityFileName))")
        }
        if writable { try Self.finishRotation(directory: directory) }
        identity = try Self.loadOrCreateIdentity(directory: directory)
        rotations = try Self.loadRotations(directory: directory, current: identity.publicKey)
        var tuning = DatabaseTuning()
        tuning.blockCacheBytes = configuration.blockCacheBytes
        tuning.logWriteBufferBytes = configuration.writeBufferBytes
        let database: Database
        do {
            let secondary = writable ? nil : NSTemporaryDirectory() + "trail-secondary-\(getpid())-\(UUID().uuidString.prefix(8))"
            database = try Database(path: directory + "/" + Self.databaseDirectoryName, tuning: tuning, secondaryPath: secondary)
        } catch {
            throw StoreError.rocksDB(error)
        }
        self.database = database
        let sync = configuration.durability == .synced
        shardCount = try Self.checkFormat(database, requestedShards: configuration.shardCount, sync: sync, writable: writable)
        namespaceRegistry = try NamespaceRegistry(database: database, shardCount: shardCount, sync: sync)
        originRegistry = try OriginRegistry(database: database, sync: sync)
        let incarnation = try Self.loadIncarnation(database, relay: identity.publicKey)
        currentIncarnation = Locked(incarnation)
        let localOrigin = writable ? try originRegistry.intern(incarnation.origin) : originRegistry.index(of: incarnation.origin) ?? 0
        var writers = [ShardWriter]()
        let writerCount = min(configuration.writerCount, shardCount)
        let diskGuard = DiskSpaceGuard(directory: directory, reserveBytes: configuration.diskReserveBytes) { [database] in
            Family.allCases.reduce(0) { $0 + (database.property("rocksdb.cur-size-all-mem-tables", family: $1).flatMap { UInt64($0) } ?? 0) }
        }
        for index in 0..<writerCount {
            writers.append(try ShardWriter(
                index: index, shards: Array(stride(from: index, to: shardCount, by: writerCount)),
                database: database, namespaces: namespaceRegistry, origins: originRegistry,
                signals: signals, configuration: configuration, localOrigin: localOrigin, writable: writable, diskGuard: diskGuard))
        }
        self.writers = writers
        for writer in writers { writer.siblings.withLock { $0 = writers.map { ShardWriter.Weak(writer: $0) } } }
        clock = Locked(HybridClock())
        configuration.logger.info("store open", metadata: [
            "directory": "\(directory)", "relay": "\(identity.publicKey.hex.prefix(16))",
            "shards": "\(shardCount)", "durability": "\(configuration.durability)",
            "incarnation": "\(incarnation.number)", "origin": "\(incarnation.origin.hex.prefix(16))"])
    }

    private static func loadOrCreateIdentity(directory: String) throws -> SigningKey {
        let path = directory + "/" + identityFileName
        if FileManager.default.fileExists(atPath: path) { return try readSeed(path) }
        var generator = SystemRandomNumberGenerator()
        let key = SigningKey.generate(using: &generator)
        try writeDurably(path, Hex.encode(key.seed) + "\n", permissions: 0o600)
        return key
    }

    /// In a secondary, catches up with the primary's writes and wakes the
    /// subscriptions of namespaces that grew. A secondary has no other way to
    /// learn of new events, so readers beside a live primary call this on a timer.
    public func refresh() throws {
        guard mode == .secondary else { return }
        try database.catchUp()
        try namespaceRegistry.reload()
        try originRegistry.reload()
        for writer in writers {
            for (namespace, last) in try writer.reloadReadOnly(registry: namespaceRegistry) {
                signals.notify(namespace: namespace, lastPosition: last)
            }
        }
    }

    private static func checkFormat(_ database: Database, requestedShards: Int, sync: Bool, writable: Bool) throws(StoreError) -> Int {
        do {
            if let version = try database.get(.meta, Keys.formatVersion) {
                let found = version.reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                guard version.count == 4, found == formatVersion else {
                    throw StoreError.incompatibleDirectory("format version \(found); this build reads \(formatVersion)")
                }
                guard let shards = try database.get(.meta, Keys.shardCount), shards.count == 2 else {
                    throw StoreError.corrupt(what: "meta", detail: "shard count missing")
                }
                return Int(shards.reduce(UInt16(0)) { $0 << 8 | UInt16($1) })
            }
            guard writable else { throw StoreError.incompatibleDirectory("the data directory has no format record yet") }
            var version = ByteWriter()
            version.write(formatVersion)
            var shards = ByteWriter()
            shards.write(UInt16(requestedShards))
            let batch = WriteBatch()
            batch.put(.meta, Keys.formatVersion, version.bytes, in: database)
            batch.put(.meta, Keys.shardCount, shards.bytes, in: database)
            try database.write(batch, sync: true)
            return requestedShards
        } catch let error as RocksDBError {
            throw .rocksDB(error)
        } catch {
            throw error as! StoreError
        }
    }

    /// Stops the shard writers after their queued appends commit, wakes every
    /// subscriber (their sequences end), and closes RocksDB.
    public func close() {
        let wasClosed = isClosed.withLock { closed in
            defer { closed = true }
            return closed
        }
        guard !wasClosed else { return }
        writers.forEach { $0.stop() }
        signals.close()
        // A clean close leaves even `buffered` appends durable against power loss.
        if mode == .primary {
            do { try database.syncWAL() } catch {
                configuration.logger.error("WAL sync at close failed", metadata: ["error": "\(error)"])
            }
        }
        database.close()
        if let secondary = database.secondaryPath { try? FileManager.default.removeItem(atPath: secondary) }
        configuration.logger.info("store closed", metadata: ["directory": "\(directory)"])
    }

    deinit { close() }

    /// Fsyncs the write-ahead log: every append acknowledged before this call
    /// becomes durable against power loss (`synced`), whatever the store's
    /// configured durability. The fsync runs off the cooperative thread pool.
    public func sync() async throws {
        guard !closed else { throw StoreError.closed }
        let database = database
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            DispatchQueue.global().async {
                do throws(RocksDBError) {
                    try database.syncWAL()
                    continuation.resume()
                } catch {
                    continuation.resume(throwing: StoreError.rocksDB(error))
                }
            }
        }
    }

    var closed: Bool { isClosed.withLock { $0 } }

    /// False once `close()` began: appends fail and subscriptions end.
    public var isOpen: Bool { !closed }

    /// A hybrid-clock reading for a new local event.
    public func now() -> HybridTimestamp {
        let physical = configuration.clock()
        return clock.withLock { $0.now(physicalMilliseconds: physical) }
    }

    // MARK: Retention

    public func setRetention(_ retention: Retention, for namespace: Namespace) async throws {
        guard mode == .primary else { throw StoreError.readOnly }
        let entry = try namespaceRegistry.intern(namespace)
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            writer(for: Int(entry.shard)).enqueue(.setRetention(entry.number, namespace, entry.shard, retention, continuation))
        }
    }

    /// Trims the namespace through `position` (or by its retention policy when
    /// nil). Returns the trim point: positions up to it are gone.
    @discardableResult
    public func trim(_ namespace: Namespace, through position: UInt64? = nil) async throws -> UInt64 {
        guard let entry = namespaceRegistry.lookup(namespace) else { throw StoreError.unknownNamespace(namespace) }
        return try await withCheckedThrowingContinuation { continuation in
            writer(for: Int(entry.shard)).enqueue(.trim(entry.number, position, continuation))
        }
    }

    /// Applies every namespace's retention policy now (age limits need this
    /// when a namespace receives no appends). A server calls it on a timer.
    public func enforceRetention() async throws {
        for (namespace, entry) in namespaceRegistry.all {
            let state = writer(for: Int(entry.shard)).published.withLock { $0[entry.number] }
            if let state, !state.retention.keepsAll { try await trim(namespace) }
        }
    }

    // MARK: State

    func state(of namespace: Namespace) -> NamespaceState? {
        guard let entry = namespaceRegistry.lookup(namespace) else { return nil }
        return writer(for: Int(entry.shard)).published.withLock { $0[entry.number] }
    }

    func vector(from indexed: [UInt32: UInt64]) -> VersionVector {
        let origins = originRegistry.snapshot
        var vector = VersionVector()
        for (index, seq) in indexed { vector.advance(origin: origins[Int(index)], to: seq) }
        return vector
    }

    /// The namespace's version vector: exactly the events held (including trimmed ones).
    public func vector(of namespace: Namespace) -> VersionVector {
        guard let state = state(of: namespace) else { return VersionVector() }
        return vector(of: state)
    }

    /// The vector of a state, kept per namespace by log length.
    func vector(of state: NamespaceState) -> VersionVector {
        let length = state.lastPosition + state.aliasCount
        if let cached = vectorCache.withLock({ $0[state.number] }), cached.length == length { return cached.vector }
        let vector = vector(from: state.vector)
        vectorCache.withLock { cache in
            if (cache[state.number]?.length ?? 0) <= length { cache[state.number] = (length, vector) }
        }
        return vector
    }

    public func shard(of namespace: Namespace) -> Int {
        NamespaceRegistry.shard(of: namespace, shardCount: shardCount)
    }

    public func info(_ namespace: Namespace) throws -> NamespaceInfo? {
        guard let entry = namespaceRegistry.lookup(namespace) else { return nil }
        let state = writer(for: Int(entry.shard)).published.withLock { $0[entry.number] }
            ?? NamespaceState(number: entry.number, namespace: namespace, shard: entry.shard)
        return NamespaceInfo(
            namespace: namespace, number: entry.number, shard: Int(entry.shard),
            eventCount: state.eventCount, byteCount: state.byteCount,
            firstPosition: state.eventCount > 0 ? state.trimmedThrough + 1 : nil,
            lastPosition: state.lastPosition, trimmedThrough: state.trimmedThrough,
            vector: vector(from: state.vector), retention: state.retention,
            pendingCount: try pending(in: namespace).count, aliasCount: state.aliasCount)
    }

    /// Every namespace with its statistics, sorted by name.
    public func namespaces(prefix: String = "") throws -> [NamespaceInfo] {
        try namespaceRegistry.all.map(\.0).filter { $0.hasPrefix(prefix) }.sorted().compactMap { try info($0) }
    }

    /// Events of the namespace waiting for a dependency, as stored on disk.
    public func pending(in namespace: Namespace) throws -> [Event] {
        guard let entry = namespaceRegistry.lookup(namespace) else { return [] }
        let prefix = Keys.namespacePrefix(shard: entry.shard, namespace: entry.number)
        let iterator = database.iterator(.pending, lower: prefix, upper: Keys.successor(of: prefix))
        var events = [Event]()
        while iterator.isValid {
            do {
                let event = try PendingRecord.decode(iterator.value).verifiedEvent()
                // A pending alias (its key is not the event's id) waits for a slot, not an event.
                if iterator.key.suffix(EventID.byteCount).elementsEqual(event.id.bytes) { events.append(event) }
            } catch {
                throw StoreError.corrupt(what: "pending event in \(namespace)", detail: "\(error)")
            }
            iterator.next()
        }
        try iterator.checkError()
        return events
    }

    /// Whether any event waits for a dependency (read from memory).
    public var hasPending: Bool { writers.contains { $0.pendingCount.load(ordering: .relaxed) > 0 } }

    /// Up to `limit` ids that pending events wait on as parents and that this
    /// store holds nowhere: what replication asks its peers for (FETCH).
    public func missingParents(limit: Int = 4096) async -> [EventID] {
        var missing = [EventID]()
        for writer in writers where writer.pendingCount.load(ordering: .relaxed) > 0 && missing.count < limit {
            missing += await withCheckedContinuation { continuation in
                writer.enqueue(.missing(limit - missing.count, continuation))
            }
        }
        return missing
    }

    /// RocksDB's own statistics text (`rocksdb.stats`).
    public var rocksDBStatistics: String { database.property("rocksdb.stats") ?? "" }

    /// A RocksDB integer property summed over the column families
    /// (`rocksdb.cur-size-all-mem-tables`, `rocksdb.estimate-num-keys`…); nil if RocksDB has no such property.
    /// `shared`: a property of something the families share (`rocksdb.block-cache-usage`),
    /// read once rather than summed.
    public func rocksDBProperty(_ name: String, shared: Bool = false) -> UInt64? {
        if shared { return database.property(name).flatMap { UInt64($0) } }
        var total: UInt64?
        for family in Family.allCases {
            guard let text = database.property(name, family: family), let value = UInt64(text) else { continue }
            total = (total ?? 0) + value
        }
        return total
    }

    /// RocksDB's estimate of live data bytes on disk.
    public var diskByteCount: UInt64 {
        Family.allCases.reduce(0) { total, family in
            total + (UInt64(database.property("rocksdb.total-sst-files-size", family: family) ?? "0") ?? 0)
        }
    }
}
