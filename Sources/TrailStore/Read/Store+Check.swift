public import TrailCore

/// A broken invariant found by `Store.check(_:)`: which rule, where.
public struct Violation: Sendable, Hashable, CustomStringConvertible {
    public enum Rule: String, Sendable {
        case densePositions = "dense positions"
        case idIsHash = "id = hash"
        case idIndex = "id index"
        case originIndex = "origin index"
        case causalParents = "parents before children"
        case originOrder = "origin predecessor before successor"
        case vectorMatchesLog = "vector = held set"
        case counts = "event and byte counts"
        case signature = "signature"
        case pending = "pending consistent"
        case trimPoint = "trim point honoured"
        case segment = "segment checksum"
    }

    public let namespace: Namespace
    public let rule: Rule
    public let position: UInt64?
    public let detail: String

    public init(namespace: Namespace, rule: Rule, position: UInt64?, detail: String) {
        self.namespace = namespace
        self.rule = rule
        self.position = position
        self.detail = detail
    }

    public var description: String {
        "\(namespace)\(position.map { " @\($0)" } ?? ""): \(rule.rawValue): \(detail)"
    }
}

extension Store {
    /// Checks every invariant of one namespace's log by reading it through
    /// once, in bounded memory (one record and one counter per origin at a
    /// time). Returns the violations found; an empty array means the log is sound.
    public func check(_ namespace: Namespace, violationCountMax: Int = 100) throws -> [Violation] {
        guard let state = state(of: namespace) else { return [] }
        var violations = [Violation]()
        func report(_ rule: Violation.Rule, _ position: UInt64?, _ detail: String) {
            if violations.count < violationCountMax {
                violations.append(Violation(namespace: namespace, rule: rule, position: position, detail: detail))
            }
        }
        let origins = originRegistry.snapshot
        let lower = Keys.log(shard: state.shard, namespace: state.number, position: state.trimmedThrough + 1)
        // Up to the published end: a group committing meanwhile is not part of this state.
        let upper = Keys.log(shard: state.shard, namespace: state.number, position: state.lastPosition + 1)
        let iterator = database.iterator(.log, lower: lower, upper: upper)
        var expected = state.trimmedThrough + 1
        var lastSeq = [UInt32: UInt64]()
        var count: UInt64 = 0
        var bytes: UInt64 = 0
        // Signatures are checked in batches on every core.
        var signed = [(position: UInt64, event: Event)]()
        func checkSignatures() {
            for (entry, status) in zip(signed, Event.signatureStatuses(signed.map(\.event))) where status == .invalid || status == .signedWithoutAuthor {
                report(.signature, entry.position, "event \(entry.event.id.short) signature does not verify")
            }
            signed.removeAll(keepingCapacity: true)
        }
        // Trimming deletes every position through the trim point.
        let namespaceStart = Keys.namespacePrefix(shard: state.shard, namespace: state.number)
        let belowTrim = database.iterator(.log, lower: namespaceStart, upper: lower)
        if belowTrim.isValid, let position = Keys.position(fromLogKey: belowTrim.key) {
            report(.trimPoint, position, "position \(position) is still held; the log is trimmed through \(state.trimmedThrough)")
        }
        while iterator.isValid {
            let position = Keys.position(fromLogKey: iterator.key) ?? 0
            if position != expected { report(.densePositions, position, "expected position \(expected)") }
            expected = position + 1
            count += 1
            let record: LogRecord
            let event: Event
            do {
                record = try LogRecord.decode(iterator.value)
                event = try record.verifiedEvent()
            } catch {
                report(.idIsHash, position, "record does not decode: \(error)")
                iterator.next()
                continue
            }
            bytes += UInt64(event.encodedByteCount)
            if event.timestamp.rawValue > state.timestampMax {
                report(.counts, position, "timestamp \(event.timestamp) is past the namespace's newest \(HybridTimestamp(rawValue: state.timestampMax))")
            }
            if event.id != record.id { report(.idIsHash, position, "stored id \(record.id.short) but the event hashes to \(event.id.short)") }
            if event.namespace != namespace { report(.idIsHash, position, "event names namespace \(event.namespace)") }
            if event.signature != nil {
                signed.append((position, event))
                if signed.count >= 4096 { checkSignatures() }
            }
            if let index = try database.get(.ids, Keys.id(record.id)).flatMap({ try? IDRecord.decode($0) }) {
                if index != IDRecord(namespace: state.number, position: position, origin: record.origin, originSeq: record.originSeq) {
                    report(.idIndex, position, "id \(record.id.short) indexed at \(index.position) origin \(index.origin)/\(index.originSeq)")
                }
            } else {
                report(.idIndex, position, "id \(record.id.short) missing from the id index")
            }
            if OriginIndex.isCheckpoint(record.originSeq) {
                let key = Keys.origin(shard: state.shard, namespace: state.number, origin: record.origin, originSeq: record.originSeq)
                if try database.get(.origins, key) != Keys.positionValue(position) {
                    report(.originIndex, position, "origin \(record.origin)/\(record.originSeq) not indexed at this position")
                }
            }
            if let previous = lastSeq[record.origin], record.originSeq != previous + 1 {
                report(.originOrder, position, "originSeq \(record.originSeq) follows \(previous) of the same origin")
            } else if lastSeq[record.origin] == nil, state.trimmedThrough == 0, record.originSeq != 1 {
                report(.originOrder, position, "first event of its origin has originSeq \(record.originSeq)")
            }
            lastSeq[record.origin] = record.originSeq
            for parent in event.parents {
                guard let bytes = try database.get(.ids, Keys.id(parent)), let index = try? IDRecord.decode(bytes) else {
                    // A parent trimmed away was before this event; one never held is a violation.
                    if state.trimmedThrough == 0 { report(.causalParents, position, "parent \(parent.short) is not held") }
                    continue
                }
                if index.namespace == state.number, index.position >= position {
                    report(.causalParents, position, "parent \(parent.short) is at later position \(index.position)")
                }
            }
            iterator.next()
        }
        try iterator.checkError()
        checkSignatures()
        if expected != state.lastPosition + 1 {
            report(.densePositions, nil, "log ends at \(expected - 1); state says \(state.lastPosition)")
        }
        // Nothing may sit past the published end except a group committing right now.
        let beyond = database.iterator(.log, lower: upper, upper: Keys.successor(of: Keys.namespacePrefix(shard: state.shard, namespace: state.number)))
        if beyond.isValid, let position = Keys.position(fromLogKey: beyond.key), position != state.lastPosition + 1 {
            report(.densePositions, position, "the log holds position \(position) past its end \(state.lastPosition)")
        }
        for (origin, held) in state.vector where lastSeq[origin] != held && !(lastSeq[origin] == nil && state.trimmedThrough > 0) {
            report(.vectorMatchesLog, nil, "vector says \(origins[Int(origin)].hex.prefix(8)) → \(held); log holds \(lastSeq[origin] ?? 0)")
        }
        for (origin, seq) in lastSeq where state.vector[origin] == nil {
            report(.vectorMatchesLog, nil, "log holds origin \(origin) up to \(seq); vector omits it")
        }
        if count != state.eventCount || bytes != state.byteCount {
            report(.counts, nil, "log holds \(count) events, \(bytes) bytes; state says \(state.eventCount), \(state.byteCount)")
        }
        for event in try pending(in: namespace) {
            if try database.get(.ids, Keys.id(event.id)) != nil {
                report(.pending, nil, "event \(event.id.short) is both pending and in the log")
            }
        }
        return violations
    }
}
