public import TrailCore
public import TrailStore

/// How two logs of one namespace differ.
public struct NamespaceDifference: Sendable {
    public struct Conflict: Sendable, Hashable {
        public let origin: RelayID
        public let originSeq: UInt64
        public let inA: EventID
        public let inB: EventID
    }

    /// Two events both logs hold, in opposite orders: A puts `first` before
    /// `second`, B puts `second` before `first`. Only concurrent events can
    /// do this in sound logs: their order is each relay's arrival order.
    public struct Disagreement: Sendable, Hashable {
        public let first: StoredEvent
        public let second: StoredEvent
        /// Their positions in B.
        public let firstInB: UInt64
        public let secondInB: UInt64
        /// Whether the two are concurrent (neither is an ancestor of the other
        /// within the logs read); false means a log breaks the causal invariant.
        public let concurrent: Bool
    }

    public let namespace: Namespace
    public let vectorA: VersionVector
    public let vectorB: VersionVector
    /// Events A holds that B lacks, in A's order; then the reverse, in B's.
    public let onlyInA: [StoredEvent]
    public let onlyInB: [StoredEvent]
    /// The same `(origin, originSeq)` naming different events: one log is wrong.
    public let conflicts: [Conflict]
    /// Each common event that B places before one A placed earlier, paired with that one.
    public let disagreements: [Disagreement]
    public let commonCount: Int

    public var vectorOrder: VersionVector.Order { vectorA.compare(vectorB) }
    /// Identical: the same events in the same order.
    public var isSame: Bool { isConverged && disagreements.isEmpty }
    /// The same events, no conflicts, and any order disagreement only between
    /// concurrent events (which relays may legitimately order differently).
    public var isConverged: Bool {
        onlyInA.isEmpty && onlyInB.isEmpty && conflicts.isEmpty && disagreements.allSatisfy(\.concurrent)
    }
}

/// Compares two logs (relays, data directories, exports): first their
/// vectors, then event by event, listing exactly what one holds and the
/// other lacks per namespace and origin, events whose `(origin, originSeq)`
/// conflict, and pairs of common events the two logs order differently.
/// Memory: one entry per event of B's namespace while it is compared.
public struct Diff: Sendable {
    public let a: any LogSource
    public let b: any LogSource
    /// At most this many order disagreements are listed per namespace.
    public var disagreementCountMax = 100

    public init(_ a: any LogSource, _ b: any LogSource) {
        self.a = a
        self.b = b
    }

    public func run(prefix: String = "") async throws -> [NamespaceDifference] {
        let summariesA = Dictionary(uniqueKeysWithValues: try await a.namespaces(prefix: prefix).map { ($0.namespace, $0) })
        let summariesB = Dictionary(uniqueKeysWithValues: try await b.namespaces(prefix: prefix).map { ($0.namespace, $0) })
        var differences = [NamespaceDifference]()
        for namespace in Set(summariesA.keys).union(summariesB.keys).sorted(by: { $0.name < $1.name }) {
            differences.append(try await compare(namespace, summariesA[namespace], summariesB[namespace]))
        }
        return differences
    }

    struct Held {
        var position: UInt64
        var event: StoredEvent
        var matched = false
    }

    public func compare(_ namespace: Namespace, _ summaryA: LogSummary?, _ summaryB: LogSummary?) async throws -> NamespaceDifference {
        var inB = [EventID: Held]()
        var bySeq = [RelayID: [UInt64: EventID]]()
        var orderB = [EventID]()
        if summaryB != nil {
            try await b.forEachPage(namespace) { page in
                for stored in page {
                    inB[stored.id] = Held(position: stored.position, event: stored)
                    bySeq[stored.origin, default: [:]][stored.originSeq] = stored.id
                    orderB.append(stored.id)
                }
                return true
            }
        }
        var onlyInA = [StoredEvent]()
        var conflicts = [NamespaceDifference.Conflict]()
        var disagreements = [NamespaceDifference.Disagreement]()
        var common = 0
        // The common event with the highest position in B seen so far in A's order.
        var latest: (event: StoredEvent, positionInB: UInt64)?
        var ancestors = AncestorIndex()
        if summaryA != nil {
            try await a.forEachPage(namespace) { page in
                for stored in page {
                    ancestors.add(stored.event)
                    guard let held = inB[stored.id] else {
                        if let other = bySeq[stored.origin]?[stored.originSeq] {
                            conflicts.append(.init(origin: stored.origin, originSeq: stored.originSeq, inA: stored.id, inB: other))
                        } else {
                            onlyInA.append(stored)
                        }
                        continue
                    }
                    inB[stored.id]!.matched = true
                    common += 1
                    if let previous = latest, held.position < previous.positionInB {
                        if disagreements.count < disagreementCountMax {
                            disagreements.append(.init(
                                first: previous.event, second: stored, firstInB: previous.positionInB, secondInB: held.position,
                                concurrent: !ancestors.isAncestor(previous.event.id, of: stored.event)))
                        }
                    } else {
                        latest = (stored, held.position)
                    }
                }
                return true
            }
        }
        let onlyInB = orderB.compactMap { id -> StoredEvent? in
            guard let held = inB[id], !held.matched else { return nil }
            return conflicts.contains { $0.inB == id } ? nil : held.event
        }
        return NamespaceDifference(
            namespace: namespace, vectorA: summaryA?.vector ?? VersionVector(), vectorB: summaryB?.vector ?? VersionVector(),
            onlyInA: onlyInA, onlyInB: onlyInB, conflicts: conflicts, disagreements: disagreements, commonCount: common)
    }
}

/// The parents of the events read so far, to ask whether one event is an
/// ancestor of another (a bounded search back through parents).
struct AncestorIndex {
    var parents = [EventID: [EventID]]()

    mutating func add(_ event: Event) { parents[event.id] = event.parents }

    /// Whether `ancestor` is reachable from `event` through parents, searching
    /// at most `visitMax` events (beyond that it answers yes: not shown concurrent).
    func isAncestor(_ ancestor: EventID, of event: Event, visitMax: Int = 100_000) -> Bool {
        var stack = event.parents
        var seen = Set<EventID>()
        while let next = stack.popLast() {
            if next == ancestor { return true }
            guard seen.insert(next).inserted else { continue }
            if seen.count > visitMax { return true }
            stack.append(contentsOf: parents[next] ?? [])
        }
        return false
    }
}
