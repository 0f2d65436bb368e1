internal import CRocksDB
import Foundation

/// The column families of a Trail data directory; `Docs/FORMAT.md` gives each one's keys.
enum Family: Int, CaseIterable {
    case meta, namespaces, log, ids, origins, state, pending

    var name: String {
        switch self {
        case .meta: "default"
        case .namespaces: "namespaces"
        case .log: "log"
        case .ids: "ids"
        case .origins: "origins"
        case .state: "state"
        case .pending: "pending"
        }
    }
}

/// Memory and durability settings that reach RocksDB. Each is passed
/// explicitly rather than left to the library's defaults.
struct DatabaseTuning: Sendable {
    /// Shared LRU cache for data, index and filter blocks.
    var blockCacheBytes = 32 << 20
    /// Memtable size of the `log` family; the others get a quarter each.
    var logWriteBufferBytes = 32 << 20
    /// At most this many memtables per family before writes wait for a flush.
    var writeBufferCountMax: Int32 = 3
    /// Caps WAL growth so that old memtables are flushed and the WAL recycled.
    var walBytesMax: UInt64 = 256 << 20
    /// All memtables of all families together: RocksDB flushes the largest
    /// when the sum passes this, which bounds memtable memory however many
    /// families are busy.
    var memtableBytesMax = 96 << 20
}

/// An open RocksDB database with Trail's column families. This type owns the
/// `rocksdb_t`, its options, cache and family handles, and frees them in `close()`.
///
/// RocksDB's `DB` is safe for concurrent reads and writes from many threads,
/// which is why this class is `@unchecked Sendable`; it holds no Swift mutable state
/// besides `isClosed`, which only `close()` sets, after every user has stopped.
final class Database: @unchecked Sendable {
    private var db: OpaquePointer?
    private let options: OpaquePointer
    private let familyOptions: [OpaquePointer]
    private let tableOptions: OpaquePointer
    private let logTableOptions: OpaquePointer
    private let cache: OpaquePointer
    private let filter: OpaquePointer
    private var families: [OpaquePointer]
    private let writeBuffered: OpaquePointer
    private let writeSynced: OpaquePointer
    private let readOptions: OpaquePointer
    let path: String

    /// Where a secondary instance keeps its own info log; nil for the primary.
    let secondaryPath: String?

    /// Opens the primary instance, or with `secondaryPath` a read-only secondary
    /// that follows a primary owned by another process (`catchUp()`).
    init(path: String, tuning: DatabaseTuning = DatabaseTuning(), secondaryPath: String? = nil) throws(RocksDBError) {
        self.path = path
        self.secondaryPath = secondaryPath
        options = rocksdb_options_create()
        if secondaryPath != nil { rocksdb_options_set_max_open_files(options, -1) }
        rocksdb_options_set_create_if_missing(options, 1)
        rocksdb_options_set_create_missing_column_families(options, 1)
        rocksdb_options_set_paranoid_checks(options, 1)
        rocksdb_options_set_max_background_jobs(options, 2)
        // The `ids` family's hash memtable takes one inserting thread at a time.
        rocksdb_options_set_allow_concurrent_memtable_write(options, 0)
        rocksdb_options_set_max_total_wal_size(options, tuning.walBytesMax)
        rocksdb_options_set_db_write_buffer_size(options, tuning.memtableBytesMax)
        rocksdb_options_set_keep_log_file_num(options, 4)
        rocksdb_options_set_info_log_level(options, 2)  // warnings and above in RocksDB's LOG

        cache = rocksdb_cache_create_lru(tuning.blockCacheBytes)
        // 16 bits a key: a new event's id is looked up before it is written, and
        // with 10 bits about 1% of those lookups passed the filter and read a
        // data block - after a million appends those blocks filled the whole
        // block cache (measured: 33 MiB; 6 MiB at 16 bits, ~0.05% false positives).
        filter = rocksdb_filterpolicy_create_bloom(16)
        tableOptions = rocksdb_block_based_options_create()
        rocksdb_block_based_options_set_block_cache(tableOptions, cache)
        rocksdb_block_based_options_set_filter_policy(tableOptions, filter)
        // Index and filter blocks stay with their table readers, outside the block
        // cache: every append looks up its id, and a filter evicted by data blocks
        // turned each of those lookups into a disk read (measured: 15% of an
        // append in the kernel copying blocks). They cost about 2 bytes per
        // event for the id filter, plus the index, well inside the memory budget.
        rocksdb_block_based_options_set_cache_index_and_filter_blocks(tableOptions, 0)
        // The log is read by range and by positions the id index vouches for, so a
        // bloom filter would never say "absent": none, and 16 KiB blocks for a
        // quarter of the index memory (the log holds most of the bytes).
        logTableOptions = rocksdb_block_based_options_create()
        rocksdb_block_based_options_set_block_cache(logTableOptions, cache)
        rocksdb_block_based_options_set_block_size(logTableOptions, 16 << 10)
        rocksdb_block_based_options_set_cache_index_and_filter_blocks(logTableOptions, 0)

        var perFamily = [OpaquePointer]()
        for family in Family.allCases {
            let familyOptions = rocksdb_options_create_copy(options)!
            rocksdb_options_set_block_based_table_factory(familyOptions, family == .log ? logTableOptions : tableOptions)
            let buffer = family == .log ? tuning.logWriteBufferBytes : tuning.logWriteBufferBytes / 4
            rocksdb_options_set_write_buffer_size(familyOptions, buffer)
            rocksdb_options_set_max_write_buffer_number(familyOptions, tuning.writeBufferCountMax)
            rocksdb_options_set_level_compaction_dynamic_level_bytes(familyOptions, 1)
            // Event records compress well (JSON payloads, repeated namespaces); zstd is
            // kept for the bottom level where most bytes live, LZ4-free levels above stay fast.
            rocksdb_options_set_compression(familyOptions, Int32(rocksdb_no_compression))
            rocksdb_options_set_bottommost_compression(familyOptions, Int32(rocksdb_zstd_compression))
            if family == .ids {
                // Ids are random, so each insert into a skiplist memtable walks its
                // whole height through cold cache lines; the id index was measured at
                // half the cost of an append. Ids are looked up whole and scanned in
                // order only by `check` (a total-order iterator), so a hash table of short lists keyed by the first
                // 4 bytes serves them at constant cost (measured: +40% appends on one
                // namespace). A memtable bloom filter answers the common "not held"
                // lookup of a new event without touching the lists.
                rocksdb_options_set_prefix_extractor(familyOptions, rocksdb_slicetransform_create_fixed_prefix(4))
                rocksdb_options_set_hash_link_list_rep(familyOptions, 1 << 18)
                rocksdb_options_set_memtable_prefix_bloom_size_ratio(familyOptions, 0.1)
                rocksdb_options_set_memtable_whole_key_filtering(familyOptions, 1)
                // Flushing a hash memtable sorts it first (the family's largest
                // background cost): with three memtables a burst of appends filled
                // them faster than they flushed, and single writes stalled 300–430 ms
                // (measured in `trail-bench append`). Six absorb the burst; the
                // database-wide memtable cap above still bounds their memory.
                rocksdb_options_set_max_write_buffer_number(familyOptions, 6)
            }
            perFamily.append(familyOptions)
        }
        familyOptions = perFamily

        writeBuffered = rocksdb_writeoptions_create()
        rocksdb_writeoptions_set_sync(writeBuffered, 0)
        rocksdb_writeoptions_disable_WAL(writeBuffered, 0)
        writeSynced = rocksdb_writeoptions_create()
        rocksdb_writeoptions_set_sync(writeSynced, 1)
        rocksdb_writeoptions_disable_WAL(writeSynced, 0)
        readOptions = rocksdb_readoptions_create()
        rocksdb_readoptions_set_verify_checksums(readOptions, 1)

        let names = Family.allCases.map { strdup($0.name) }
        defer { names.forEach { free($0) } }
        var handles = [OpaquePointer?](repeating: nil, count: Family.allCases.count)
        let constNames = names.map { UnsafePointer<CChar>($0) }
        let constOptions = familyOptions.map { Optional($0) }
        let rootOptions = options
        do {
            db = try RocksDBError.check("open(\(path))") { error in
                if let secondaryPath {
                    rocksdb_open_as_secondary_column_families(
                        rootOptions, path, secondaryPath, Int32(names.count), constNames, constOptions, &handles, error)
                } else {
                    rocksdb_open_column_families(
                        rootOptions, path, Int32(names.count), constNames, constOptions, &handles, error)
                }
            }
        } catch {
            families = []
            Self.destroyOptions(options, familyOptions, [tableOptions, logTableOptions], cache, filter, writeBuffered, writeSynced, readOptions)
            throw error
        }
        families = handles.map { $0! }
    }

    private static func destroyOptions(
        _ options: OpaquePointer, _ familyOptions: [OpaquePointer], _ tableOptions: [OpaquePointer],
        _ cache: OpaquePointer, _ filter: OpaquePointer, _ writeBuffered: OpaquePointer,
        _ writeSynced: OpaquePointer, _ readOptions: OpaquePointer
    ) {
        rocksdb_writeoptions_destroy(writeBuffered)
        rocksdb_writeoptions_destroy(writeSynced)
        rocksdb_readoptions_destroy(readOptions)
        familyOptions.forEach { rocksdb_options_destroy($0) }
        rocksdb_options_destroy(options)
        // The table options own the filter policy once it is set on them.
        _ = filter
        tableOptions.forEach { rocksdb_block_based_options_destroy($0) }
        rocksdb_cache_destroy(cache)
    }

    deinit { close() }

    var isOpen: Bool { db != nil }

    /// Closes the database. Every iterator and batch must be gone; callers stop their writers first.
    func close() {
        guard let handle = db else { return }
        families.forEach { rocksdb_column_family_handle_destroy($0) }
        families = []
        rocksdb_close(handle)
        db = nil
        Self.destroyOptions(options, familyOptions, [tableOptions, logTableOptions], cache, filter, writeBuffered, writeSynced, readOptions)
    }

    private var handle: OpaquePointer {
        guard let db else { preconditionFailure("RocksDB used after close") }
        return db
    }

    /// Fsyncs the WAL: every write before this call becomes durable against power loss.
    func syncWAL() throws(RocksDBError) {
        try RocksDBError.check("flush_wal(sync)") { rocksdb_flush_wal(handle, 1, $0) }
    }

    /// A secondary instance replays what the primary wrote since the last call.
    func catchUp() throws(RocksDBError) {
        try RocksDBError.check("try_catch_up_with_primary") { rocksdb_try_catch_up_with_primary(handle, $0) }
    }

    func family(_ family: Family) -> OpaquePointer { families[family.rawValue] }

    func get(_ family: Family, _ key: [UInt8]) throws(RocksDBError) -> [UInt8]? {
        do {
            return try key.withUnsafeBytes { key in try get(family, key: key) }
        } catch {
            throw error as! RocksDBError
        }
    }

    func get(_ family: Family, key: UnsafeRawBufferPointer) throws(RocksDBError) -> [UInt8]? {
        let slice = try RocksDBError.check("get") { error in
            rocksdb_get_pinned_cf(
                handle, readOptions, self.family(family), key.baseAddress?.assumingMemoryBound(to: CChar.self), key.count, error)
        }
        guard let slice else { return nil }
        defer { rocksdb_pinnableslice_destroy(slice) }
        var length = 0
        guard let value = rocksdb_pinnableslice_value(slice, &length) else { return nil }
        return Array(UnsafeRawBufferPointer(start: value, count: length))
    }

    func put(_ family: Family, _ key: [UInt8], _ value: [UInt8], sync: Bool) throws(RocksDBError) {
        let batch = WriteBatch()
        batch.put(family, key, value, in: self)
        try write(batch, sync: sync)
    }

    func write(_ batch: WriteBatch, sync: Bool) throws(RocksDBError) {
        try RocksDBError.check(sync ? "write(sync)" : "write") { error in
            rocksdb_write(handle, sync ? writeSynced : writeBuffered, batch.handle, error)
        }
    }

    /// An iterator over `family` restricted to keys in `[lower, upper)`.
    func iterator(_ family: Family, lower: [UInt8], upper: [UInt8], fillCache: Bool = true) -> Iterator {
        Iterator(db: handle, family: self.family(family), lower: lower, upper: upper, totalOrder: family == .ids, fillCache: fillCache)
    }

    func property(_ name: String, family: Family? = nil) -> String? {
        let value: UnsafeMutablePointer<CChar>?
        if let family {
            value = rocksdb_property_value_cf(handle, self.family(family), name)
        } else {
            value = rocksdb_property_value(handle, name)
        }
        guard let value else { return nil }
        defer { rocksdb_free(value) }
        return String(cString: value)
    }
}
