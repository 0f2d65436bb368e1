import Foundation
public import TrailCore

extension Store {
    // MARK: Appending

    /// Appends one event accepted by this relay (its origin). Returns once the
    /// group holding it has committed with the configured durability.
    public func append(_ event: Event) async throws -> AppendResult {
        try await appendOne(event, ifLastPosition: nil)
    }

    /// Appends `event` only if the namespace's log ends at `lastPosition` (0:
    /// empty): a compare-and-set on the head, so that a leader's checkpoint
    /// cannot silently follow events it did not see. Answers `headMoved` with
    /// the actual last position otherwise; a retry of an appended event answers
    /// `duplicate`. Its parents must be held.
    public func append(_ event: Event, ifLastPosition lastPosition: UInt64) async throws -> AppendResult {
        try await appendOne(event, ifLastPosition: lastPosition)
    }

    /// The common single-event path, without the batch's per-writer split.
    func appendOne(_ event: Event, ifLastPosition lastPosition: UInt64?) async throws -> AppendResult {
        guard !closed else { throw StoreError.closed }
        guard mode == .primary else { throw StoreError.readOnly }
        if event.signature != nil { try await verifySignatures([event]) }
        try validate(event)
        let entry = try namespaceRegistry.intern(event.namespace)
        var item = ShardWriter.Item(event: event, namespace: entry.number, shard: entry.shard, origin: nil)
        item.expectedLastPosition = lastPosition
        return try await send([item], to: writer(for: Int(entry.shard)))[0]
    }

    /// Appends events accepted by this relay; results are in the same order.
    public func append(contentsOf events: [Event]) async throws -> [AppendResult] {
        try await submit(events.map { ($0, nil) })
    }

    /// An event that another relay accepted first, with its `(origin, originSeq)`:
    /// a segment's record, applied as it arrives.
    public typealias Replicated = Segment.Record

    /// Applies events from other relays (replication, import). Each enters the
    /// log only after its parents and its origin predecessor; until then it is
    /// pending. Idempotent: applying a held event answers `duplicate`.
    ///
    /// Signatures are verified here unless `signaturesVerified`: a caller that
    /// verified them already (a peer link, while the previous segment applied)
    /// says so, and must have refused any that did not verify.
    public func apply(contentsOf events: [Replicated], signaturesVerified: Bool = false) async throws -> [AppendResult] {
        var items = [(Event, (RelayID, UInt64)?)]()
        items.reserveCapacity(events.count)
        for replicated in events {
            guard replicated.originSeq >= 1 else {
                throw StoreError.invalidEvent("event \(replicated.event.id) has originSeq 0; origin sequences start at 1")
            }
            items.append((replicated.event, (replicated.origin, replicated.originSeq)))
        }
        return try await submit(items, verify: !signaturesVerified)
    }

    public func apply(_ event: Event, origin: RelayID, originSeq: UInt64) async throws -> AppendResult {
        try await apply(contentsOf: [Replicated(event: event, origin: origin, originSeq: originSeq)])[0]
    }

    func submit(_ events: [(Event, (RelayID, UInt64)?)], verify: Bool = true) async throws -> [AppendResult] {
        guard !closed else { throw StoreError.closed }
        guard mode == .primary else { throw StoreError.readOnly }
        guard !events.isEmpty else { return [] }
        if verify, events.contains(where: { $0.0.signature != nil }) { try await verifySignatures(events.map(\.0)) }
        var perWriter = [Int: [(index: Int, item: ShardWriter.Item)]]()
        var previous: (Namespace, NamespaceRegistry.Entry)?
        for (index, (event, origin)) in events.enumerated() {
            try validate(event)
            // Batches usually repeat a namespace: skip the registry's lock for a repeat.
            let entry: NamespaceRegistry.Entry
            if let (namespace, known) = previous, namespace == event.namespace {
                entry = known
            } else {
                entry = try namespaceRegistry.intern(event.namespace)
                previous = (event.namespace, entry)
            }
            let originIndex = try origin.map { (try originRegistry.intern($0.0), $0.1) }
            perWriter[Int(entry.shard) % writers.count, default: []].append(
                (index, ShardWriter.Item(event: event, namespace: entry.number, shard: entry.shard,
                                         origin: originIndex.map { (index: $0.0, originSeq: $0.1) })))
        }
        if perWriter.count == 1, let (writer, items) = perWriter.first {
            return try await send(items.map(\.item), to: writers[writer])
        }
        var results = [AppendResult?](repeating: nil, count: events.count)
        try await withThrowingTaskGroup(of: [(Int, AppendResult)].self) { group in
            for (writer, items) in perWriter {
                let writer = writers[writer]
                group.addTask {
                    let answers = try await self.send(items.map(\.item), to: writer)
                    return Array(zip(items.map(\.index), answers))
                }
            }
            for try await answers in group {
                for (index, answer) in answers { results[index] = answer }
            }
        }
        return results.map { $0! }
    }

    func send(_ items: [ShardWriter.Item], to writer: ShardWriter) async throws -> [AppendResult] {
        try await withCheckedThrowingContinuation { continuation in
            writer.enqueue(.append(items, continuation))
        }
    }

    func validate(_ event: Event) throws {
        guard event.payload.count <= configuration.limits.payloadBytesMax else {
            throw StoreError.invalidEvent("event \(event.id.short) payload is \(event.payload.count) bytes; limit is \(configuration.limits.payloadBytesMax)")
        }
    }

    /// Signed events in a batch are verified on every core (`Event.signatureStatuses`):
    /// Ed25519 verification (about 130 µs each here) would otherwise hold a
    /// large batch to one core.
    func verifySignatures(_ events: [Event]) async throws {
        let signed = events.filter { $0.signature != nil }
        for (event, status) in zip(signed, Event.signatureStatuses(signed)) {
            switch status {
            case .unsigned, .valid: continue
            case .invalid: throw StoreError.invalidEvent("event \(event.id.short) signature does not verify against its author")
            case .signedWithoutAuthor: throw StoreError.invalidEvent("event \(event.id.short) is signed but names no author")
            }
        }
    }
}
