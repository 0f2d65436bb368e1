import TrailCore

/// Finds where an origin's event sits in a namespace's log.
///
/// The `origins` family is sparse: it holds the position of every
/// `stride`-th originSeq of each origin (1, 65, 129, …). A lookup reads the
/// checkpoint at or below the wanted originSeq and scans the log forward from
/// there, reading only record headers. A dense index would cost a third key
/// per append (measured: the memtable insert was the largest single cost of
/// an append); this costs one key per 64 events and a short scan on the rare
/// paths that need it (resuming a portable cursor, a conflicting originSeq).
enum OriginIndex {
    /// 64: one index key per 64 events of an origin; a lookup scans at most 64
    /// records per origin writing the namespace concurrently.
    static let stride: UInt64 = 64

    static func isCheckpoint(_ originSeq: UInt64) -> Bool { originSeq % stride == 1 }

    /// The position of `(origin, originSeq)` in the committed log, or nil when
    /// it is not there (never held, or trimmed).
    static func position(
        _ database: Database, _ state: NamespaceState, origin: UInt32, originSeq: UInt64
    ) throws(StoreError) -> UInt64? {
        guard originSeq >= 1, originSeq <= state.vector[origin] ?? 0 else { return nil }
        if state.aliasCount > 0, let slot = try aliasSlot(database, state, origin: origin, originSeq: originSeq) {
            return slot.after
        }
        let checkpoint = (originSeq - 1) / stride * stride + 1
        let key = Keys.origin(shard: state.shard, namespace: state.number, origin: origin, originSeq: checkpoint)
        var start = state.trimmedThrough + 1
        do {
            if let bytes = try database.get(.origins, key) {
                guard bytes.count == 8 || bytes.count == 16 else {
                    throw StoreError.corrupt(what: "origin index of \(state.namespace)", detail: "value is \(bytes.count) bytes")
                }
                let position = bytes.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
                if checkpoint == originSeq { return position }
                start = max(start, position)
            }
        } catch let error as RocksDBError {
            throw .rocksDB(error)
        } catch {
            throw error as! StoreError
        }
        guard start <= state.lastPosition else { return nil }
        let iterator = database.iterator(
            .log, lower: Keys.log(shard: state.shard, namespace: state.number, position: start),
            upper: Keys.log(shard: state.shard, namespace: state.number, position: state.lastPosition + 1),
            fillCache: state.cachesRead(from: start))
        while iterator.isValid {
            let (recordOrigin, recordSeq) = iterator.withValue { value -> (UInt32, UInt64) in
                guard value.count >= 12 else { return (UInt32.max, 0) }
                let origin = value[0..<4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                let seq = value[4..<12].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                return (origin, seq)
            }
            if recordOrigin == origin {
                if recordSeq == originSeq { return Keys.position(fromLogKey: iterator.key) }
                if recordSeq > originSeq { return nil }
            }
            iterator.next()
        }
        do { try iterator.checkError() } catch { throw .rocksDB(error) }
        return nil
    }

    /// The position of the event an alias slot names (see `AliasRecord`), or
    /// nil when the slot is not an alias.
    static func aliasedPosition(
        _ database: Database, _ state: NamespaceState, origin: UInt32, originSeq: UInt64
    ) throws(StoreError) -> UInt64? {
        try aliasSlot(database, state, origin: origin, originSeq: originSeq)?.eventPosition
    }

    /// An alias slot's `origins` entry: 16 bytes, where a checkpoint's is 8.
    static func aliasSlot(
        _ database: Database, _ state: NamespaceState, origin: UInt32, originSeq: UInt64
    ) throws(StoreError) -> (after: UInt64, eventPosition: UInt64)? {
        let key = Keys.origin(shard: state.shard, namespace: state.number, origin: origin, originSeq: originSeq)
        let bytes: [UInt8]?
        do { bytes = try database.get(.origins, key) } catch { throw .rocksDB(error) }
        guard let bytes, bytes.count == 16 else { return nil }
        return (bytes[0..<8].reduce(0) { $0 << 8 | UInt64($1) }, bytes[8..<16].reduce(0) { $0 << 8 | UInt64($1) })
    }

    /// The namespace's aliases with numbers above `number`, in the order they entered.
    static func aliases(_ database: Database, _ state: NamespaceState, after number: UInt64 = 0) throws(StoreError) -> [AliasRecord] {
        guard state.aliasCount > number else { return [] }
        let iterator = database.iterator(
            .origins, lower: Keys.alias(shard: state.shard, namespace: state.number, number: number + 1),
            upper: Keys.alias(shard: state.shard, namespace: state.number, number: state.aliasCount + 1))
        var aliases = [AliasRecord]()
        while iterator.isValid {
            do { aliases.append(try AliasRecord.decode(iterator.value)) } catch {
                throw .corrupt(what: "alias record of \(state.namespace)", detail: error.description)
            }
            iterator.next()
        }
        do { try iterator.checkError() } catch { throw .rocksDB(error) }
        return aliases
    }
}
