public import Logging
import Foundation
public import TrailCore

/// When an append is acknowledged.
public enum Durability: String, Sendable, CaseIterable, CustomStringConvertible {
    /// The group is in RocksDB's write-ahead log (written, not fsynced): it
    /// survives a crash of the process, not a loss of power.
    case buffered
    /// The write-ahead log is fsynced once per group before any append in it
    /// is acknowledged: survives power loss.
    case synced

    public var description: String { rawValue }
}

public struct StoreConfiguration: Sendable {
    public var durability: Durability
    /// Number of shards, fixed when the data directory is created (later opens
    /// use the stored value). Each shard has one writer thread; 4 keeps a
    /// 2-core machine busy while leaving room for readers.
    public var shardCount: Int
    /// Writer threads; each owns the shards whose number modulo this count is
    /// its own. Fewer writers make bigger groups: with `synced`, each writer
    /// pays its own fsync, and on two cores one writer with groups spanning
    /// every shard measured 1.5× the synced throughput of four (see
    /// Docs/PERFORMANCE.md). Default: half the cores, at least one.
    public var writerCount: Int
    public var limits: EventLimits
    /// Pending events a shard keeps before refusing more; each costs about
    /// 200 bytes of memory for its dependency index, its bytes stay on disk.
    public var pendingCountMax: Int
    /// One group commit takes at most this many events: bounds the write
    /// batch (and so the latency of the appends queued behind it).
    public var groupEventCountMax: Int
    /// A page read returns at most this many events.
    public var pageEventCountMax: Int
    /// Physical time in milliseconds since the Unix epoch; used for local
    /// timestamps and retention by age. Tests hand in a manual clock.
    public var clock: @Sendable () -> UInt64
    public var logger: Logger
    /// RocksDB's block cache; with the memtables this bounds the store's memory.
    public var blockCacheBytes: Int
    /// Memtable size of the log family; the other families get a quarter each.
    /// At least `writeBufferBytesMin`: the id family's hash index takes 2 MiB
    /// of its memtable, and RocksDB aborts the process when a new memtable
    /// starts out full (found by the simulator with 1 MiB).
    public var writeBufferBytes: Int {
        get { writeBufferBytesValue }
        set { writeBufferBytesValue = max(Self.writeBufferBytesMin, newValue) }
    }
    private var writeBufferBytesValue = 32 << 20
    /// Appends are refused (`StoreError.diskFull`) while the data directory's
    /// filesystem, less what the memtables will write out, has less free
    /// space than this: room for a new write-ahead log (RocksDB preallocates
    /// 1.1 × the write buffer) and for compactions, so that RocksDB never
    /// meets a full disk (it would stop every write until the store is
    /// reopened). 0: no reserve.
    public var diskReserveBytes: UInt64 = 128 << 20
    public static let writeBufferBytesMin = 16 << 20

    public init(
        durability: Durability = .buffered,
        shardCount: Int = 4,
        writerCount: Int = StoreConfiguration.defaultWriterCount,
        limits: EventLimits = .default,
        pendingCountMax: Int = 100_000,
        groupEventCountMax: Int = 10_000,
        pageEventCountMax: Int = 10_000,
        clock: @escaping @Sendable () -> UInt64 = StoreConfiguration.systemClock,
        logger: Logger = Logger(label: "trail.store"),
        blockCacheBytes: Int = 32 << 20,
        writeBufferBytes: Int = 32 << 20
    ) {
        precondition(shardCount >= 1 && shardCount <= 1024, "shardCount must be within 1...1024")
        precondition(groupEventCountMax >= 1 && pageEventCountMax >= 1 && pendingCountMax >= 0)
        self.durability = durability
        self.shardCount = shardCount
        self.writerCount = max(1, writerCount)
        self.limits = limits
        self.pendingCountMax = pendingCountMax
        self.groupEventCountMax = groupEventCountMax
        self.pageEventCountMax = pageEventCountMax
        self.clock = clock
        self.logger = logger
        self.blockCacheBytes = blockCacheBytes
        self.writeBufferBytesValue = max(Self.writeBufferBytesMin, writeBufferBytes)
    }

    /// Half the cores, at least one.
    public static var defaultWriterCount: Int { max(1, ProcessInfo.processInfo.activeProcessorCount / 2) }

    @Sendable public static func systemClock() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return UInt64(spec.tv_sec) * 1000 + UInt64(spec.tv_nsec) / 1_000_000
    }
}

#if canImport(Glibc)
import Glibc
#endif
