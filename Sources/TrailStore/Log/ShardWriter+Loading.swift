import Foundation
import Logging
import TrailCore

extension ShardWriter {
    // MARK: Loading

    func load(registry: NamespaceRegistry) throws(StoreError) {
        namespaces = [:]
        pending = PendingIndex()
        for (namespace, entry) in registry.all where shards.contains(Int(entry.shard)) {
            var state = NamespaceState(number: entry.number, namespace: namespace, shard: entry.shard)
            do {
                if let bytes = try database.get(.state, Keys.state(shard: entry.shard, namespace: entry.number)) {
                    do { try state.decode(bytes) } catch { throw StoreError.corrupt(what: "namespace state", detail: error.description) }
                }
            } catch let error as RocksDBError {
                throw .rocksDB(error)
            } catch {
                throw error as! StoreError
            }
            state.persistedPosition = state.lastPosition
            try replayLogTail(&state)
            namespaces[entry.number] = state
        }
        var loaded = [PendingEntry]()
        for shard in shards {
            let prefix = Keys.shardPrefix(UInt16(shard))
            let iterator = database.iterator(.pending, lower: prefix, upper: Keys.successor(of: prefix))
            while iterator.isValid {
                let key = iterator.key
                guard key.count == Keys.namespacePrefixByteCount + EventID.byteCount else {
                    throw StoreError.corrupt(what: "pending key", detail: Hex.encode(key))
                }
                let number = key[2..<6].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                let record: LogRecord
                let event: Event
                do {
                    record = try PendingRecord.decode(iterator.value)
                    event = try record.verifiedEvent()
                } catch {
                    throw StoreError.corrupt(what: "pending event \(Hex.encode(key.suffix(32)))", detail: error.description)
                }
                let keyID = EventID(bytes: key.suffix(EventID.byteCount))
                if keyID == event.id {
                    loaded.append(PendingEntry(id: event.id, namespace: number, origin: record.origin, originSeq: record.originSeq, parents: event.parents))
                } else if keyID == AliasRecord.pendingKey(of: event.id, origin: record.origin, originSeq: record.originSeq) {
                    loaded.append(PendingEntry(id: keyID, namespace: number, origin: record.origin, originSeq: record.originSeq,
                                               parents: [event.id], aliasOf: event.id))
                } else {
                    throw StoreError.corrupt(what: "pending event", detail: "key \(keyID) holds event \(event.id)")
                }
                iterator.next()
            }
            do { try iterator.checkError() } catch { throw StoreError.rocksDB(error) }
        }
        let group = Group()
        readyAtOpen = []
        for entry in loaded {
            // Registered on its first missing dependency; one with none is
            // entered by the first job (`recheckPending`), which also reports
            // a dependency that could not be read.
            if let dependency = (try? firstMissing(entry, group)) ?? nil {
                pending.add(entry, waitingOn: dependency)
            } else {
                pending.add(entry)
                readyAtOpen.append(entry.id)
            }
        }
        pendingCount.store(pending.count, ordering: .relaxed)
        let snapshot = namespaces
        published.withLock { $0 = snapshot }
    }

    /// Brings a state read from disk up to the log: the record lags by up to
    /// `persistEventCountMax` events, and each log record carries what the
    /// state needs (position, origin, originSeq, size).
    func replayLogTail(_ state: inout NamespaceState) throws(StoreError) {
        let lower = Keys.log(shard: state.shard, namespace: state.number, position: state.lastPosition + 1)
        let upper = Keys.successor(of: Keys.namespacePrefix(shard: state.shard, namespace: state.number))
        let iterator = database.iterator(.log, lower: lower, upper: upper)
        while iterator.isValid {
            guard let position = Keys.position(fromLogKey: iterator.key), position == state.lastPosition + 1 else {
                throw .corrupt(what: "log of \(state.namespace)", detail: "after position \(state.lastPosition) comes key \(Hex.encode(iterator.key))")
            }
            let record: LogRecord
            do { record = try LogRecord.decode(iterator.value) } catch {
                throw .corrupt(what: "log record \(position) of \(state.namespace)", detail: error.description)
            }
            guard record.originSeq == (state.vector[record.origin] ?? 0) + 1 else {
                throw .corrupt(what: "log record \(position) of \(state.namespace)", detail: "originSeq \(record.originSeq) does not follow \(state.vector[record.origin] ?? 0)")
            }
            state.lastPosition = position
            state.vector[record.origin] = record.originSeq
            state.eventCount += 1
            state.byteCount += UInt64(record.bytes.count - LogRecord.headerByteCount)
            guard let timestamp = record.timestamp else {
                throw .corrupt(what: "log record \(position) of \(state.namespace)", detail: "too short to hold a timestamp")
            }
            state.timestampMax = max(state.timestampMax, timestamp.rawValue)
            iterator.next()
        }
        do { try iterator.checkError() } catch { throw .rocksDB(error) }
    }
}
