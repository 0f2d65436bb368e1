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
        let checkpoint = (originSeq - 1) / stride * stride + 1
        let key = Keys.origin(shard: state.shard, namespace: state.number, origin: origin, originSeq: checkpoint)
        var start = state.trimmedThrough + 1
        do {
            if let bytes = try database.get(.origins, key) {
                guard bytes.count == 8 else {
                    throw StoreError.corrupt(what: "origin index of \(state.namespace)", detail: "value is \(bytes.count) bytes")
                }
                let position = bytes.reduce(0) { $0 << 8 | UInt64($1) }
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
            upper: Keys.log(shard: state.shard, namespace: state.number, position: state.lastPosition + 1))
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
}
