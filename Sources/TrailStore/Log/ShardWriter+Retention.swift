import Foundation
import Logging
import TrailCore

extension ShardWriter {
    // MARK: Retention

    /// Trims the namespace's log through `through`, or as far as its retention
    /// policy asks when nil. Returns the new trim point.
    func trim(_ number: UInt32, through: UInt64?, _ group: Group) throws(StoreError) -> UInt64 {
        guard var namespace = namespaces[number] else { return 0 }
        let now = configuration.clock()
        let limit = through.map { min($0, namespace.lastPosition) } ?? namespace.lastPosition
        guard limit > namespace.trimmedThrough else { return namespace.trimmedThrough }
        let lower = Keys.log(shard: namespace.shard, namespace: number, position: namespace.trimmedThrough + 1)
        let upper = Keys.log(shard: namespace.shard, namespace: number, position: limit + 1)
        let iterator = database.iterator(.log, lower: lower, upper: upper)
        var trimmed = namespace.trimmedThrough
        var removedBytes: UInt64 = 0
        var removed: UInt64 = 0
        while iterator.isValid, removed < UInt64(Self.trimEventCountMax) {
            let position = Keys.position(fromLogKey: iterator.key) ?? 0
            let record: LogRecord
            let event: Event
            do {
                record = try LogRecord.decode(iterator.value)
                event = try record.event(in: namespace.namespace)
            } catch {
                throw .corrupt(what: "log record \(position) of \(namespace.namespace)", detail: error.description)
            }
            if through == nil {
                let retention = namespace.retention
                let count = namespace.eventCount - removed
                let bytes = namespace.byteCount - removedBytes
                let overCount = retention.eventCountMax.map { count > $0 } ?? false
                let overBytes = retention.byteCountMax.map { bytes > $0 } ?? false
                let overAge = retention.ageMillisecondsMax.map { event.timestamp.physicalMilliseconds + $0 < now } ?? false
                guard overCount || overBytes || overAge else { break }
            }
            group.batch.delete(.ids, Keys.id(record.id), in: database)
            if OriginIndex.isCheckpoint(record.originSeq) {
                group.batch.delete(.origins, Keys.origin(shard: namespace.shard, namespace: number, origin: record.origin, originSeq: record.originSeq), in: database)
            }
            removed += 1
            removedBytes += UInt64(event.encodedByteCount)
            trimmed = position
            group.placed[record.id] = nil
            iterator.next()
        }
        do { try iterator.checkError() } catch { throw .rocksDB(error) }
        guard trimmed > namespace.trimmedThrough else { return namespace.trimmedThrough }
        group.batch.deleteRange(.log, lower, Keys.log(shard: namespace.shard, namespace: number, position: trimmed + 1), in: database)
        namespace.trimmedThrough = trimmed
        namespace.mustPersist = true
        namespace.eventCount -= removed
        namespace.byteCount -= removedBytes
        namespaces[number] = namespace
        group.touch(number)
        logger.debug("trimmed", metadata: ["namespace": "\(namespace.namespace)", "through": "\(trimmed)"])
        return trimmed
    }
}
