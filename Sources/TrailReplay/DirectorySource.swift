import Logging
public import TrailCore
public import TrailStore

/// A data directory, read through the store. Opened as a RocksDB secondary by
/// default, so it can be read while `trail serve` owns the directory.
public final class DirectorySource: LogSource {
    public let store: Store
    let ownsStore: Bool

    public var name: String { store.directory }
    public var relayFingerprint: UInt64? { store.relayID.fingerprint }

    /// Reads a store the caller opened (and closes).
    public init(store: Store) {
        self.store = store
        ownsStore = false
    }

    /// Opens `directory` for reading; `close()` closes it.
    public init(directory: String) throws {
        do {
            var logger = Logger(label: "trail.replay")
            logger.logLevel = .warning
            store = try Store(directory: directory, configuration: StoreConfiguration(logger: logger), mode: .secondary)
        } catch {
            throw ReplayError.source(directory, "cannot open as a Trail data directory: \(error)")
        }
        ownsStore = true
    }

    public func namespaces(prefix: String) async throws -> [LogSummary] {
        try store.namespaces(prefix: prefix).map {
            LogSummary(namespace: $0.namespace, eventCount: $0.eventCount, lastPosition: $0.lastPosition,
                       trimmedThrough: $0.trimmedThrough, vector: $0.vector,
                       aliases: $0.aliasCount == 0 ? [] : try store.aliases(in: $0.namespace).map {
                           AliasSlot(origin: $0.origin, originSeq: $0.originSeq, id: $0.id, after: $0.after)
                       })
        }
    }

    public func events(_ namespace: Namespace, after position: UInt64, limit: Int) async throws -> [StoredEvent] {
        // Reading from before the trim point starts at the first event held.
        let trimmed = position == 0 ? try store.info(namespace)?.trimmedThrough ?? 0 : 0
        return try store.read(namespace, after: .position(relay: store.relayID.fingerprint, position: max(position, trimmed)), limit: limit).events
    }

    public func close() async {
        if ownsStore { store.close() }
    }
}
