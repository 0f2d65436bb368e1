import DequeModule
import Foundation
import Logging
import Synchronization
import TrailCore

/// The single writer of a set of shards (every shard has exactly one).
///
/// Appenders enqueue jobs and suspend; a dedicated thread takes everything
/// queued (up to `groupEventCountMax` events), places each event — duplicate,
/// pending, or into the log at the next position — writes one RocksDB batch
/// for the whole group, and only then resumes the appenders (group commit).
/// The thread is the only owner of `namespaces` and `pending`; readers see a
/// copy published after each commit. RocksDB writes and fsyncs block, which is
/// why this is a thread and not a task on the cooperative pool.
final class ShardWriter: @unchecked Sendable {
    struct Item: Sendable {
        let event: Event
        let namespace: UInt32
        let shard: UInt16
        /// nil for an event accepted here; otherwise the origin index and originSeq it carries.
        let origin: (index: UInt32, originSeq: UInt64)?
    }

    enum Job {
        case append([Item], CheckedContinuation<[AppendResult], any Error>)
        case setRetention(UInt32, Namespace, UInt16, Retention, CheckedContinuation<Void, any Error>)
        /// Trims through a position, or by the retention policy when nil.
        case trim(UInt32, UInt64?, CheckedContinuation<UInt64, any Error>)
        /// Re-examines every pending event (after open, in case a dependency is held).
        case recheckPending

        var eventCount: Int {
            if case .append(let items, _) = self { return items.count }
            return 1
        }

        func fail(_ error: any Error) {
            switch self {
            case .append(_, let continuation): continuation.resume(throwing: error)
            case .setRetention(_, _, _, _, let continuation): continuation.resume(throwing: error)
            case .trim(_, _, let continuation): continuation.resume(throwing: error)
            case .recheckPending: break
            }
        }
    }

    /// Jobs waiting beyond this are refused with `overloaded`: a bound on memory
    /// when appenders outrun the disk, rather than an unbounded queue.
    static let queueJobCountMax = 65_536
    /// One retention pass trims at most this many events, so that a group's
    /// batch stays bounded; the rest is trimmed by the next pass.
    static let trimEventCountMax = 50_000

    /// The shards this writer owns.
    let shards: [Int]
    /// This writer's number, for its thread name and logs.
    let index: Int
    private let database: Database
    private let origins: OriginRegistry
    private let signals: CommitSignals
    private let configuration: StoreConfiguration
    private let localOrigin: UInt32
    private let localRelay: RelayID
    private var logger: Logger

    // Guarded by `condition`.
    private let condition = NSCondition()
    private var queue = Deque<Job>()
    private var stopping = false
    private var failure: StoreError?

    // Owned by the writer thread.
    private var namespaces: [UInt32: NamespaceState] = [:]
    private var pending = PendingIndex()
    /// Reused for every key and value the writer builds.
    private var scratch = ByteWriter(capacity: 4096)

    /// What readers see: each namespace's state as of the last commit.
    let published = Mutex<[UInt32: NamespaceState]>([:])
    private let stopped = DispatchSemaphore(value: 0)

    init(
        index: Int, shards: [Int], database: Database, namespaces registry: NamespaceRegistry, origins: OriginRegistry,
        signals: CommitSignals, configuration: StoreConfiguration, localOrigin: UInt32, writable: Bool = true
    ) throws(StoreError) {
        self.index = index
        self.shards = shards
        self.database = database
        self.origins = origins
        self.signals = signals
        self.configuration = configuration
        self.localOrigin = localOrigin
        self.localRelay = origins.relay(at: localOrigin) ?? (try! RelayID(bytes: [UInt8](repeating: 0, count: 32)))
        self.logger = configuration.logger
        logger[metadataKey: "writer"] = "\(index)"
        try load(registry: registry)
        guard writable else {
            stopping = true
            stopped.signal()
            return
        }
        let thread = Thread { [self] in run() }
        thread.name = "trail-writer-\(index)"
        thread.start()
        if pending.count > 0 { enqueueInternal(.recheckPending) }
    }

    /// Reloads the shard's state from disk; only for a read-only shard (no
    /// writer thread), after its secondary database caught up. Returns the
    /// namespaces whose logs grew.
    func reloadReadOnly(registry: NamespaceRegistry) throws(StoreError) -> [(Namespace, UInt64)] {
        let before = published.withLock { $0 }
        try load(registry: registry)
        return namespaces.values.filter { $0.lastPosition > (before[$0.number]?.lastPosition ?? 0) }
            .map { ($0.namespace, $0.lastPosition) }
    }

    // MARK: Loading

    private func load(registry: NamespaceRegistry) throws(StoreError) {
        namespaces = [:]
        pending = PendingIndex()
        for (namespace, entry) in registry.all where shards.contains(Int(entry.shard)) {
            var state = NamespaceState(number: entry.number, namespace: namespace, shard: entry.shard)
            do {
                if let bytes = try database.get(.state, Keys.state(shard: entry.shard, namespace: entry.number)) {
                    do { try state.decode(bytes) } catch { throw StoreError.corrupt(what: "namespace state", detail: error.description) }
                }
            } catch let error as RocksDBError {
                throw .rocksDB(error)
            } catch {
                throw error as! StoreError
            }
            state.persistedPosition = state.lastPosition
            try replayLogTail(&state)
            namespaces[entry.number] = state
        }
        var loaded = [PendingEntry]()
        for shard in shards {
            let prefix = Keys.shardPrefix(UInt16(shard))
            let iterator = database.iterator(.pending, lower: prefix, upper: Keys.successor(of: prefix))
            while iterator.isValid {
                let key = iterator.key
                guard key.count == Keys.namespacePrefixByteCount + EventID.byteCount else {
                    throw StoreError.corrupt(what: "pending key", detail: Hex.encode(key))
                }
                let number = key[2..<6].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                let record: LogRecord
                let event: Event
                do {
                    record = try PendingRecord.decode(iterator.value)
                    event = try record.verifiedEvent()
                } catch {
                    throw StoreError.corrupt(what: "pending event \(Hex.encode(key.suffix(32)))", detail: error.description)
                }
                guard event.id.bytes == Array(key.suffix(EventID.byteCount)) else {
                    throw StoreError.corrupt(what: "pending event", detail: "key \(Hex.encode(key.suffix(32))) holds event \(event.id)")
                }
                loaded.append(PendingEntry(id: event.id, namespace: number, origin: record.origin, originSeq: record.originSeq, parents: event.parents))
                iterator.next()
            }
            do { try iterator.checkError() } catch { throw StoreError.rocksDB(error) }
        }
        let group = Group()
        for entry in loaded {
            // Registered on its first missing dependency, or on itself-as-held (released by recheck).
            let dependency = (try? firstMissing(entry, group)) ?? nil
            pending.add(entry, waitingOn: dependency ?? .event(entry.id))
        }
        let snapshot = namespaces
        published.withLock { $0 = snapshot }
    }

    /// Brings a state read from disk up to the log: the record lags by up to
    /// `persistEventCountMax` events, and each log record carries what the
    /// state needs (position, origin, originSeq, size).
    private func replayLogTail(_ state: inout NamespaceState) throws(StoreError) {
        let lower = Keys.log(shard: state.shard, namespace: state.number, position: state.lastPosition + 1)
        let upper = Keys.successor(of: Keys.namespacePrefix(shard: state.shard, namespace: state.number))
        let iterator = database.iterator(.log, lower: lower, upper: upper)
        while iterator.isValid {
            guard let position = Keys.position(fromLogKey: iterator.key), position == state.lastPosition + 1 else {
                throw .corrupt(what: "log of \(state.namespace)", detail: "after position \(state.lastPosition) comes key \(Hex.encode(iterator.key))")
            }
            let record: LogRecord
            do { record = try LogRecord.decode(iterator.value) } catch {
                throw .corrupt(what: "log record \(position) of \(state.namespace)", detail: error.description)
            }
            guard record.originSeq == (state.vector[record.origin] ?? 0) + 1 else {
                throw .corrupt(what: "log record \(position) of \(state.namespace)", detail: "originSeq \(record.originSeq) does not follow \(state.vector[record.origin] ?? 0)")
            }
            state.lastPosition = position
            state.vector[record.origin] = record.originSeq
            state.eventCount += 1
            state.byteCount += UInt64(record.bytes.count - LogRecord.headerByteCount)
            guard let timestamp = record.timestamp else {
                throw .corrupt(what: "log record \(position) of \(state.namespace)", detail: "too short to hold a timestamp")
            }
            state.timestampMax = max(state.timestampMax, timestamp.rawValue)
            iterator.next()
        }
        do { try iterator.checkError() } catch { throw .rocksDB(error) }
    }

    // MARK: Queue

    func enqueue(_ job: Job) {
        condition.lock()
        if let failure {
            condition.unlock()
            job.fail(failure)
            return
        }
        if stopping {
            condition.unlock()
            job.fail(StoreError.closed)
            return
        }
        if queue.count >= Self.queueJobCountMax {
            condition.unlock()
            job.fail(StoreError.overloaded(queuedJobs: queue.count))
            return
        }
        queue.append(job)
        condition.signal()
        condition.unlock()
    }

    private func enqueueInternal(_ job: Job) {
        condition.lock()
        queue.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Finishes the queued jobs, then stops the thread and waits for it.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
        stopped.wait()
    }

    /// With `synced`, a group that would be much smaller than the previous one
    /// waits this long for the appenders the previous group just released:
    /// one fsync then covers them all. 200 µs is well under the fsync it saves.
    static let syncedLingerMicroseconds = 200

    private func run() {
        var previousGroupJobs = 0
        while true {
            condition.lock()
            while queue.isEmpty && !stopping { condition.wait() }
            if queue.isEmpty {
                condition.unlock()
                break
            }
            if configuration.durability == .synced, queue.count * 2 < previousGroupJobs, !stopping {
                let deadline = Date(timeIntervalSinceNow: Double(Self.syncedLingerMicroseconds) / 1_000_000)
                while queue.count < previousGroupJobs, !stopping, condition.wait(until: deadline) {}
            }
            var jobs = [Job]()
            var events = 0
            while let job = queue.first, jobs.isEmpty || events + job.eventCount <= configuration.groupEventCountMax {
                jobs.append(queue.removeFirst())
                events += job.eventCount
            }
            condition.unlock()
            previousGroupJobs = jobs.count
            commit(jobs)
        }
        persistAll()
        stopped.signal()
    }

    // MARK: Group commit

    /// Changes made by the group being built, visible to later events in it before they reach RocksDB.
    private final class Group {
        let batch = WriteBatch()
        var placed: [EventID: IDRecord] = [:]
        var pendingEvents: [EventID: Event] = [:]
        var touched: Set<UInt32> = []
    }

    private func commit(_ jobs: [Job]) {
        let group = Group()
        var results = [Result<[AppendResult], StoreError>]()
        var trims = [UInt64]()
        for job in jobs {
            switch job {
            case .append(let items, _):
                do throws(StoreError) {
                    var answers = [AppendResult]()
                    answers.reserveCapacity(items.count)
                    for item in items { answers.append(try place(item, group)) }
                    results.append(.success(answers))
                } catch {
                    results.append(.failure(error))
                }
            case .setRetention(let number, let namespace, let shard, let retention, _):
                var state = state(number, namespace, shard)
                state.retention = retention
                state.mustPersist = true
                namespaces[number] = state
                group.touched.insert(number)
                results.append(.success([]))
            case .trim(let number, let through, _):
                do throws(StoreError) {
                    trims.append(try trim(number, through: through, group))
                    results.append(.success([]))
                } catch {
                    trims.append(0)
                    results.append(.failure(error))
                }
            case .recheckPending:
                do throws(StoreError) { try recheckPending(group) } catch {
                    logger.error("recheck of pending events failed", metadata: ["error": "\(error)"])
                }
                results.append(.success([]))
            }
        }
        do {
            try write(group)
            // Retention reads the log, so it runs on what this group committed,
            // as a second batch, before any appender hears back.
            let retained = group.touched.filter { namespaces[$0].map { !$0.retention.keepsAll } ?? false }
            if !retained.isEmpty {
                let retention = Group()
                for number in retained {
                    do throws(StoreError) { _ = try trim(number, through: nil, retention) } catch {
                        logger.error("retention failed", metadata: ["namespace": "\(namespaces[number]!.namespace)", "error": "\(error)"])
                    }
                }
                try write(retention)
            }
        } catch {
            logger.error("group commit failed; reloading shard state", metadata: ["error": "\(error)", "events": "\(group.placed.count)"])
            let failure = StoreError.rocksDB(error)
            jobs.forEach { $0.fail(failure) }
            reloadAfterFailure()
            return
        }

        let touched = group.touched
        published.withLock { published in
            for number in touched { published[number] = namespaces[number] }
        }
        var trimIndex = 0
        for (job, result) in zip(jobs, results) {
            switch (job, result) {
            case (.append(_, let continuation), .success(let answers)): continuation.resume(returning: answers)
            case (.setRetention(_, _, _, _, let continuation), .success): continuation.resume()
            case (.trim(_, _, let continuation), .success):
                continuation.resume(returning: trims[trimIndex])
            case (_, .failure(let error)): job.fail(error)
            case (.recheckPending, _): break
            }
            if case .trim = job { trimIndex += 1 }
        }
        for number in touched {
            signals.notify(namespace: namespaces[number]!.namespace, lastPosition: namespaces[number]!.lastPosition)
        }
    }

    /// Checks the vector invariant of each touched namespace, adds the state
    /// records that are due to the batch, and commits with the configured durability.
    private func write(_ group: Group) throws(RocksDBError) {
        var persisted = [UInt32]()
        for number in group.touched {
            let state = namespaces[number]!
            // Vector = held set: each event has one (origin, originSeq) and originSeqs are dense.
            precondition(state.vector.values.reduce(0, +) == state.lastPosition,
                         "vector \(state.vector) disagrees with last position \(state.lastPosition) of \(state.namespace)")
            if state.needsPersist {
                group.batch.put(.state, Keys.state(shard: state.shard, namespace: number), state.encoded, in: database)
                persisted.append(number)
            }
        }
        guard group.batch.count > 0 else { return }
        try database.write(group.batch, sync: configuration.durability == .synced)
        for number in persisted {
            namespaces[number]!.persistedPosition = namespaces[number]!.lastPosition
            namespaces[number]!.mustPersist = false
        }
    }

    /// Writes every state record that lags its log, so the next open replays nothing.
    private func persistAll() {
        let group = Group()
        for (number, state) in namespaces where state.lastPosition != state.persistedPosition || state.mustPersist {
            namespaces[number]!.mustPersist = true
            group.touched.insert(number)
        }
        do { try write(group) } catch {
            logger.warning("could not write namespace states at close; the next open replays the log", metadata: ["error": "\(error)"])
        }
    }

    private func reloadAfterFailure() {
        let registry = try? NamespaceRegistry(database: database, shardCount: configuration.shardCount, sync: false)
        do throws(StoreError) {
            guard let registry else { throw StoreError.corrupt(what: "namespace table", detail: "unreadable after a failed write") }
            try load(registry: registry)
        } catch {
            // The shard's memory no longer matches its disk: refuse writes until reopened.
            condition.lock()
            failure = error
            condition.unlock()
            logger.critical("shard cannot reload its state; refusing writes until the store is reopened", metadata: ["error": "\(error)"])
        }
    }

    // MARK: Placing events

    private func held(_ id: EventID, _ group: Group) throws(StoreError) -> IDRecord? {
        if let record = group.placed[id] { return record }
        let bytes: [UInt8]?
        do { bytes = try id.withBytes { key throws(RocksDBError) in try database.get(.ids, key: key) } } catch { throw .rocksDB(error) }
        guard let bytes else { return nil }
        do { return try IDRecord.decode(bytes) } catch {
            throw .corrupt(what: "id record of \(id)", detail: error.description)
        }
    }

    private func placement(_ record: IDRecord) throws(StoreError) -> Placement {
        guard let origin = origins.relay(at: record.origin) else {
            throw .corrupt(what: "id record", detail: "origin index \(record.origin) is unknown")
        }
        return Placement(position: record.position, origin: origin, originSeq: record.originSeq)
    }

    private func firstMissing(_ entry: PendingEntry, _ group: Group) throws(StoreError) -> Dependency? {
        for parent in entry.parents where try held(parent, group) == nil {
            return .event(parent)
        }
        if !entry.isLocal, entry.originSeq > 1 {
            let have = namespaces[entry.namespace]?.vector[entry.origin] ?? 0
            if have < entry.originSeq - 1 {
                return .originSeq(namespace: entry.namespace, origin: entry.origin, originSeq: entry.originSeq - 1)
            }
        }
        return nil
    }

    private func state(_ number: UInt32, _ namespace: Namespace, _ shard: UInt16) -> NamespaceState {
        if let state = namespaces[number] { return state }
        let state = NamespaceState(number: number, namespace: namespace, shard: shard)
        namespaces[number] = state
        return state
    }

    private func place(_ item: Item, _ group: Group) throws(StoreError) -> AppendResult {
        let event = item.event
        let namespace = state(item.namespace, event.namespace, item.shard)
        // An id hashes the event's namespace and timestamp, so an event newer than
        // every event of its namespace cannot already be in that log: the id index
        // lookup (measured at 40% of placing an event) is skipped for it. Only this
        // group's own events still need checking.
        let newerThanLog = event.timestamp.rawValue > namespace.timestampMax
        if let record = newerThanLog ? group.placed[event.id] : try held(event.id, group) {
            return AppendResult(id: event.id, outcome: .duplicate(try placement(record)))
        }
        if pending.contains(event.id) { return AppendResult(id: event.id, outcome: .pending) }
        if let (origin, originSeq) = item.origin, originSeq <= namespace.vector[origin] ?? 0 {
            // This (origin, originSeq) is taken by a different event: either the origin
            // equivocated, or retention already trimmed it.
            if let (id, _) = group.placed.first(where: {
                $0.value.namespace == item.namespace && $0.value.origin == origin && $0.value.originSeq == originSeq
            }) {
                return AppendResult(id: event.id, outcome: .conflict(existing: id))
            }
            guard let position = try OriginIndex.position(database, namespace, origin: origin, originSeq: originSeq) else {
                return AppendResult(id: event.id, outcome: .trimmed)
            }
            return AppendResult(id: event.id, outcome: .conflict(existing: try storedID(namespace: namespace, position: position)))
        }
        let entry = PendingEntry(
            id: event.id, namespace: item.namespace, origin: item.origin?.index ?? PendingRecord.localOrigin,
            originSeq: item.origin?.originSeq ?? 0, parents: event.parents)
        if let missing = try firstMissing(entry, group) {
            guard pending.count < configuration.pendingCountMax else {
                throw .pendingFull(writer: index, limit: configuration.pendingCountMax)
            }
            group.batch.put(
                .pending, Keys.pending(shard: namespace.shard, namespace: item.namespace, id: event.id),
                PendingRecord.encode(origin: entry.origin, originSeq: entry.originSeq, event: event), in: database)
            pending.add(entry, waitingOn: missing)
            group.pendingEvents[event.id] = event
            return AppendResult(id: event.id, outcome: .pending)
        }
        let placed = try enter(entry, event, group)
        return AppendResult(id: event.id, outcome: .appended(placed))
    }

    private func storedID(namespace: NamespaceState, position: UInt64) throws(StoreError) -> EventID {
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
    private func enter(_ first: PendingEntry, _ event: Event, _ group: Group) throws(StoreError) -> Placement {
        var work = [(first, event)]
        var firstPlacement: Placement?
        while let (entry, event) = work.popLast() {
            let shardNumber = namespaces[entry.namespace]!.shard
            let origin = entry.isLocal ? localOrigin : entry.origin
            let held = namespaces[entry.namespace]!.vector[origin] ?? 0
            let originSeq = entry.isLocal ? held + 1 : entry.originSeq
            if originSeq != held + 1 {
                // Released, but another event took this (origin, originSeq) meanwhile: an
                // equivocating origin. Dropped from pending; the first one stays.
                logger.warning("dropping pending event whose origin sequence is taken", metadata: [
                    "event": "\(entry.id)", "originSeq": "\(originSeq)"])
                pending.remove(entry.id)
                group.batch.delete(.pending, Keys.pending(shard: shardNumber, namespace: entry.namespace, id: entry.id), in: database)
                continue
            }
            let position = namespaces[entry.namespace]!.lastPosition + 1
            let record = IDRecord(namespace: entry.namespace, position: position, origin: origin, originSeq: originSeq)
            let batch = group.batch
            scratch.reset()
            Keys.log(shard: shardNumber, namespace: entry.namespace, position: position, into: &scratch)
            let keyByteCount = scratch.count
            LogRecord.encode(origin: origin, originSeq: originSeq, event: event, into: &scratch)
            batch.put(.log, scratch.bytes, keyByteCount: keyByteCount, in: database)
            scratch.reset()
            entry.id.write(into: &scratch)
            record.encode(into: &scratch)
            batch.put(.ids, scratch.bytes, keyByteCount: EventID.byteCount, in: database)
            if OriginIndex.isCheckpoint(originSeq) {
                batch.put(.origins, Keys.origin(shard: shardNumber, namespace: entry.namespace, origin: origin, originSeq: originSeq),
                          Keys.positionValue(position), in: database)
            }
            // Mutated in place: copying the state out and back would copy its vector.
            namespaces[entry.namespace]!.lastPosition = position
            namespaces[entry.namespace]!.vector[origin] = originSeq
            namespaces[entry.namespace]!.eventCount += 1
            namespaces[entry.namespace]!.byteCount += UInt64(event.encodedByteCount)
            if event.timestamp.rawValue > namespaces[entry.namespace]!.timestampMax {
                namespaces[entry.namespace]!.timestampMax = event.timestamp.rawValue
            }
            group.placed[entry.id] = record
            group.touched.insert(entry.namespace)
            if firstPlacement == nil {
                let relay = origin == localOrigin ? localRelay : origins.relay(at: origin)!
                firstPlacement = Placement(position: position, origin: relay, originSeq: originSeq)
            }
            guard pending.count > 0 else { continue }
            if pending.remove(entry.id) != nil {
                batch.delete(.pending, Keys.pending(shard: shardNumber, namespace: entry.namespace, id: entry.id), in: database)
            }
            let released = pending.release(.event(entry.id))
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

    private func pendingEvent(_ entry: PendingEntry, _ group: Group) throws(StoreError) -> Event {
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

    private func recheckPending(_ group: Group) throws(StoreError) {
        var entered = 0
        for entry in Array(pending.entries.values) where pending.contains(entry.id) {
            // An entry registered on its own id (see `load`) is ready or waits anew.
            _ = pending.release(.event(entry.id))
            if let missing = try firstMissing(entry, group) {
                pending.wait(entry.id, on: missing)
            } else {
                _ = try enter(entry, try pendingEvent(entry, group), group)
                entered += 1
            }
        }
        if entered > 0 { logger.info("pending events entered at open", metadata: ["count": "\(entered)"]) }
    }

    // MARK: Retention

    /// Trims the namespace's log through `through`, or as far as its retention
    /// policy asks when nil. Returns the new trim point.
    private func trim(_ number: UInt32, through: UInt64?, _ group: Group) throws(StoreError) -> UInt64 {
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
        group.touched.insert(number)
        logger.debug("trimmed", metadata: ["namespace": "\(namespace.namespace)", "through": "\(trimmed)"])
        return trimmed
    }
}
