internal import CRocksDB

/// A RocksDB write batch. This type owns the `rocksdb_writebatch_t`.
/// Confined to the thread that builds and writes it.
final class WriteBatch {
    let handle: OpaquePointer

    init() { handle = rocksdb_writebatch_create() }
    deinit { rocksdb_writebatch_destroy(handle) }

    var count: Int { Int(rocksdb_writebatch_count(handle)) }

    /// Empties the batch and keeps its buffer, for a batch reused group after group.
    func clear() { rocksdb_writebatch_clear(handle) }
    /// The batch's bytes as RocksDB will write them to the WAL.
    var byteCount: Int {
        var size = 0
        _ = rocksdb_writebatch_data(handle, &size)
        return size
    }

    func put(_ family: Family, _ key: [UInt8], _ value: [UInt8], in database: Database) {
        key.withUnsafeBufferPointer { key in
            value.withUnsafeBufferPointer { value in
                key.withMemoryRebound(to: CChar.self) { key in
                    value.withMemoryRebound(to: CChar.self) { value in
                        rocksdb_writebatch_put_cf(
                            handle, database.family(family), key.baseAddress, key.count, value.baseAddress, value.count)
                    }
                }
            }
        }
    }

    /// Puts `buffer[0..<split]` as the key and the rest as the value: one
    /// buffer for both, reused across records, saves two allocations per put.
    func put(_ family: Family, _ buffer: [UInt8], keyByteCount split: Int, in database: Database) {
        buffer.withUnsafeBufferPointer { bytes in
            bytes.withMemoryRebound(to: CChar.self) { bytes in
                let base = bytes.baseAddress!
                rocksdb_writebatch_put_cf(
                    handle, database.family(family), base, split, base + split, bytes.count - split)
            }
        }
    }

    func delete(_ family: Family, _ key: [UInt8], in database: Database) {
        key.withUnsafeBufferPointer { key in
            key.withMemoryRebound(to: CChar.self) { key in
                rocksdb_writebatch_delete_cf(handle, database.family(family), key.baseAddress, key.count)
            }
        }
    }

    /// Deletes keys in `[start, end)` with one range tombstone.
    func deleteRange(_ family: Family, _ start: [UInt8], _ end: [UInt8], in database: Database) {
        start.withUnsafeBufferPointer { start in
            end.withUnsafeBufferPointer { end in
                start.withMemoryRebound(to: CChar.self) { start in
                    end.withMemoryRebound(to: CChar.self) { end in
                        rocksdb_writebatch_delete_range_cf(
                            handle, database.family(family), start.baseAddress, start.count, end.baseAddress, end.count)
                    }
                }
            }
        }
    }
}
