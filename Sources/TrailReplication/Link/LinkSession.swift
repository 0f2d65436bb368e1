import Foundation
import Logging
public import TrailCore
public import TrailStore

/// The replication protocol of one link once the handshake has proved who
/// the peer is, apart from any transport, task or clock: what the peer is
/// known to hold, what to send it next, and what each of its frames does to
/// this relay's store. `PeerLink` drives a session over a connection (with
/// credits, timers and one task per loop); `TrailSimulation` drives many of
/// them step by step from one seed, over a simulated network.
///
/// A driver calls `openingFrames` once, then, in any interleaving its
/// transport allows: `receiveWant`/`receiveAck` for the peer's vectors,
/// `decodeSegment` then `apply` for its segments, `answer(fetch:)` and
/// `receiveFetched` for FETCH, `nextSegments` to push (after the peer's
/// READY), and `parentsToFetch` while events are pending.
public final class LinkSession: Sendable {
    public let store: Store
    public let configuration: ReplicationConfiguration
    /// The peer's HELLO.
    public let peer: Frame.Hello
    /// Events from the peer that equivocate (another event at the same origin and originSeq), logged as errors.
    public var conflicts: UInt64 { conflictCount.withLock { $0 } }
    private let conflictCount = Locked<UInt64>(0)

    /// Per namespace, what the peer is known to hold: its WANT, its ACKs, and what it sent or was sent.
    private let peerHeld = Locked<[Namespace: VersionVector]>([:])
    /// Per namespace, how far this relay's log (positions, aliases) was considered for pushing.
    private let considered = Locked<[Namespace: (position: UInt64, alias: UInt64)]>([:])
    /// FETCH: when each id was last asked for.
    private let asked = Locked<[EventID: Duration]>([:])

    public init(store: Store, configuration: ReplicationConfiguration, peer: Frame.Hello) {
        self.store = store
        self.configuration = configuration
        self.peer = peer
    }

    var logger: Logger { configuration.logger }

    /// Whether both relays hold `namespace` (their prefixes both cover it).
    public func shares(_ namespace: Namespace) -> Bool {
        holds(configuration.prefixes, namespace) && holds(peer.prefixes, namespace)
    }

    /// The frames that open the exchange: a WANT per shared namespace with
    /// what this relay holds, then READY.
    public func openingFrames() -> [Frame] {
        store.heads(prefixes: configuration.prefixes).keys.sorted().filter(shares)
            .map { Frame.want($0, store.vector(of: $0)) } + [.ready]
    }

    // MARK: Receiving

    /// The peer's WANT: what it holds of `namespace`. A peer that holds more
    /// of this relay's own current origin than this relay does means this
    /// relay lost events it accepted (restored from a backup, its WAL lost):
    /// it must start a new incarnation (`staleIncarnation`, thrown here).
    ///
    /// The check is made by the relay whose origin it is, against its own
    /// log as it stands when the WANT arrives: every event of its origin
    /// that a peer can hold was made here before, so a relay that lost
    /// nothing always holds at least as much. (Checked the other way round,
    /// by the peer against the sender's WANT, it raced: an event made after
    /// the WANT was sent could reach the peer first through a third relay.)
    public func receiveWant(_ namespace: Namespace, _ vector: VersionVector) throws(ProtocolError) {
        guard shares(namespace) else {
            throw ProtocolError(.notHeld, "WANT for \(namespace), which is outside what both relays hold")
        }
        let origin = store.originID
        let mine = store.vector(of: namespace)
        if vector[origin] > mine[origin] {
            throw ProtocolError(.staleIncarnation, "in \(namespace) the peer holds originSeq \(vector[origin]) of this relay's origin \(origin.hex.prefix(16)), and this relay holds \(mine[origin]): it lost events it accepted and starts a new incarnation")
        }
        peerHeld.withLock { $0[namespace, default: VersionVector()].merge(vector) }
    }

    /// The peer's ACK: what it holds of `namespace` now.
    public func receiveAck(_ namespace: Namespace, _ vector: VersionVector) {
        peerHeld.withLock { $0[namespace, default: VersionVector()].merge(vector) }
    }

    /// Decodes a SEGMENT's bytes (checksum, every id's hash) and verifies its
    /// signatures: the part of receiving that may run on any core, ahead of `apply`.
    public static func decodeSegment(_ bytes: [UInt8], limits: EventLimits) throws -> Segment {
        let segment: Segment
        do { segment = try Segment(decoding: bytes, limits: limits) } catch {
            throw ProtocolError(.badSegment, error.description)
        }
        let signed = segment.records.map(\.event).filter { $0.signature != nil }
        for (event, status) in zip(signed, Event.signatureStatuses(signed)) where status != .valid {
            throw ProtocolError(.invalidEvent, status == .invalid
                ? "event \(event.id.short) in \(segment.namespace): its signature does not verify against its author"
                : "event \(event.id.short) in \(segment.namespace) is signed but names no author")
        }
        return segment
    }

    /// Applies a decoded segment and answers the ACK to send back.
    public func apply(_ segment: Segment) async throws -> Frame {
        guard shares(segment.namespace) else {
            throw ProtocolError(.notHeld, "SEGMENT of \(segment.namespace), outside what both relays hold")
        }
        // The peer holds what it sent: never push it back, even before it is applied here.
        peerHeld.withLock { $0[segment.namespace, default: VersionVector()].merge(segment.advances) }
        try await applyRecords(segment.records, signaturesVerified: true)
        return .ack(segment.namespace, store.vector(of: segment.namespace))
    }

    /// The peer's FETCH: the events asked for that this relay holds, as FETCHED.
    public func answer(fetch ids: [EventID]) throws -> Frame {
        var records = [Segment.Record]()
        for id in ids {
            if let stored = try store.event(id: id), shares(stored.event.namespace) {
                records.append(Segment.Record(origin: stored.origin, originSeq: stored.originSeq, event: stored.event))
            }
        }
        return .fetched(records)
    }

    /// The peer's FETCHED: applied like any event.
    public func receiveFetched(_ records: [Segment.Record]) async throws {
        for record in records where !shares(record.event.namespace) {
            throw ProtocolError(.notHeld, "FETCHED event \(record.event.id.short) in \(record.event.namespace), outside what both relays hold")
        }
        try await applyRecords(records)
    }

    private func applyRecords(_ records: [Store.Replicated], signaturesVerified: Bool = false) async throws {
        guard !records.isEmpty else { return }
        let results: [AppendResult]
        do { results = try await store.apply(contentsOf: records, signaturesVerified: signaturesVerified) } catch StoreError.invalidEvent(let reason) {
            throw ProtocolError(.invalidEvent, reason)
        }
        for (record, result) in zip(records, results) {
            if case .conflict(let held) = result.outcome {
                conflictCount.withLock { $0 += 1 }
                logger.error("peer sent an event that conflicts with one held", metadata: [
                    "event": "\(record.event.id)", "origin": "\(record.origin.hex.prefix(16))",
                    "originSeq": "\(record.originSeq)", "held": "\(held)"])
            }
        }
    }

    // MARK: Pushing

    /// The shared namespaces whose log grew (positions or aliases) past what
    /// was considered for the peer, sorted, each with its last position.
    public func grownNamespaces() -> [(namespace: Namespace, head: UInt64)] {
        let considered = considered.withLock { $0 }
        return store.tips(prefixes: configuration.prefixes).sorted(by: { $0.key < $1.key }).compactMap { namespace, tip in
            guard shares(namespace) else { return nil }
            if let through = considered[namespace], through.position >= tip.lastPosition, through.alias >= tip.aliasCount { return nil }
            return (namespace, tip.lastPosition)
        }
    }

    /// The next page of the namespace's log that the peer lacks, in this
    /// relay's log order, with the aliases (`Store.aliases`) that entered among
    /// those positions, each where it entered: a record of its slot with the
    /// event's bytes. As segments of at most the configured size, each
    /// encoded (at most the peer's frame limit) and counted as held by the
    /// peer. Nil when the page did not move (nothing new was considered).
    public func nextSegments(of namespace: Namespace, head: UInt64) throws -> [(segment: Segment, encoded: [UInt8])]? {
        let through = considered.withLock { $0[namespace] }
        let held = peerHeld.withLock { $0[namespace] } ?? VersionVector()
        let page: Page
        do {
            page = try store.read(
                namespace, after: through.map { .position(relay: store.relayID.fingerprint, position: $0.position) } ?? .vector(held),
                limit: configuration.segmentEventCountMax, bySlot: true)
        } catch StoreError.trimmed(_, let trimmedThrough, _) {
            logger.warning("the peer lacks events trimmed here", metadata: [
                "namespace": "\(namespace)", "trimmedThrough": "\(trimmedThrough)", "peer": "\(peer.relay.hex.prefix(16))"])
            let aliasCount = store.aliasCount(of: namespace)
            considered.withLock { $0[namespace] = (head, aliasCount) }
            return nil
        }
        guard case .position(_, let last) = page.cursor else { return nil }
        let aliasesBefore = through?.alias ?? 0
        var aliases = store.aliasCount(of: namespace) > aliasesBefore
            ? try store.aliases(in: namespace, after: aliasesBefore).prefix { $0.after <= last }[...] : []
        considered.withLock { $0[namespace] = (last, aliases.last?.number ?? aliasesBefore) }
        guard last > (through?.position ?? 0) || !aliases.isEmpty else { return nil }
        var records = [Segment.Record]()
        func take(_ record: Segment.Record) {
            if !held.contains(origin: record.origin, originSeq: record.originSeq) { records.append(record) }
        }
        for stored in page.events {
            while let alias = aliases.first, alias.after < stored.position {
                aliases.removeFirst()
                if let event = try aliasedEvent(alias, namespace, page) { take(Segment.Record(origin: alias.origin, originSeq: alias.originSeq, event: event)) }
            }
            take(Segment.Record(origin: stored.origin, originSeq: stored.originSeq, event: stored.event))
        }
        for alias in aliases {
            if let event = try aliasedEvent(alias, namespace, page) { take(Segment.Record(origin: alias.origin, originSeq: alias.originSeq, event: event)) }
        }
        return try segments(records, namespace: namespace, firstPosition: page.events.first?.position ?? 0)
    }

    /// The event an alias names: from the page when there, else read from the log (nil once trimmed).
    private func aliasedEvent(_ alias: Alias, _ namespace: Namespace, _ page: Page) throws -> Event? {
        if let stored = page.events.first(where: { $0.position == alias.eventPosition }) { return stored.event }
        return try store.event(at: alias.eventPosition, in: namespace)?.event
    }

    /// Splits records into segments where one would pass the byte target or
    /// break a run of consecutive originSeqs, and counts them as held by the peer.
    private func segments(_ records: [Segment.Record], namespace: Namespace, firstPosition: UInt64) throws -> [(segment: Segment, encoded: [UInt8])] {
        let byteLimit = Int(peer.frameBytesMax) - 64
        var segments = [(segment: Segment, encoded: [UInt8])]()
        var start = 0
        while start < records.count {
            var end = start
            var bytes = 0
            var next = [RelayID: UInt64]()  // a segment carries consecutive originSeqs per origin
            while end < records.count, end == start || bytes + records[end].event.encodedByteCount <= configuration.segmentByteTarget {
                let record = records[end]
                if let expected = next[record.origin], record.originSeq != expected { break }
                next[record.origin] = record.originSeq + 1
                bytes += record.event.encodedByteCount + 6
                end += 1
            }
            let segment: Segment
            do {
                segment = try Segment(namespace: namespace, firstPosition: firstPosition, records: Array(records[start..<end]))
            } catch {
                throw ProtocolError(.internalError, "this relay's log of \(namespace) does not form a segment: \(error)")
            }
            let encoded = segment.encoded()
            guard encoded.count <= byteLimit else {
                throw ProtocolError(.internalError, "event \(records[start].event.id.short) makes a segment of \(encoded.count) bytes; the peer accepts frames of at most \(byteLimit)")
            }
            peerHeld.withLock { $0[namespace, default: VersionVector()].merge(segment.advances) }
            segments.append((segment, encoded))
            start = end
        }
        return segments
    }

    // MARK: Fetching

    /// The ids to ask the peer for with FETCH at time `now` (any monotonic
    /// time the driver keeps): parents that pending events wait on and that
    /// this relay holds nowhere, each again only after `again` since it was
    /// last asked, so that an answerless peer is not flooded.
    public func parentsToFetch(now: Duration, again: Duration) async -> [EventID] {
        guard store.hasPending else { return [] }
        let missing = await store.missingParents(limit: Frame.fetchCountMax)
        return asked.withLock { asked in
            asked = asked.filter { now - $0.value < again }
            let wanted = missing.filter { asked[$0] == nil }
            for id in wanted { asked[id] = now }
            return wanted
        }
    }
}
