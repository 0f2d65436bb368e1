import Foundation
import TrailCore

/// Keeps appends from filling the data directory's filesystem. RocksDB that
/// meets a full disk (ENOSPC in a flush or a WAL write) stops every write
/// until the process reopens it; so appends are refused while the free space
/// is under a reserve, which leaves room for the memtables to flush and
/// compactions to run, and are taken again as soon as space returns.
///
/// The free space (`statvfs`) is read at most every `refreshInterval`, less
/// what the memtables hold (they are yet to be flushed to files); between
/// readings, what the writers committed is subtracted too, so a burst
/// cannot run past the reserve before the next reading.
final class DiskSpaceGuard: Sendable {
    let directory: String
    let reserveBytes: UInt64
    /// Bytes in memory that RocksDB will write out (the memtables).
    let unflushedBytes: @Sendable () -> UInt64
    static let refreshInterval: Duration = .milliseconds(200)

    private struct Reading {
        var available: UInt64
        var at: ContinuousClock.Instant
        var writtenSince: UInt64 = 0
    }
    private let reading = Locked<Reading?>(nil)

    init(directory: String, reserveBytes: UInt64, unflushedBytes: @escaping @Sendable () -> UInt64) {
        self.unflushedBytes = unflushedBytes
        self.directory = directory
        self.reserveBytes = reserveBytes
    }

    /// The error to refuse an append with, or nil when there is room.
    func refusal() -> StoreError? {
        guard reserveBytes > 0 else { return nil }
        let now = ContinuousClock.now
        let (available, written) = reading.withLock { reading -> (UInt64?, UInt64) in
            if let current = reading, now - current.at < Self.refreshInterval { return (current.available, current.writtenSince) }
            let unflushed = unflushedBytes()
            let fresh = Self.availableBytes(directory).map { $0 > unflushed ? $0 - unflushed : 0 }
            reading = fresh.map { Reading(available: $0, at: now) }
            return (fresh, 0)
        }
        // A filesystem that cannot be measured is not refused: RocksDB's own error stays the backstop.
        guard let available else { return nil }
        let left = available > written ? available - written : 0
        return left < reserveBytes ? .diskFull(directory: directory, availableBytes: left, reserveBytes: reserveBytes) : nil
    }

    /// Counts bytes committed since the last reading.
    func wrote(_ bytes: Int) {
        guard reserveBytes > 0 else { return }
        reading.withLock { $0?.writtenSince += UInt64(bytes) }
    }

    static func availableBytes(_ directory: String) -> UInt64? {
        var stats = statvfs()
        guard statvfs(directory, &stats) == 0 else { return nil }
        return UInt64(stats.f_bavail) * UInt64(stats.f_frsize)
    }
}

#if canImport(Glibc)
import Glibc
#endif
