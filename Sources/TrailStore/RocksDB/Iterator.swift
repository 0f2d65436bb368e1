internal import CRocksDB

/// A RocksDB iterator bounded to `[lower, upper)`. This type owns the
/// `rocksdb_iterator_t`, its read options and the bound buffers RocksDB points
/// into; keys and values are copied out before the iterator moves.
final class Iterator {
    private let handle: OpaquePointer
    private let readOptions: OpaquePointer
    private let lower: UnsafeMutableBufferPointer<CChar>
    private let upper: UnsafeMutableBufferPointer<CChar>

    /// `totalOrder`: iterate a prefix-hashed family (`ids`) across prefixes, in key order.
    /// `fillCache`: keep the blocks read in the block cache (off for a scan of old
    /// history, which would evict what live readers use and then not be read again).
    init(db: OpaquePointer, family: OpaquePointer, lower: [UInt8], upper: [UInt8], totalOrder: Bool = false, fillCache: Bool = true) {
        readOptions = rocksdb_readoptions_create()
        rocksdb_readoptions_set_verify_checksums(readOptions, 1)
        if !fillCache { rocksdb_readoptions_set_fill_cache(readOptions, 0) }
        if totalOrder { rocksdb_readoptions_set_total_order_seek(readOptions, 1) }
        self.lower = .allocate(capacity: max(lower.count, 1))
        self.upper = .allocate(capacity: max(upper.count, 1))
        for (index, byte) in lower.enumerated() { self.lower[index] = CChar(bitPattern: byte) }
        for (index, byte) in upper.enumerated() { self.upper[index] = CChar(bitPattern: byte) }
        rocksdb_readoptions_set_iterate_lower_bound(readOptions, self.lower.baseAddress, lower.count)
        rocksdb_readoptions_set_iterate_upper_bound(readOptions, self.upper.baseAddress, upper.count)
        handle = rocksdb_create_iterator_cf(db, readOptions, family)
        rocksdb_iter_seek(handle, self.lower.baseAddress, lower.count)
    }

    deinit {
        rocksdb_iter_destroy(handle)
        rocksdb_readoptions_destroy(readOptions)
        lower.deallocate()
        upper.deallocate()
    }

    var isValid: Bool { rocksdb_iter_valid(handle) != 0 }

    func seek(_ key: [UInt8]) {
        key.withUnsafeBufferPointer { key in
            key.withMemoryRebound(to: CChar.self) { rocksdb_iter_seek(handle, $0.baseAddress, $0.count) }
        }
    }

    func next() { rocksdb_iter_next(handle) }

    var key: [UInt8] {
        var length = 0
        let pointer = rocksdb_iter_key(handle, &length)
        return Array(UnsafeRawBufferPointer(start: pointer, count: length))
    }

    /// The big-endian integer in the last 8 bytes of the key (a log key's
    /// position), read without copying the key; nil for a shorter key.
    var keySuffix64: UInt64? {
        var length = 0
        guard let pointer = rocksdb_iter_key(handle, &length), length >= 8 else { return nil }
        return UInt64(bigEndian: UnsafeRawPointer(pointer).loadUnaligned(fromByteOffset: length - 8, as: UInt64.self))
    }

    /// The big-endian integer in the first 8 bytes of the key (an id's head), read without copying.
    var keyPrefix64: UInt64? {
        var length = 0
        guard let pointer = rocksdb_iter_key(handle, &length), length >= 8 else { return nil }
        return UInt64(bigEndian: UnsafeRawPointer(pointer).loadUnaligned(as: UInt64.self))
    }

    var value: [UInt8] {
        var length = 0
        let pointer = rocksdb_iter_value(handle, &length)
        return Array(UnsafeRawBufferPointer(start: pointer, count: length))
    }

    /// Runs `body` over the current value without copying it; the buffer is
    /// valid only inside `body`.
    func withValue<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        var length = 0
        let pointer = rocksdb_iter_value(handle, &length)
        return try body(UnsafeRawBufferPointer(start: pointer, count: length))
    }

    /// An iterator that stopped early because of an error (a bad block checksum, an I/O error) says so here.
    func checkError() throws(RocksDBError) {
        try RocksDBError.check("iterate") { rocksdb_iter_get_error(handle, $0) }
    }
}
