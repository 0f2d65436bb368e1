import Foundation
import Logging
import TrailCore

extension ShardWriter {
    // MARK: Placing events

    func held(_ id: EventID, _ group: Group) throws(StoreError) -> IDRecord? {
        if let record = group.placed[id] { return record }
        let bytes: [UInt8]?
        do { bytes = try id.withBytes { key throws(RocksDBError) in try database.get(.ids, key: key) } } catch { throw .rocksDB(error) }
        guard let bytes else { return nil }
        do { return try IDRecord.decode(bytes) } catch {
            throw .corrupt(what: "id record of \(id)", detail: error.description)
        }
    }

    func placement(_ record: IDRecord) throws(StoreError) -> Placement {
        guard let origin = origins.relay(at: record.origin) else {
            throw .corrupt(what: "id record", detail: "origin index \(record.origin) is unknown")
        }
        return Placement(position: record.position, origin: origin, originSeq: record.originSeq)
    }

    func firstMissing(_ entry: PendingEntry, _ group: Group) throws(StoreError) -> Dependency? {
        for parent in entry.parents where try held(parent, group) == nil {
            return .event(parent)
        }
        if !entry.isLocal, entry.originSeq > 1 {
            let have = vectorEntry(entry.namespace, origin: entry.origin)
            if have < entry.originSeq - 1 {
                return .originSeq(namespace: entry.namespace, origin: entry.origin, originSeq: entry.originSeq - 1)
            }
        }
        return nil
    }

    /// One access to a namespace's state, in place. Reading a field through
    /// `namespaces[number]!` copies the whole state (vector and all) out first:
    /// measured as a tenth of placing an event before this.
    @inline(__always)
    func withState<R>(_ number: UInt32, _ body: (inout NamespaceState) -> R) -> R {
        body(&namespaces[number]!)
    }

    /// The same, creating the state first when the namespace is new to this writer.
    @inline(__always)
    func withState<R>(_ number: UInt32, creating initial: @autoclosure () -> NamespaceState, _ body: (inout NamespaceState) -> R) -> R {
        body(&namespaces[number, default: initial()])
    }

    /// The highest originSeq of `origin` held in a namespace (0: none, or no such namespace).
    func vectorEntry(_ number: UInt32, origin: UInt32) -> UInt64 {
        guard namespaces.index(forKey: number) != nil else { return 0 }
        return withState(number) { $0.vector[origin] ?? 0 }
    }

    func state(_ number: UInt32, _ namespace: Namespace, _ shard: UInt16) -> NamespaceState {
        if let state = namespaces[number] { return state }
        let state = NamespaceState(number: number, namespace: namespace, shard: shard)
        namespaces[number] = state
        return state
    }

    func place(_ item: Item, _ group: Group) throws(StoreError) -> AppendResult {
        let event = item.event
        let number = item.namespace
        let (timestampMax, lastPosition, originHave) = withState(
            number, creating: NamespaceState(number: number, namespace: event.namespace, shard: item.shard)
        ) { state in
            (state.timestampMax, state.lastPosition, item.origin.map { state.vector[$0.index] ?? 0 } ?? 0)
        }
        // An id hashes the event's namespace and timestamp, so an event newer than
        // every event of its namespace cannot already be in that log: the id index
        // lookup (measured at 40% of placing an event) is skipped for it. Only this
        // group's own events still need checking.
        let newerThanLog = event.timestamp.rawValue > timestampMax
        if let record = newerThanLog ? group.placed[event.id] : try held(event.id, group) {
            if let (origin, originSeq) = item.origin, origin != record.origin || originSeq != record.originSeq {
                try alias(event, item.namespace, origin: origin, originSeq: originSeq, group)
            }
            return AppendResult(id: event.id, outcome: .duplicate(try placement(record)))
        }
        if pending.count > 0, let waiting = pending.entries[event.id] {
            if let (origin, originSeq) = item.origin, origin != waiting.origin || originSeq != waiting.originSeq {
                try alias(event, item.namespace, origin: origin, originSeq: originSeq, group)
            }
            return AppendResult(id: event.id, outcome: .pending)
        }
        if let expected = item.expectedLastPosition {
            // Checked here, in the writer, after every event placed before it: no
            // other append can slip between the check and the placing.
            guard lastPosition == expected else {
                return AppendResult(id: event.id, outcome: .headMoved(lastPosition: lastPosition))
            }
            for parent in event.parents where try held(parent, group) == nil {
                throw .invalidEvent("a conditional append's parents must be held; \(parent.short) is not")
            }
        }
        if let (origin, originSeq) = item.origin, originSeq <= originHave {
            // This (origin, originSeq) is taken by a different event: either the origin
            // equivocated, or retention already trimmed it.
            let namespace = namespaces[number]!
            if let (id, _) = group.placed.first(where: {
                $0.value.namespace == item.namespace && $0.value.origin == origin && $0.value.originSeq == originSeq
            }) {
                return AppendResult(id: event.id, outcome: .conflict(existing: id))
            }
            if let id = group.aliases[AliasSlot(namespace: item.namespace, origin: origin, originSeq: originSeq)] {
                return AppendResult(id: event.id, outcome: .conflict(existing: id))
            }
            guard let position = try OriginIndex.position(database, namespace, origin: origin, originSeq: originSeq) else {
                return AppendResult(id: event.id, outcome: .trimmed)
            }
            return AppendResult(id: event.id, outcome: .conflict(existing: try slotID(namespace, origin: origin, originSeq: originSeq, at: position)))
        }
        let entry = PendingEntry(
            id: event.id, namespace: item.namespace, origin: item.origin?.index ?? PendingRecord.localOrigin,
            originSeq: item.origin?.originSeq ?? 0, parents: event.parents)
        if let missing = try firstMissing(entry, group) {
            guard pending.count < configuration.pendingCountMax else {
                throw .pendingFull(writer: index, limit: configuration.pendingCountMax)
            }
            group.batch.put(
                .pending, Keys.pending(shard: item.shard, namespace: item.namespace, id: event.id),
                PendingRecord.encode(origin: entry.origin, originSeq: entry.originSeq, event: event), in: database)
            pending.add(entry, waitingOn: missing)
            group.pendingEvents[event.id] = event
            return AppendResult(id: event.id, outcome: .pending)
        }
        let placed = try enter(entry, event, group)
        return AppendResult(id: event.id, outcome: .appended(placed))
    }

    /// Records that `(origin, originSeq)` is `event`, held or pending under
    /// another slot (see `AliasRecord`): at once when the slot is next for its
    /// origin and the event is held, or pending until then. A slot already
    /// filled is left alone: it is this alias again, or the origin equivocated.
    func alias(_ event: Event, _ namespace: UInt32, origin: UInt32, originSeq: UInt64, _ group: Group) throws(StoreError) {
        guard originSeq > namespaces[namespace]?.vector[origin] ?? 0 else { return }
        let key = AliasRecord.pendingKey(of: event.id, origin: origin, originSeq: originSeq)
        guard !pending.contains(key) else { return }
        let entry = PendingEntry(id: key, namespace: namespace, origin: origin, originSeq: originSeq, parents: [event.id], aliasOf: event.id)
        guard let missing = try firstMissing(entry, group) else {
            _ = try enter(entry, event, group)
            return
        }
        guard pending.count < configuration.pendingCountMax else {
            throw .pendingFull(writer: index, limit: configuration.pendingCountMax)
        }
        group.batch.put(
            .pending, Keys.pending(shard: namespaces[namespace]!.shard, namespace: namespace, id: key),
            PendingRecord.encode(origin: origin, originSeq: originSeq, event: event), in: database)
        pending.add(entry, waitingOn: missing)
        group.pendingEvents[key] = event
    }

    /// Fills an alias slot: no log record, an alias record and the slot's
    /// origin index entry, the vector advanced, the state record rewritten
    /// (the log cannot replay an alias).
    func enterAlias(_ entry: PendingEntry, of id: EventID, _ group: Group) throws(StoreError) {
        guard let record = try held(id, group) else {
            throw .corrupt(what: "alias of \(id)", detail: "ready to enter, but the event is not in the log")
        }
        var state = namespaces[entry.namespace]!
        state.aliasCount += 1
        let alias = AliasRecord(origin: entry.origin, originSeq: entry.originSeq, eventPosition: record.position, after: state.lastPosition)
        group.batch.put(.origins, Keys.alias(shard: state.shard, namespace: entry.namespace, number: state.aliasCount), alias.encoded, in: database)
        group.batch.put(.origins, Keys.origin(shard: state.shard, namespace: entry.namespace, origin: entry.origin, originSeq: entry.originSeq),
                        alias.slotValue, in: database)
        state.vector[entry.origin] = entry.originSeq
        state.mustPersist = true
        namespaces[entry.namespace] = state
        group.aliases[AliasSlot(namespace: entry.namespace, origin: entry.origin, originSeq: entry.originSeq)] = id
        group.touch(entry.namespace)
        logger.info("origin slot filled by an event held under another", metadata: [
            "event": "\(id)", "origin": "\(entry.origin)", "originSeq": "\(entry.originSeq)", "position": "\(record.position)"])
    }

    /// The id in an origin slot found at `position` by `OriginIndex`: the
    /// record there, or for an alias slot the event it names.
    func slotID(_ namespace: NamespaceState, origin: UInt32, originSeq: UInt64, at position: UInt64) throws(StoreError) -> EventID {
        if namespace.aliasCount > 0,
           let eventPosition = try OriginIndex.aliasedPosition(database, namespace, origin: origin, originSeq: originSeq) {
            return try storedID(namespace: namespace, position: eventPosition)
        }
        return try storedID(namespace: namespace, position: position)
    }

    func storedID(namespace: NamespaceState, position: UInt64) throws(StoreError) -> EventID {
        let bytes: [UInt8]?
        do { bytes = try database.get(.log, Keys.log(shard: namespace.shard, namespace: namespace.number, position: position)) } catch {
            throw .rocksDB(error)
        }
        guard let bytes else { throw .corrupt(what: "log of \(namespace.namespace)", detail: "position \(position) is indexed but absent") }
        do {
            return try LogRecord.decode(bytes).id
        } catch {
            throw .corrupt(what: "log record \(position) of \(namespace.namespace)", detail: error.description)
        }
    }

    /// Puts a ready event into the log, then every pending event it releases.
    func enter(_ first: PendingEntry, _ event: Event, _ group: Group) throws(StoreError) -> Placement {
        // The common case: a local event with nothing pending in this writer
        // enters at the next position and releases nothing.
        if first.isLocal, first.aliasOf == nil, pending.count == 0 {
            return enterLog(first, event, origin: localOrigin, originSeq: nil, group)
        }
        var work = [(first, event)]
        var firstPlacement: Placement?
        while let (entry, event) = work.popLast() {
            let shardNumber = withState(entry.namespace) { $0.shard }
            let origin = entry.isLocal ? localOrigin : entry.origin
            let have = vectorEntry(entry.namespace, origin: origin)
            let originSeq = entry.isLocal ? have + 1 : entry.originSeq
            if originSeq != have + 1 {
                // Released, but another event took this (origin, originSeq) meanwhile: an
                // equivocating origin. Dropped from pending; the first one stays.
                logger.warning("dropping pending event whose origin sequence is taken", metadata: [
                    "event": "\(entry.id)", "originSeq": "\(originSeq)"])
                pending.remove(entry.id)
                group.batch.delete(.pending, Keys.pending(shard: shardNumber, namespace: entry.namespace, id: entry.id), in: database)
                continue
            }
            if let id = entry.aliasOf {
                try enterAlias(entry, of: id, group)
                if firstPlacement == nil, let record = try held(id, group) { firstPlacement = try placement(record) }
            } else {
                let placement = try enterLog(entry, event, origin: origin, originSeq: originSeq, group)
                if firstPlacement == nil { firstPlacement = placement }
            }
            guard pending.count > 0 else { continue }
            if pending.remove(entry.id) != nil {
                group.batch.delete(.pending, Keys.pending(shard: shardNumber, namespace: entry.namespace, id: entry.id), in: database)
            }
            // An alias releases only its slot's successor: nothing names its pending key.
            let released = (entry.aliasOf == nil ? pending.release(.event(entry.id)) : [])
                + pending.release(.originSeq(namespace: entry.namespace, origin: origin, originSeq: originSeq))
            for waiter in released {
                if let missing = try firstMissing(waiter, group) {
                    pending.wait(waiter.id, on: missing)
                } else {
                    work.append((waiter, try pendingEvent(waiter, group)))
                }
            }
        }
        return firstPlacement!
    }

    /// Writes one ready event at the next position of its log; `originSeq` nil
    /// takes the next of `origin` (a local event).
    func enterLog(_ entry: PendingEntry, _ event: Event, origin: UInt32, originSeq: UInt64?, _ group: Group) -> Placement {
        let number = entry.namespace
        let byteCount = UInt64(event.encodedByteCount)
        let timestamp = event.timestamp.rawValue
        // One access, in place: copying the state out and back would copy its vector.
        let (shard, position, originSeq) = withState(number) { state in
            let originSeq = originSeq ?? (state.vector[origin] ?? 0) + 1
            state.lastPosition += 1
            state.vector[origin] = originSeq
            state.eventCount += 1
            state.byteCount += byteCount
            if timestamp > state.timestampMax { state.timestampMax = timestamp }
            return (state.shard, state.lastPosition, originSeq)
        }
        let record = IDRecord(namespace: number, position: position, origin: origin, originSeq: originSeq)
        let batch = group.batch
        scratch.reset()
        Keys.log(shard: shard, namespace: number, position: position, into: &scratch)
        let keyByteCount = scratch.count
        LogRecord.encode(origin: origin, originSeq: originSeq, event: event, into: &scratch)
        batch.put(.log, scratch.bytes, keyByteCount: keyByteCount, in: database)
        scratch.reset()
        entry.id.write(into: &scratch)
        record.encode(into: &scratch)
        batch.put(.ids, scratch.bytes, keyByteCount: EventID.byteCount, in: database)
        if OriginIndex.isCheckpoint(originSeq) {
            batch.put(.origins, Keys.origin(shard: shard, namespace: number, origin: origin, originSeq: originSeq),
                      Keys.positionValue(position), in: database)
        }
        group.placed[entry.id] = record
        group.touch(number)
        let relay = origin == localOrigin ? localRelay : origins.relay(at: origin)!
        group.entered.append((number, StoredEvent(event: event, position: position, origin: relay, originSeq: originSeq)))
        return Placement(position: position, origin: relay, originSeq: originSeq)
    }

    func pendingEvent(_ entry: PendingEntry, _ group: Group) throws(StoreError) -> Event {
        if let event = group.pendingEvents[entry.id] { return event }
        guard let shard = namespaces[entry.namespace]?.shard else {
            throw .corrupt(what: "pending event \(entry.id)", detail: "its namespace \(entry.namespace) is unknown")
        }
        let bytes: [UInt8]?
        do { bytes = try database.get(.pending, Keys.pending(shard: shard, namespace: entry.namespace, id: entry.id)) } catch {
            throw .rocksDB(error)
        }
        guard let bytes else { throw .corrupt(what: "pending event \(entry.id)", detail: "indexed but absent from disk") }
        do {
            return try PendingRecord.decode(bytes).verifiedEvent()
        } catch {
            throw .corrupt(what: "pending event \(entry.id)", detail: error.description)
        }
    }

    /// Events another writer placed: what waited on them here is checked again.
    func release(_ ids: [EventID], _ group: Group) throws(StoreError) {
        guard pending.count > 0 else { return }
        for id in ids {
            for waiter in pending.release(.event(id)) {
                if let missing = try firstMissing(waiter, group) {
                    pending.wait(waiter.id, on: missing)
                } else {
                    _ = try enter(waiter, try pendingEvent(waiter, group), group)
                }
            }
        }
    }

    /// Tells the other writers that have pending events which events this
    /// group placed: a pending event there may wait on one of them (its
    /// parent in a namespace of this writer's shards). Sent once the group is
    /// written, so an event checked after the message finds its parent held.
    func tellSiblings(_ group: Group) {
        guard !group.placed.isEmpty else { return }
        let others = siblings.withLock { $0.compactMap(\.writer) }.filter { $0 !== self && $0.pendingCount.load(ordering: .relaxed) > 0 }
        guard !others.isEmpty else { return }
        let ids = Array(group.placed.keys)
        for other in others { other.enqueue(.release(ids)) }
    }

    func recheckPending(_ group: Group) throws(StoreError) {
        var entered = 0
        let ready = readyAtOpen
        readyAtOpen = []
        // Only the entries that `load` registered nowhere: every other entry waits
        // on exactly one dependency already, and is released when it arrives.
        for id in ready {
            guard let entry = pending.entries[id] else { continue }  // entered meanwhile, released by another
            if let missing = try firstMissing(entry, group) {
                pending.wait(entry.id, on: missing)
            } else {
                _ = try enter(entry, try pendingEvent(entry, group), group)
                entered += 1
            }
        }
        if entered > 0 { logger.info("pending events entered at open", metadata: ["count": "\(entered)"]) }
    }
}
