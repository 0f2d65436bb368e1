import Dispatch
import Foundation
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
        /// RocksDB refused to read stored bytes (a block checksum, an I/O error).
        case storage = "storage readable"
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
    /// Checks every invariant of one namespace's log (see `check(_:violationCountMax:)` for several).
    public func check(_ namespace: Namespace, violationCountMax: Int = 100) throws -> [Violation] {
        try check([namespace], violationCountMax: violationCountMax)[namespace] ?? []
    }

    /// Checks every invariant of the namespaces' logs, each read through
    /// once in key order, in bounded memory, and returns the violations
    /// found per namespace (an empty array: the log is sound).
    ///
    /// Records are decoded, re-hashed and their signatures verified in
    /// batches on every core. The id index is checked without a lookup per
    /// event: one scan of it sums a digest of each entry per namespace, and
    /// each log pass sums the same digest of what the index should hold;
    /// only when the two disagree is the log read again with a lookup per
    /// event, to name the entries at fault. A parent is looked up in the
    /// events the pass saw recently, and in the index only when not there.
    public func check(
        _ namespaces: [Namespace], violationCountMax: Int = 100, progress: ((UInt64) -> Void)? = nil
    ) throws -> [Namespace: [Violation]] {
        var results = [Namespace: [Violation]]()
        let states = namespaces.compactMap { namespace in state(of: namespace).map { (namespace, $0) } }
        for namespace in namespaces where state(of: namespace) == nil { results[namespace] = [] }
        guard !states.isEmpty else { return results }
        // The index scan runs beside the log passes: they leave a core idle
        // while they iterate, and the scan needs only that.
        let scan = IndexScan(database: database, namespaces: Set(states.map(\.1.number)))
        let scanner = Thread { scan.run() }
        scanner.start()
        // A failing pass still waits for the scan: it reads the store's database.
        defer { _ = try? scan.wait() }
        var checked = [(Namespace, NamespaceState, IndexDigest)]()
        var done: UInt64 = 0
        for (namespace, state) in states {
            var pass = LogCheck(store: self, state: state, violationCountMax: violationCountMax)
            try pass.run { done += $0; progress?(done) }
            results[namespace] = pass.violations
            checked.append((namespace, state, pass.digest))
        }
        let digests: [UInt32: IndexDigest]
        do { digests = try scan.wait() } catch {
            // An unreadable id index: reported against each namespace; the logs were still checked.
            for (namespace, _, _) in checked {
                results[namespace, default: []].append(Violation(namespace: namespace, rule: .storage, position: nil,
                                                                 detail: "the id index cannot be read: \(error)"))
            }
            return results
        }
        for (namespace, state, digest) in checked where digests[state.number] ?? IndexDigest() != digest {
            // Somewhere the index and the log disagree: find where, one lookup per event.
            var pass = LogCheck(store: self, state: state, violationCountMax: violationCountMax)
            pass.lookUpEveryID = true
            try pass.run { _ in }
            let found = pass.violations.filter { $0.rule == .idIndex }
            results[namespace, default: []] += found.isEmpty
                ? [Violation(namespace: namespace, rule: .idIndex, position: nil,
                             detail: "the id index holds \(digests[state.number]?.count ?? 0) entries for this namespace; the log has \(digest.count)")]
                : found
        }
        return results
    }
}

/// One scan of the id index on a thread of its own, summing a digest per namespace.
final class IndexScan: @unchecked Sendable {
    let database: Database
    let namespaces: Set<UInt32>
    // Written by the scanning thread before `done` is signalled, read after.
    var digests = [UInt32: IndexDigest]()
    var failure: RocksDBError?
    let done = DispatchSemaphore(value: 0)

    init(database: Database, namespaces: Set<UInt32>) {
        self.database = database
        self.namespaces = namespaces
    }

    func run() {
        defer { done.signal() }
        let iterator = database.iterator(.ids, lower: [UInt8](repeating: 0, count: EventID.byteCount), upper: [UInt8](repeating: 0xFF, count: EventID.byteCount + 1))
        while iterator.isValid {
            // Read in place: one scan of every id the store holds.
            if let head = iterator.keyPrefix64, let record = iterator.withValue({ IDRecord(decoding: $0) }), namespaces.contains(record.namespace) {
                digests[record.namespace, default: IndexDigest()].add(idPrefix: head, record)
            }
            iterator.next()
        }
        do { try iterator.checkError() } catch { failure = error }
    }

    /// Blocks until the scan ends; may be called more than once.
    func wait() throws -> [UInt32: IndexDigest] {
        done.wait()
        done.signal()
        if let failure { throw failure }
        return digests
    }
}

/// An order-independent sum over id index entries: equal digests mean equal
/// sets (up to a 2^-64 chance), whichever order they were added in.
struct IndexDigest: Equatable {
    var count: UInt64 = 0
    var sum: UInt64 = 0

    /// `idPrefix`: the id's first 8 bytes, big-endian.
    mutating func add(idPrefix: UInt64, _ record: IDRecord) {
        var hash = idPrefix
        for value in [UInt64(record.namespace), record.position, UInt64(record.origin), record.originSeq] {
            hash = Self.mix(hash ^ value)
        }
        count += 1
        sum &+= hash
    }

    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// One pass over one namespace's log.
struct LogCheck {
    let store: Store
    let state: NamespaceState
    let violationCountMax: Int
    /// Look every id up in the index (the slow path, to name faulty entries).
    var lookUpEveryID = false
    var violations = [Violation]()
    var digest = IndexDigest()

    init(store: Store, state: NamespaceState, violationCountMax: Int) {
        self.store = store
        self.state = state
        self.violationCountMax = violationCountMax
    }

    static let batchCount = 4096

    mutating func report(_ rule: Violation.Rule, _ position: UInt64?, _ detail: String) {
        if violations.count < violationCountMax {
            violations.append(Violation(namespace: state.namespace, rule: rule, position: position, detail: detail))
        }
    }

    /// A record decoded and checked on a worker thread.
    struct Decoded {
        var position: UInt64
        var record: LogRecord?
        var event: Event?
        var error: String?
        var signature: Event.SignatureStatus = .unsigned
    }

    mutating func run(progress: (UInt64) -> Void) throws {
        let database = store.database
        let origins = store.originRegistry.snapshot
        let lower = Keys.log(shard: state.shard, namespace: state.number, position: state.trimmedThrough + 1)
        // Up to the published end: a group committing meanwhile is not part of this state.
        let upper = Keys.log(shard: state.shard, namespace: state.number, position: state.lastPosition + 1)
        // Trimming deletes every position through the trim point.
        let namespaceStart = Keys.namespacePrefix(shard: state.shard, namespace: state.number)
        let belowTrim = database.iterator(.log, lower: namespaceStart, upper: lower)
        if belowTrim.isValid, let position = Keys.position(fromLogKey: belowTrim.key) {
            report(.trimPoint, position, "position \(position) is still held; the log is trimmed through \(state.trimmedThrough)")
        }
        let iterator = database.iterator(.log, lower: lower, upper: upper)
        var expected = state.trimmedThrough + 1
        var lastSeq = [UInt32: UInt64]()
        var count: UInt64 = 0
        var bytes: UInt64 = 0
        // Ids seen lately, in two generations: most parents are recent.
        var recent = [EventID: UInt64](), older = [EventID: UInt64]()
        var raw = [(position: UInt64, value: [UInt8])]()
        raw.reserveCapacity(Self.batchCount)
        // Aliases fill their slots between log positions: each right after the position it entered at.
        var aliases = try OriginIndex.aliases(database, state)[...]
        if UInt64(aliases.count) != state.aliasCount {
            report(.originIndex, nil, "\(aliases.count) alias records; state says \(state.aliasCount)")
        }
        func fillAliases(through position: UInt64, _ check: inout LogCheck) throws {
            while let alias = aliases.first, alias.after <= position {
                aliases.removeFirst()
                let slot = "alias \(origins[Int(alias.origin)].hex.prefix(8))/\(alias.originSeq)"
                if let previous = lastSeq[alias.origin], alias.originSeq != previous + 1 {
                    check.report(.originOrder, alias.after, "\(slot) follows \(previous) of the same origin")
                } else if lastSeq[alias.origin] == nil, check.state.trimmedThrough == 0, alias.originSeq != 1 {
                    check.report(.originOrder, alias.after, "\(slot) is the first of its origin")
                }
                lastSeq[alias.origin] = alias.originSeq
                if alias.eventPosition == 0 || alias.eventPosition > alias.after {
                    check.report(.originIndex, alias.after, "\(slot) names position \(alias.eventPosition), not one before it entered")
                }
                let key = Keys.origin(shard: check.state.shard, namespace: check.state.number, origin: alias.origin, originSeq: alias.originSeq)
                if try database.get(.origins, key) != alias.slotValue {
                    check.report(.originIndex, alias.after, "\(slot) is not in the origin index")
                }
            }
        }
        func flush(_ check: inout LogCheck) throws {
            let batch = Self.decode(raw, namespace: check.state.namespace)
            raw.removeAll(keepingCapacity: true)
            for item in batch {
                let position = item.position
                try fillAliases(through: position - 1, &check)
                if position != expected { check.report(.densePositions, position, "expected position \(expected)") }
                expected = position + 1
                count += 1
                guard let record = item.record, let event = item.event else {
                    check.report(.idIsHash, position, "record does not decode: \(item.error ?? "")")
                    continue
                }
                bytes += UInt64(event.encodedByteCount)
                if event.timestamp.rawValue > check.state.timestampMax {
                    check.report(.counts, position, "timestamp \(event.timestamp) is past the namespace's newest \(HybridTimestamp(rawValue: check.state.timestampMax))")
                }
                if event.id != record.id { check.report(.idIsHash, position, "stored id \(record.id.short) but the event hashes to \(event.id.short)") }
                if event.namespace != check.state.namespace { check.report(.idIsHash, position, "event names namespace \(event.namespace)") }
                if item.signature == .invalid || item.signature == .signedWithoutAuthor {
                    check.report(.signature, position, "event \(event.id.short) signature does not verify")
                }
                let indexed = IDRecord(namespace: check.state.number, position: position, origin: record.origin, originSeq: record.originSeq)
                check.digest.add(idPrefix: record.id.prefix64, indexed)
                if check.lookUpEveryID {
                    if let index = try database.get(.ids, Keys.id(record.id)).flatMap({ try? IDRecord.decode($0) }) {
                        if index != indexed {
                            check.report(.idIndex, position, "id \(record.id.short) indexed at \(index.position) origin \(index.origin)/\(index.originSeq)")
                        }
                    } else {
                        check.report(.idIndex, position, "id \(record.id.short) missing from the id index")
                    }
                }
                if OriginIndex.isCheckpoint(record.originSeq) {
                    let key = Keys.origin(shard: check.state.shard, namespace: check.state.number, origin: record.origin, originSeq: record.originSeq)
                    if try database.get(.origins, key) != Keys.positionValue(position) {
                        check.report(.originIndex, position, "origin \(record.origin)/\(record.originSeq) not indexed at this position")
                    }
                }
                if let previous = lastSeq[record.origin], record.originSeq != previous + 1 {
                    check.report(.originOrder, position, "originSeq \(record.originSeq) follows \(previous) of the same origin")
                } else if lastSeq[record.origin] == nil, check.state.trimmedThrough == 0, record.originSeq != 1 {
                    check.report(.originOrder, position, "first event of its origin has originSeq \(record.originSeq)")
                }
                lastSeq[record.origin] = record.originSeq
                for parent in event.parents {
                    if let at = recent[parent] ?? older[parent] {
                        if at >= position { check.report(.causalParents, position, "parent \(parent.short) is at later position \(at)") }
                        continue
                    }
                    guard let bytes = try database.get(.ids, Keys.id(parent)), let index = try? IDRecord.decode(bytes) else {
                        // A parent trimmed away was before this event; one never held is a violation.
                        if check.state.trimmedThrough == 0 { check.report(.causalParents, position, "parent \(parent.short) is not held") }
                        continue
                    }
                    if index.namespace == check.state.number, index.position >= position {
                        check.report(.causalParents, position, "parent \(parent.short) is at later position \(index.position)")
                    }
                }
                recent[record.id] = position
                if recent.count >= 1 << 16 {
                    older = recent
                    recent.removeAll(keepingCapacity: true)
                }
            }
            progress(UInt64(batch.count))
        }
        while iterator.isValid {
            raw.append((iterator.keySuffix64 ?? 0, iterator.value))
            if raw.count >= Self.batchCount { try flush(&self) }
            iterator.next()
        }
        let unreadable: RocksDBError?
        do { try iterator.checkError(); unreadable = nil } catch { unreadable = error }
        try flush(&self)
        if let unreadable {
            // The rest of the log cannot be read: say where it stops; the
            // checks that need all of it would only repeat that.
            report(.storage, expected, "the log cannot be read from position \(expected) on: \(unreadable)")
            return
        }
        if expected != state.lastPosition + 1 {
            report(.densePositions, nil, "log ends at \(expected - 1); state says \(state.lastPosition)")
        }
        try fillAliases(through: .max, &self)
        // Nothing may sit past the published end except a group committing right now.
        let beyond = database.iterator(.log, lower: upper, upper: Keys.successor(of: namespaceStart))
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
        for event in try store.pending(in: state.namespace) {
            if try database.get(.ids, Keys.id(event.id)) != nil {
                report(.pending, nil, "event \(event.id.short) is both pending and in the log")
            }
        }
    }

    /// Decodes, re-hashes and verifies a batch of records on every core.
    static func decode(_ raw: [(position: UInt64, value: [UInt8])], namespace: Namespace) -> [Decoded] {
        Parallel.map(raw.count) { index in
            var item = Decoded(position: raw[index].position)
            do {
                let record = try LogRecord.decode(raw[index].value)
                let event = try Event(verifying: record.bytes, offset: LogRecord.headerByteCount, namespace: namespace)
                item.record = record
                item.event = event
                if event.signature != nil { item.signature = event.signatureStatus }
            } catch {
                item.error = "\(error)"
            }
            return item
        }
    }
}
