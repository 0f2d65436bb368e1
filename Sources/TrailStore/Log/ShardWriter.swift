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
        /// A conditional append: the event enters only if the log ends here.
        var expectedLastPosition: UInt64? = nil
    }

    enum Job {
        case append([Item], CheckedContinuation<[AppendResult], any Error>)
        case setRetention(UInt32, Namespace, UInt16, Retention, CheckedContinuation<Void, any Error>)
        /// Trims through a position, or by the retention policy when nil.
        case trim(UInt32, UInt64?, CheckedContinuation<UInt64, any Error>)
        /// Re-examines every pending event (after open, in case a dependency is held).
        case recheckPending
        /// Local events from now on carry this origin (a new incarnation).
        case setOrigin(UInt32, RelayID, CheckedContinuation<Void, any Error>)
        /// These events entered another writer's shards: release what waits on them here.
        case release([EventID])
        /// The parents this writer's pending events wait on, for FETCH.
        case missing(Int, CheckedContinuation<[EventID], Never>)

        var isAppend: Bool {
            if case .append = self { return true }
            return false
        }

        var eventCount: Int {
            switch self {
            case .append(let items, _): items.count
            case .release(let ids): max(1, ids.count / 16)
            default: 1
            }
        }

        func fail(_ error: any Error) {
            switch self {
            case .append(_, let continuation): continuation.resume(throwing: error)
            case .setRetention(_, _, _, _, let continuation): continuation.resume(throwing: error)
            case .trim(_, _, let continuation): continuation.resume(throwing: error)
            case .recheckPending, .release: break
            case .missing(_, let continuation): continuation.resume(returning: [])
            case .setOrigin(_, _, let continuation): continuation.resume(throwing: error)
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
    let database: Database
    let origins: OriginRegistry
    let signals: CommitSignals
    let configuration: StoreConfiguration
    // The origin of local events; changed only on the writer thread, by `setOrigin`.
    var localOrigin: UInt32
    var localRelay: RelayID
    var logger: Logger

    private let queue = BlockingQueue<Job>(countMax: ShardWriter.queueJobCountMax)
    /// Set when the writer can no longer promise what it writes; every later job is refused with it.
    let failure = Locked<StoreError?>(nil)

    /// How many events wait in this writer's pending index, as of its last
    /// commit: other writers tell it of the events they place only when it
    /// has some (a parent may be in another writer's namespace).
    let pendingCount = Atomic<Int>(0)
    /// The store's other writers (set once, after all are created).
    let siblings = Locked<[Weak]>([])
    struct Weak: @unchecked Sendable { weak var writer: ShardWriter? }

    // Owned by the writer thread.
    var namespaces: [UInt32: NamespaceState] = [:]
    var pending = PendingIndex()
    /// Pending entries found ready when the shard was loaded (their
    /// dependencies entered the log before a crash left them pending): the
    /// first job after open enters them (`recheckPending`), in load order.
    var readyAtOpen: [EventID] = []
    /// Reused for every key and value the writer builds.
    var scratch = ByteWriter(capacity: 4096)
    /// Reused as every appending group's batch: written before the next group begins.
    let groupBatch = WriteBatch()

    /// What readers see: each namespace's state as of the last commit.
    let published = Locked<[UInt32: NamespaceState]>([:])
    /// The last events of each namespace's log, for reads at the head.
    let recent = Locked(RecentEvents())
    private let stopped = DispatchSemaphore(value: 0)
    /// Refuses appends while the disk is nearly full (nil: never).
    let diskGuard: DiskSpaceGuard?
    /// Syncs the WAL behind the writer when durability is `synced`.
    private(set) var syncer: WALSyncer?

    init(
        index: Int, shards: [Int], database: Database, namespaces registry: NamespaceRegistry, origins: OriginRegistry,
        signals: CommitSignals, configuration: StoreConfiguration, localOrigin: UInt32, writable: Bool = true,
        diskGuard: DiskSpaceGuard? = nil
    ) throws(StoreError) {
        self.diskGuard = diskGuard
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
            queue.close()
            stopped.signal()
            return
        }
        if configuration.durability == .synced {
            syncer = WALSyncer(
                database: database, logger: logger, name: "trail-sync-\(index)",
                complete: { [unowned self] in complete($0) }, onFailure: { [unowned self] in refuseWrites($0) })
        }
        let thread = Thread { [self] in run() }
        thread.name = "trail-writer-\(index)"
        thread.start()
        if !readyAtOpen.isEmpty { enqueue(.recheckPending) }
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

    // MARK: Queue

    func enqueue(_ job: Job) {
        if let failure = failure.withLock({ $0 }) {
            job.fail(failure)
            return
        }
        do throws(BlockingQueue<Job>.Refusal) {
            try queue.append(job)
        } catch {
            switch error {
            case .closed: job.fail(StoreError.closed)
            case .full(let count): job.fail(StoreError.overloaded(queuedJobs: count))
            }
        }
    }

    /// Finishes the queued jobs, then stops the thread and waits for it.
    func stop() {
        queue.close()
        stopped.wait()
    }

    /// Takes the next group's jobs: everything queued, up to `groupEventCountMax` events.
    func nextGroup(_ queue: inout Deque<Job>) -> [Job] {
        var jobs = [Job]()
        var events = 0
        while let job = queue.first, jobs.isEmpty || events + job.eventCount <= configuration.groupEventCountMax {
            jobs.append(queue.removeFirst())
            events += job.eventCount
        }
        return jobs
    }

    func run() {
        while let jobs = queue.take(nextGroup) {
            commit(jobs)
        }
        persistAll()
        syncer?.stop()
        stopped.signal()
    }

    // MARK: Group commit

    /// Changes made by the group being built, visible to later events in it before they reach RocksDB.
    final class Group {
        let batch: WriteBatch
        var placed: [EventID: IDRecord]
        var pendingEvents: [EventID: Event] = [:]
        private(set) var touched: Set<UInt32> = []
        /// The namespace touched last: a run of one namespace's events inserts it once.
        private var lastTouched: UInt32?
        /// Alias slots filled by this group, which the `origins` family does not show yet.
        var aliases: [AliasSlot: EventID] = [:]
        /// The events that entered a log, in order: `RecentEvents` once durable.
        var entered: [(namespace: UInt32, event: StoredEvent)] = []

        /// `eventCount`: about how many events the group places (its dictionary is sized once).
        /// `batch`: a reused one, cleared here (a group's batch grows to tens of KiB).
        init(eventCount: Int = 0, batch: WriteBatch = WriteBatch()) {
            batch.clear()
            self.batch = batch
            placed = Dictionary(minimumCapacity: eventCount)
        }

        func touch(_ namespace: UInt32) {
            guard namespace != lastTouched else { return }
            touched.insert(namespace)
            lastTouched = namespace
        }
    }

    struct AliasSlot: Hashable {
        let namespace: UInt32
        let origin: UInt32
        let originSeq: UInt64
    }

    func commit(_ jobs: [Job]) {
        var jobs = jobs
        // A nearly full disk refuses appends (events in or waiting for the log);
        // retention and the other jobs still run: trimming is how space returns.
        if jobs.contains(where: \.isAppend), let refusal = diskGuard?.refusal() {
            for job in jobs where job.isAppend { job.fail(refusal) }
            jobs.removeAll(where: \.isAppend)
            guard !jobs.isEmpty else { return }
        }
        let group = Group(eventCount: jobs.reduce(0) { $0 + ($1.isAppend ? $1.eventCount : 0) }, batch: groupBatch)
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
                group.touch(number)
                results.append(.success([]))
            case .trim(let number, let through, _):
                do throws(StoreError) {
                    trims.append(try trim(number, through: through, group))
                    results.append(.success([]))
                } catch {
                    trims.append(0)
                    results.append(.failure(error))
                }
            case .setOrigin(let index, let relay, _):
                localOrigin = index
                localRelay = relay
                results.append(.success([]))
            case .recheckPending:
                do throws(StoreError) { try recheckPending(group) } catch {
                    logger.error("recheck of pending events failed", metadata: ["error": "\(error)"])
                }
                results.append(.success([]))
            case .missing(let limit, let continuation):
                // Read from memory: answered now, nothing to commit.
                continuation.resume(returning: pending.missingEvents(limit: limit))
                results.append(.success([]))
            case .release(let ids):
                do throws(StoreError) { try release(ids, group) } catch {
                    logger.error("releasing events that waited on another writer's failed", metadata: ["error": "\(error)"])
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

        pendingCount.store(pending.count, ordering: .relaxed)
        tellSiblings(group)
        var states = [UInt32: NamespaceState]()
        for number in group.touched { states[number] = namespaces[number] }
        let completion = Completion(jobs: jobs, results: results, trims: trims, states: states, entered: group.entered)
        if let syncer { syncer.submit(completion) } else { complete(completion) }
    }

    /// A written group, waiting to be made visible and acknowledged.
    struct Completion: @unchecked Sendable {
        // Continuations and states move to the syncer thread once; nothing else touches them.
        let jobs: [Job]
        let results: [Result<[AppendResult], StoreError>]
        let trims: [UInt64]
        /// The touched namespaces as this group left them.
        let states: [UInt32: NamespaceState]
        let entered: [(namespace: UInt32, event: StoredEvent)]

        func fail(_ error: StoreError) { jobs.forEach { $0.fail(error) } }
    }

    /// Publishes a durable group's states, resumes its appenders, wakes subscribers.
    /// Runs on the writer thread (buffered) or the syncer thread (synced).
    func complete(_ completion: Completion) {
        if !completion.entered.isEmpty { recent.withLock { $0.add(completion.entered) } }
        // Per namespace, the origins of the events that entered, when nothing else changed
        // its log (an alias or a trim): a replicator's watcher may ignore those origins.
        var origins = [UInt32: Set<RelayID>]()
        if signals.isWatched {
            for (number, stored) in completion.entered { origins[number, default: []].insert(stored.origin) }
        }
        published.withLock { published in
            for (number, state) in completion.states {
                let before = published[number]
                if (before?.aliasCount ?? 0) != state.aliasCount || (before?.trimmedThrough ?? 0) != state.trimmedThrough { origins[number] = nil }
                published[number] = state
            }
        }
        var trimIndex = 0
        for (job, result) in zip(completion.jobs, completion.results) {
            switch (job, result) {
            case (.append(_, let continuation), .success(let answers)): continuation.resume(returning: answers)
            case (.setRetention(_, _, _, _, let continuation), .success): continuation.resume()
            case (.setOrigin(_, _, let continuation), .success): continuation.resume()
            case (.trim(_, _, let continuation), .success):
                continuation.resume(returning: completion.trims[trimIndex])
            case (_, .failure(let error)): job.fail(error)
            case (.recheckPending, _), (.release, _), (.missing, _): break
            }
            if case .trim = job { trimIndex += 1 }
        }
        signals.notify(completion.states.lazy.map { ($0.value.namespace, $0.value.lastPosition, origins[$0.key]) })
    }

    /// Refuses further writes: called when durability can no longer be promised.
    func refuseWrites(_ error: StoreError) {
        failure.withLock { $0 = error }
    }

    /// Checks the vector invariant of each touched namespace, adds the state
    /// records that are due to the batch, and commits with the configured durability.
    func write(_ group: Group, sync: Bool? = nil) throws(RocksDBError) {
        var persisted = [UInt32]()
        for number in group.touched {
            let state = namespaces[number]!
            // Vector = held set: each event has one (origin, originSeq), each alias
            // fills one more, and originSeqs are dense.
            precondition(state.vector.values.reduce(0, +) == state.lastPosition + state.aliasCount,
                         "vector \(state.vector) disagrees with last position \(state.lastPosition) and \(state.aliasCount) aliases of \(state.namespace)")
            if state.needsPersist {
                group.batch.put(.state, Keys.state(shard: state.shard, namespace: number), state.encoded, in: database)
                persisted.append(number)
            }
        }
        guard group.batch.count > 0 else { return }
        // With a syncer the group is synced by it, before anyone hears of it.
        try database.write(group.batch, sync: sync ?? (configuration.durability == .synced && syncer == nil))
        diskGuard?.wrote(group.batch.byteCount)
        for number in persisted {
            namespaces[number]!.persistedPosition = namespaces[number]!.lastPosition
            namespaces[number]!.mustPersist = false
        }
    }

    /// Writes every state record that lags its log, so the next open replays nothing.
    func persistAll() {
        let group = Group()
        for (number, state) in namespaces where state.lastPosition != state.persistedPosition || state.mustPersist {
            namespaces[number]!.mustPersist = true
            group.touch(number)
        }
        do { try write(group, sync: configuration.durability == .synced) } catch {
            logger.warning("could not write namespace states at close; the next open replays the log", metadata: ["error": "\(error)"])
        }
    }

    func reloadAfterFailure() {
        let registry = try? NamespaceRegistry(database: database, shardCount: configuration.shardCount, sync: false)
        do throws(StoreError) {
            guard let registry else { throw StoreError.corrupt(what: "namespace table", detail: "unreadable after a failed write") }
            recent.withLock { $0.removeAll() }
            try load(registry: registry)
        } catch {
            // The shard's memory no longer matches its disk: refuse writes until reopened.
            refuseWrites(error)
            logger.critical("shard cannot reload its state; refusing writes until the store is reopened", metadata: ["error": "\(error)"])
        }
    }
}
