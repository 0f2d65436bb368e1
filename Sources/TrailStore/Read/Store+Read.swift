public import TrailCore

extension Store {
    /// Reads a page of the namespace's log after `cursor` (from the start when
    /// nil), in this relay's causal order.
    ///
    /// A fast cursor resumes at the next position; a portable one yields
    /// exactly the events its vector does not name. A cursor into trimmed
    /// positions throws `trimmed`. At most `limit` events are returned, and at
    /// most `pageEventCountMax` are examined, so a filter that matches little
    /// still returns promptly, with a cursor that moved forward.
    ///
    /// A portable cursor skips an event when it names any of the event's
    /// slots, its own or an alias (`Alias`): a reader has seen the event
    /// whichever relay it read it on. With `bySlot`, only the event's own
    /// slot counts: replication, whose peer must receive every slot.
    public func read(
        _ namespace: Namespace, after cursor: Cursor? = nil, limit: Int = 1000, filter: ReadFilter = .all, bySlot: Bool = false
    ) throws -> Page {
        try readPage(namespace, after: cursor, limit: limit, filter: filter, bySlot: bySlot, stored: nil)
    }

    /// A page of the log after a fast cursor (from the start when nil), its
    /// events handed to `visit` as their stored canonical bytes with their
    /// positions, in log order, without decoding them: for a reader that
    /// sends events on as bytes and decodes them at the other end (binary
    /// pages). The returned page has the cursors and no events. The bytes
    /// are RocksDB's, checked by its block checksums; they are valid only
    /// during the call. A portable cursor throws: it skips events, and a
    /// visitor is handed every position.
    public func readStored(
        _ namespace: Namespace, after cursor: Cursor? = nil, limit: Int = 1000,
        _ visit: (_ position: UInt64, _ event: UnsafeRawBufferPointer) throws -> Void
    ) throws -> Page {
        if case .vector = cursor {
            throw StoreError.invalidCursor("stored bytes are read after a fast cursor; a portable one skips events")
        }
        return try withoutActuallyEscaping(visit) { visit in
            try readPage(namespace, after: cursor, limit: limit, filter: .all, bySlot: false, stored: visit)
        }
    }

    private func readPage(
        _ namespace: Namespace, after cursor: Cursor?, limit: Int, filter: ReadFilter, bySlot: Bool,
        stored: ((UInt64, UnsafeRawBufferPointer) throws -> Void)?
    ) throws -> Page {
        let limit = max(1, min(limit, configuration.pageEventCountMax))
        guard let state = state(of: namespace) else {
            if case .position(let relay, let position) = cursor {
                try checkRelay(relay)
                if position > 0 { throw StoreError.cursorBeyondLog(namespace: namespace, position: position, last: 0) }
            }
            let seen: VersionVector
            if case .vector(let vector) = cursor { seen = vector } else { seen = VersionVector() }
            return Page(events: [], cursor: .position(relay: relayID.fingerprint, position: 0),
                        portableCursor: .vector(seen), lastPosition: 0)
        }
        let start = try startPosition(state, cursor)
        // Right behind the head (a link pushing, the fan-out): the events are in memory.
        if stored == nil, start.seen == nil, state.lastPosition - start.after <= min(limit, configuration.pageEventCountMax),
           let recent = writer(for: Int(state.shard)).recent.withLock({ $0.events(state.number, after: start.after, through: state.lastPosition) }) {
            return Page(
                events: recent.filter { filter.admits($0.event) }, cursor: .position(relay: relayID.fingerprint, position: state.lastPosition),
                portableCursor: .vector(vector(of: state)), lastPosition: state.lastPosition)
        }
        let scan = try scan(state, after: start.after, seen: start.seen, limit: limit, filter: filter, bySlot: bySlot, stored: stored)
        let portable: VersionVector
        if scan.through == state.lastPosition {
            portable = start.seen.map { vector(of: state).merging($0) } ?? vector(of: state)
        } else if let seen = start.seen {
            portable = seen.merging(vector(from: scan.scannedByIndex))
        } else {
            portable = try vector(state, through: start.after).merging(vector(from: scan.scannedByIndex))
        }
        return Page(
            events: scan.events, cursor: .position(relay: relayID.fingerprint, position: scan.through),
            portableCursor: .vector(portable), lastPosition: state.lastPosition)
    }

    func checkRelay(_ relay: UInt64) throws {
        guard relay == relayID.fingerprint || cursorFingerprints.contains(relay) else {
            throw StoreError.cursorFromOtherRelay(cursorRelay: relay, thisRelay: relayID.fingerprint)
        }
    }

    /// Where a cursor starts reading: after a position, skipping what a vector names.
    func startPosition(_ state: NamespaceState, _ cursor: Cursor?) throws -> (after: UInt64, seen: VersionVector?) {
        switch cursor {
        case nil:
            guard state.trimmedThrough == 0 else {
                throw StoreError.trimmed(namespace: state.namespace, through: state.trimmedThrough, requested: 1)
            }
            return (0, nil)
        case .position(let relay, let position):
            try checkRelay(relay)
            guard position <= state.lastPosition else {
                throw StoreError.cursorBeyondLog(namespace: state.namespace, position: position, last: state.lastPosition)
            }
            guard position >= state.trimmedThrough else {
                throw StoreError.trimmed(namespace: state.namespace, through: state.trimmedThrough, requested: position + 1)
            }
            return (position, nil)
        case .vector(let seen):
            // Each origin's events sit in the log in originSeq order, so the first
            // unseen event of the log is the earliest of each origin's first unseen one.
            var first = state.lastPosition + 1
            let origins = originRegistry.snapshot
            for (index, held) in state.vector {
                let next = seen[origins[Int(index)]] + 1
                guard next <= held else { continue }
                guard let position = try position(state, origin: index, originSeq: next) else {
                    throw StoreError.trimmed(namespace: state.namespace, through: state.trimmedThrough, requested: state.trimmedThrough)
                }
                first = min(first, position)
            }
            return (first - 1, seen)
        }
    }

    func position(_ state: NamespaceState, origin: UInt32, originSeq: UInt64) throws -> UInt64? {
        try OriginIndex.position(database, state, origin: origin, originSeq: originSeq)
    }

    /// The vector of the events at positions 1...position: per origin, the
    /// highest originSeq placed at or before it, found by binary search on the
    /// origin index (an origin's positions rise with its originSeq).
    func vector(_ state: NamespaceState, through position: UInt64) throws -> VersionVector {
        var result = [UInt32: UInt64]()
        for (origin, held) in state.vector {
            var low: UInt64 = 0  // placed at or before `position` (0: none)
            var high = held + 1  // placed after
            while high - low > 1 {
                let middle = low + (high - low) / 2
                // A trimmed entry lies below the trim point, which is at or before `position`.
                let placed = try self.position(state, origin: origin, originSeq: middle) ?? 0
                if placed <= position { low = middle } else { high = middle }
            }
            if low > 0 { result[origin] = low }
        }
        return vector(from: result)
    }

    struct Scan {
        var events: [StoredEvent] = []
        /// The vector of every event examined (admitted or not), by origin index.
        var scannedByIndex: [UInt32: UInt64] = [:]
        /// The last position examined.
        var through: UInt64
    }

    /// Reads the log after `after`, skipping events named by `seen` and those
    /// the filter refuses; stops at `limit` events or `pageEventCountMax` examined.
    /// With `stored`, each record's event bytes go to it undecoded (no `seen`, no filter).
    func scan(
        _ state: NamespaceState, after: UInt64, seen: VersionVector?, limit: Int, filter: ReadFilter, bySlot: Bool = false,
        stored: ((UInt64, UnsafeRawBufferPointer) throws -> Void)? = nil
    ) throws -> Scan {
        var result = Scan(through: after)
        guard after < state.lastPosition else { return result }
        let lower = Keys.log(shard: state.shard, namespace: state.number, position: after + 1)
        let upper = Keys.log(shard: state.shard, namespace: state.number, position: state.lastPosition + 1)
        let iterator = database.iterator(.log, lower: lower, upper: upper, fillCache: state.cachesRead(from: after))
        var origins = originRegistry.snapshot
        var examined = 0
        var expected = after + 1
        // A page's events mostly share a few types: each is validated once.
        var lastType: String?
        // An event is seen when any of its slots is: the reader may have met it
        // on a relay where it holds another origin's slot (see `AliasRecord`).
        var aliasSlots = [UInt64: [(origin: UInt32, originSeq: UInt64)]]()
        if seen != nil, !bySlot, state.aliasCount > 0 {
            for alias in try OriginIndex.aliases(database, state) where alias.eventPosition > after {
                aliasSlots[alias.eventPosition, default: []].append((alias.origin, alias.originSeq))
            }
        }
        while iterator.isValid, (stored == nil ? result.events.count : examined) < limit, examined < configuration.pageEventCountMax {
            let position = iterator.keySuffix64
            guard position == expected else {
                throw StoreError.corrupt(what: "log of \(state.namespace)", detail: "expected position \(expected), found \(position.map(String.init) ?? "a malformed key")")
            }
            if let stored {
                let at = expected
                let (originIndex, originSeq) = try iterator.withValue { value -> (UInt32, UInt64) in
                    guard value.count > LogRecord.headerByteCount else {
                        throw StoreError.corrupt(what: "log record \(at) of \(state.namespace)", detail: "\(value.count) bytes, shorter than its header")
                    }
                    try stored(at, UnsafeRawBufferPointer(rebasing: value[LogRecord.headerByteCount...]))
                    return (UInt32(bigEndian: value.loadUnaligned(fromByteOffset: 0, as: UInt32.self)),
                            UInt64(bigEndian: value.loadUnaligned(fromByteOffset: 4, as: UInt64.self)))
                }
                result.scannedByIndex[originIndex] = originSeq
                result.through = expected
                examined += 1
                expected += 1
                iterator.next()
                continue
            }
            // Decoded in place from RocksDB's buffer: no copy of the whole record first.
            let at = expected
            let (stored, originIndex) = try iterator.withValue { value in
                try decodeLogRecord(value, position: at, state: state, origins: &origins, typeHint: lastType)
            }
            lastType = stored.event.type
            result.scannedByIndex[originIndex] = stored.originSeq
            result.through = expected
            examined += 1
            expected += 1
            iterator.next()
            if let seen, seen.contains(origin: stored.origin, originSeq: stored.originSeq) { continue }
            if let seen, let slots = aliasSlots[at],
               slots.contains(where: { seen.contains(origin: origins[Int($0.origin)], originSeq: $0.originSeq) }) { continue }
            if filter.admits(stored.event) { result.events.append(stored) }
        }
        try iterator.checkError()
        if result.through < state.lastPosition, (stored == nil ? result.events.count : examined) < limit, examined < configuration.pageEventCountMax {
            throw StoreError.corrupt(what: "log of \(state.namespace)", detail: "ends at \(result.through), state says \(state.lastPosition)")
        }
        return result
    }

    func decodeLogRecord(
        _ bytes: UnsafeRawBufferPointer, position: UInt64, state: NamespaceState, origins: inout [RelayID], typeHint: String? = nil
    ) throws -> (StoredEvent, UInt32) {
        do {
            let (origin, originSeq, event) = try LogRecord.decodeEvent(bytes, namespace: state.namespace, typeHint: typeHint)
            if Int(origin) >= origins.count { origins = originRegistry.snapshot }
            guard Int(origin) < origins.count else {
                throw StoreError.corrupt(what: "log record \(position) of \(state.namespace)", detail: "origin index \(origin) is unknown")
            }
            return (StoredEvent(event: event, position: position, origin: origins[Int(origin)], originSeq: originSeq), origin)
        } catch let error as DecodeError {
            throw StoreError.corrupt(what: "log record \(position) of \(state.namespace)", detail: error.description)
        }
    }

    /// The event with this id, wherever it is, or nil when it is not in any log here.
    public func event(id: EventID) throws -> StoredEvent? {
        guard let bytes = try database.get(.ids, Keys.id(id)) else { return nil }
        let record: IDRecord
        do { record = try IDRecord.decode(bytes) } catch {
            throw StoreError.corrupt(what: "id record of \(id)", detail: error.description)
        }
        guard let namespace = namespaceRegistry.name(of: record.namespace), let state = state(of: namespace) else {
            // Written by a group whose sync has not returned yet: not visible until it has.
            if namespaceRegistry.name(of: record.namespace) != nil { return nil }
            throw StoreError.corrupt(what: "id record of \(id)", detail: "namespace \(record.namespace) is unknown")
        }
        // Past the published end: written, not yet synced and acknowledged.
        guard record.position <= state.lastPosition else { return nil }
        guard record.position > state.trimmedThrough else { return nil }
        let key = Keys.log(shard: state.shard, namespace: state.number, position: record.position)
        guard let value = try database.get(.log, key) else {
            throw StoreError.corrupt(what: "id record of \(id)", detail: "position \(record.position) of \(namespace) is absent")
        }
        var origins = originRegistry.snapshot
        let (stored, _) = try value.withUnsafeBytes { try decodeLogRecord($0, position: record.position, state: state, origins: &origins) }
        guard stored.id == id else {
            throw StoreError.corrupt(what: "id record of \(id)", detail: "position \(record.position) holds \(stored.id)")
        }
        return stored
    }

    /// The namespace's aliases numbered above `number`, in the order they
    /// entered: origin slots filled by an event held under another slot.
    public func aliases(in namespace: Namespace, after number: UInt64 = 0) throws -> [Alias] {
        guard let state = state(of: namespace) else { return [] }
        let origins = originRegistry.snapshot
        return try OriginIndex.aliases(database, state, after: number).enumerated().map { offset, record in
            guard Int(record.origin) < origins.count else {
                throw StoreError.corrupt(what: "alias record of \(namespace)", detail: "origin index \(record.origin) is unknown")
            }
            return Alias(number: number + UInt64(offset) + 1, origin: origins[Int(record.origin)], originSeq: record.originSeq,
                         eventPosition: record.eventPosition, after: record.after,
                         id: try event(at: record.eventPosition, in: state)?.id)
        }
    }

    /// The event at `position` of the namespace's log; nil past its end or trimmed.
    public func event(at position: UInt64, in namespace: Namespace) throws -> StoredEvent? {
        guard let state = state(of: namespace) else { return nil }
        return try event(at: position, in: state)
    }

    func event(at position: UInt64, in state: NamespaceState) throws -> StoredEvent? {
        guard position > state.trimmedThrough, position <= state.lastPosition,
              let value = try database.get(.log, Keys.log(shard: state.shard, namespace: state.number, position: position)) else { return nil }
        var origins = originRegistry.snapshot
        return try value.withUnsafeBytes { try decodeLogRecord($0, position: position, state: state, origins: &origins).0 }
    }

    /// How many aliases the namespace holds (read from memory).
    public func aliasCount(of namespace: Namespace) -> UInt64 { state(of: namespace)?.aliasCount ?? 0 }
}

/// An origin slot filled by an event the log holds under another slot: the
/// same event accepted by two relays before either heard of the other
/// (`Docs/FORMAT.md`, "Aliases").
public struct Alias: Sendable, Hashable {
    /// Numbered from 1 per namespace, in the order aliases entered this relay.
    public let number: UInt64
    public let origin: RelayID
    public let originSeq: UInt64
    /// Where the event sits in this relay's log.
    public let eventPosition: UInt64
    /// The log's last position when the alias entered.
    public let after: UInt64
    /// The event's id; nil once retention trimmed it.
    public let id: EventID?
}
