import CRocksDB
import Foundation

/// The baseline: the same RocksDB library through the same C API, with the
/// same options Trail passes (WAL on, bloom filters, 32 MiB memtables, block
/// cache), writing one key per event. Whatever Trail adds on top — ids,
/// indexes, causal checks, group commit — shows up as the ratio.
final class RawRocksDB {
    let db: OpaquePointer
    let options: OpaquePointer
    let writeOptions: OpaquePointer
    let readOptions: OpaquePointer
    var families: [OpaquePointer] = []
    let path: String

    /// Opens `path` with the given column family names (Trail's, to read its directory; or just "default").
    init(path: String, families names: [String] = ["default"], sync: Bool) {
        self.path = path
        options = rocksdb_options_create()
        rocksdb_options_set_create_if_missing(options, 1)
        rocksdb_options_set_create_missing_column_families(options, 1)
        rocksdb_options_set_max_background_jobs(options, 2)
        rocksdb_options_set_write_buffer_size(options, 32 << 20)
        rocksdb_options_set_max_write_buffer_number(options, 3)
        rocksdb_options_set_compression(options, Int32(rocksdb_no_compression))
        rocksdb_options_set_bottommost_compression(options, Int32(rocksdb_zstd_compression))
        let table = rocksdb_block_based_options_create()
        rocksdb_block_based_options_set_block_cache(table, rocksdb_cache_create_lru(32 << 20))
        rocksdb_block_based_options_set_filter_policy(table, rocksdb_filterpolicy_create_bloom(10))
        rocksdb_options_set_block_based_table_factory(options, table)
        writeOptions = rocksdb_writeoptions_create()
        rocksdb_writeoptions_set_sync(writeOptions, sync ? 1 : 0)
        readOptions = rocksdb_readoptions_create()
        var error: UnsafeMutablePointer<CChar>?
        let cNames = names.map { strdup($0) }
        defer { cNames.forEach { free($0) } }
        var handles = [OpaquePointer?](repeating: nil, count: names.count)
        let rootOptions = options
        let familyOptions = names.map { _ in Optional(rootOptions) }
        db = rocksdb_open_column_families(
            rootOptions, path, Int32(names.count), cNames.map { UnsafePointer($0) }, familyOptions, &handles, &error)!
        if let error { fatalError("raw open: \(String(cString: error))") }
        families = handles.map { $0! }
    }

    /// Compacts family `index` fully, so that readers measured afterwards meet
    /// the same file layout and no background compaction.
    func compact(family index: Int) {
        rocksdb_compact_range_cf(db, families[index], nil, 0, nil, 0)
    }

    func close() {
        families.forEach { rocksdb_column_family_handle_destroy($0) }
        rocksdb_close(db)
    }

    /// Writes one batch of `keys`/`values` to the first family.
    func write(keys: [[UInt8]], values: [[UInt8]]) {
        let batch = rocksdb_writebatch_create()
        for (key, value) in zip(keys, values) {
            key.withUnsafeBufferPointer { k in
                value.withUnsafeBufferPointer { v in
                    k.withMemoryRebound(to: CChar.self) { k in
                        v.withMemoryRebound(to: CChar.self) { v in
                            rocksdb_writebatch_put_cf(batch, families[0], k.baseAddress, k.count, v.baseAddress, v.count)
                        }
                    }
                }
            }
        }
        var error: UnsafeMutablePointer<CChar>?
        rocksdb_write(db, writeOptions, batch, &error)
        if let error { fatalError("raw write: \(String(cString: error))") }
        rocksdb_writebatch_destroy(batch)
    }

    /// Iterates every key of family `index`, copying each key and value out
    /// (as any reader must before the iterator moves). Returns the count.
    func scan(family index: Int) -> (count: Int, bytes: Int) {
        let iterator = rocksdb_create_iterator_cf(db, readOptions, families[index])!
        defer { rocksdb_iter_destroy(iterator) }
        rocksdb_iter_seek_to_first(iterator)
        var count = 0
        var bytes = 0
        while rocksdb_iter_valid(iterator) != 0 {
            var keyLength = 0
            var valueLength = 0
            let key = rocksdb_iter_key(iterator, &keyLength)
            let value = rocksdb_iter_value(iterator, &valueLength)
            let keyCopy = Array(UnsafeRawBufferPointer(start: key, count: keyLength))
            let valueCopy = Array(UnsafeRawBufferPointer(start: value, count: valueLength))
            bytes += keyCopy.count + valueCopy.count
            count += 1
            rocksdb_iter_next(iterator)
        }
        return (count, bytes)
    }
}
