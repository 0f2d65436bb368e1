import TrailCore

/// What a pending event waits for: a parent, or its origin predecessor.
enum Dependency: Hashable {
    case event(EventID)
    case originSeq(namespace: UInt32, origin: UInt32, originSeq: UInt64)
}

/// A pending event's dependency facts, kept in memory; its bytes stay in the
/// `pending` family until it enters the log.
struct PendingEntry {
    let id: EventID
    let namespace: UInt32
    /// `PendingRecord.localOrigin` for an event accepted here, numbered on entry.
    let origin: UInt32
    let originSeq: UInt64
    let parents: [EventID]
    /// Set for a pending alias (`id` is then `AliasRecord.pendingKey`): the
    /// slot `(origin, originSeq)` of this event, held or pending under another.
    var aliasOf: EventID? = nil
    var isLocal: Bool { origin == PendingRecord.localOrigin }
}

/// The in-memory index over one shard's pending events. Each entry waits on
/// exactly one missing dependency at a time; when that arrives, the entry is
/// checked again and either enters the log or waits on the next one. So an
/// entry is never released twice, and the index holds one waiter per entry.
struct PendingIndex {
    private(set) var entries: [EventID: PendingEntry] = [:]
    private var waiters: [Dependency: [EventID]] = [:]

    var count: Int { entries.count }

    func contains(_ id: EventID) -> Bool { entries[id] != nil }

    mutating func add(_ entry: PendingEntry, waitingOn dependency: Dependency) {
        entries[entry.id] = entry
        waiters[dependency, default: []].append(entry.id)
    }

    /// Adds an entry that waits on nothing yet: its owner enters it or makes it wait.
    mutating func add(_ entry: PendingEntry) { entries[entry.id] = entry }

    mutating func wait(_ id: EventID, on dependency: Dependency) {
        precondition(entries[id] != nil, "only a pending event waits")
        waiters[dependency, default: []].append(id)
    }

    /// The entries that waited on `dependency`, no longer registered anywhere.
    mutating func release(_ dependency: Dependency) -> [PendingEntry] {
        (waiters.removeValue(forKey: dependency) ?? []).compactMap { entries[$0] }
    }

    @discardableResult
    mutating func remove(_ id: EventID) -> PendingEntry? { entries.removeValue(forKey: id) }

    /// Events that pending events wait on and that are not pending themselves:
    /// what a peer could be asked for by id.
    func missingEvents(limit: Int) -> [EventID] {
        var missing = [EventID]()
        for dependency in waiters.keys {
            guard missing.count < limit else { break }
            if case .event(let id) = dependency, entries[id] == nil { missing.append(id) }
        }
        return missing.sorted()  // the same order on every run of a simulation seed
    }
}
