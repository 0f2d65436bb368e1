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
/// READY), `parentsToFetch` while events are pending, `receivePrune` and
/// `receiveGraft` for the peer's routing, and `routingFrames` every
/// `routeInterval`.
///
/// Routing (PRUNE/GRAFT, in the manner of epidemic broadcast trees): a relay
/// linked to several peers would take each event once from every one of
/// them. When the peer's WANTs are all in (its READY), each origin the peer
/// holds more of than this relay is claimed for this link on the relay's
/// `RouteBoard`, unless another link carries it already: then the session
/// asks the peer not to push it (PRUNE), before granting the credit any
/// push needs. Later, a segment from this peer claims its origins likewise,
/// and prunes those another link carries. A session with no board (routing
/// off, `ReplicationConfiguration.routing`) prunes nothing, and honours the
/// peer's PRUNE and GRAFT all the same. A peer that pruned
/// origins is sent this relay's vector (an ACK) whenever it changes, so it
/// sees what it is missing; if this relay's own vector for a pruned origin
/// then stands still for a whole `routeInterval` while the peer holds more,
/// the other path has gone quiet and the session asks for it again (GRAFT).
public final class LinkSession: Sendable {
    public let store: Store
    public let configuration: ReplicationConfiguration
    /// The peer's HELLO.
    public let peer: Frame.Hello
    /// Events from the peer that equivocate (another event at the same origin and originSeq), logged as errors.
    public var conflicts: UInt64 { conflictCount.withLock { $0 } }
    private let conflictCount = Locked<UInt64>(0)

    /// Per namespace, what the peer is known to hold: its WANT, its ACKs, and what it sent or was sent.
    private let peerHeld = Locked<PeerHeld>(PeerHeld())
    /// Per namespace, how far this relay's log (positions, aliases) was considered for pushing.
    private let considered = Locked<[Namespace: (position: UInt64, alias: UInt64)]>([:])
    /// FETCH: when each id was last asked for.
    private let asked = Locked<[EventID: Duration]>([:])
    /// PRUNE from the peer: per namespace, the origins not to push to it.
    private let prunedByPeer = Locked<[Namespace: Set<RelayID>]>([:])
    /// PRUNE sent to the peer: per namespace and origin, what this relay
    /// held of it at the last routing check, and for how many checks since
    /// that count stood still.
    private let prunedHere = Locked<[Namespace: [RelayID: (held: UInt64, still: Int)]]>([:])
    /// The relay's record of which link carries which origin, if it keeps one.
    public let routes: RouteBoard?
    private var id: ObjectIdentifier { ObjectIdentifier(self) }
    /// Per namespace, when this relay last sent its vector as a note, and its
    /// log's length then (positions plus aliases: it grows exactly when the vector does).
    private let noted = Locked<[Namespace: (length: UInt64, at: Duration)]>([:])
    /// Counts changes of what either side pruned (`noting` is kept between them).
    private let pruneEpoch = Locked<UInt64>(0)
    /// What the routing checks keep between calls (`routingFrames`).
    private let scan = Locked(RoutingScan())
    /// DIRECT from the peer, less this relay's own origin: the origins whose
    /// own relays the peer is linked to, which a push leaves out.
    private let directAtPeer = Locked<Set<RelayID>>([])
    /// Namespaces the push loop must look at again although their logs did
    /// not grow (`grownNamespaces(changed:)`): a GRAFT's, or all of them.
    private let revisit = Locked<(all: Bool, namespaces: Set<Namespace>)>((false, []))
    /// DIRECT sent to the peer: the origins last announced.
    private let directSent = Locked<Set<RelayID>>([])

    public init(store: Store, configuration: ReplicationConfiguration, peer: Frame.Hello, routes: RouteBoard? = nil) {
        self.routes = routes
        self.store = store
        self.configuration = configuration
        self.peer = peer
    }

    var logger: Logger { configuration.logger }

    /// Whether both relays hold `namespace` (their prefixes both cover it).
    public func shares(_ namespace: Namespace) -> Bool {
        holds(configuration.prefixes, namespace) && holds(peer.prefixes, namespace)
    }

    /// The namespaces this relay holds that both relays' prefixes cover, sorted.
    private var sharedNamespaces: [Namespace] {
        store.heads(prefixes: configuration.prefixes).keys.sorted().filter(shares)
    }

    /// The frames that open the exchange: a WANT per shared namespace with
    /// what this relay holds, then READY.
    public func openingFrames() -> [Frame] {
        sharedNamespaces.map { Frame.want($0, store.vector(of: $0)) } + [.ready]
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
        peerHeld.withLock { $0.merge(vector, in: namespace) }
    }

    /// The peer's READY: its WANTs are all in. Claims, on the relay's route
    /// board, the origins the peer holds more of than this relay; answers a
    /// PRUNE per namespace of those another link carries already. The driver
    /// sends them before the peer's first credit, so the peer never pushes
    /// what it was told not to.
    public func receiveReady() -> [Frame] {
        guard let routes else { return [] }
        let held = peerHeld.withLock { $0.vectors }
        var frames = [Frame]()
        for namespace in held.keys.sorted() {
            let mine = store.vector(of: namespace)
            let theirs = held[namespace]!
            let ahead = theirs.origins.filter { theirs[$0] > mine[$0] }
            let carried = routes.claim(ahead, in: namespace, for: id, direct: peer.origin)
            if let prune = prune(Set(carried), now: mine, in: namespace) { frames.append(prune) }
        }
        return frames
    }

    /// The link ended: the origins it carried are free for other links to claim.
    public func close() {
        routes?.release(id)
    }

    /// The peer's ACK: what it holds of `namespace` now.
    public func receiveAck(_ namespace: Namespace, _ vector: VersionVector) {
        peerHeld.withLock { $0.merge(vector, in: namespace) }
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

    /// Applies a decoded segment and answers the frames to send back: the
    /// ACK, then, when routing, a PRUNE of its origins that another link carries.
    public func apply(_ segment: Segment) async throws -> [Frame] {
        let namespace = segment.namespace
        guard shares(namespace) else {
            throw ProtocolError(.notHeld, "SEGMENT of \(namespace), outside what both relays hold")
        }
        // The peer holds what it sent: never push it back, even before it is applied here.
        peerHeld.withLock { $0.merge(segment.advances, in: namespace) }
        try await applyRecords(segment.records, signaturesVerified: true)
        let after = store.vector(of: namespace)
        var frames: [Frame] = [.ack(namespace, after)]
        if let prune = prune(segment.records, now: after, in: namespace) { frames.append(prune) }
        return frames
    }

    /// The PRUNE for the origins of `records` that another link carries
    /// (the route board: this link claims those no link carries).
    private func prune(_ records: [Segment.Record], now: VersionVector, in namespace: Namespace) -> Frame? {
        guard let routes else { return nil }
        let origins = Set(records.map(\.origin))
        return prune(Set(routes.claim(Array(origins), in: namespace, for: id, direct: peer.origin)), now: now, in: namespace)
    }

    /// The PRUNE of those of `origins` not pruned on this link already, remembered for the routing checks.
    private func prune(_ redundant: Set<RelayID>, now: VersionVector, in namespace: Namespace) -> Frame? {
        guard !redundant.isEmpty else { return nil }
        return prunedHere.withLock { pruned -> Frame? in
            let new = redundant.filter { pruned[namespace]?[$0] == nil }
            guard !new.isEmpty else { return nil }
            for origin in new { pruned[namespace, default: [:]][origin] = (now[origin], 0) }
            peerHeld.withLock { $0.heard(of: namespace) }  // routing checks watch these origins now
            pruneEpoch.withLock { $0 &+= 1 }
            return .prune(namespace, new.sorted())
        }
    }

    /// The peer's PRUNE: its records of these origins are no longer pushed to it.
    public func receivePrune(_ namespace: Namespace, _ origins: [RelayID]) throws(ProtocolError) {
        guard shares(namespace) else {
            throw ProtocolError(.notHeld, "PRUNE of \(namespace), outside what both relays hold")
        }
        prunedByPeer.withLock { $0[namespace, default: []].formUnion(origins) }
        pruneEpoch.withLock { $0 &+= 1 }
        peerHeld.withLock { $0.heard(of: namespace) }  // notes are due in this namespace now
    }

    /// The origins whose events a push never needs to send the peer: its
    /// own, and those it takes from their own relays (DIRECT).
    public var originsNotPushed: Set<RelayID> {
        directAtPeer.withLock { $0 }.union([peer.origin])
    }

    /// The peer's DIRECT: the origins whose own relays it is linked to now.
    /// Their events are no longer pushed to it, except this relay's own.
    /// Returns whether an origin left the set: pushing then looks again at
    /// every namespace, from what the peer holds (its ACKs, sent just before).
    @discardableResult
    public func receiveDirect(_ origins: [RelayID]) -> Bool {
        let now = Set(origins).subtracting([store.originID])
        let dropped = directAtPeer.withLock { direct in
            defer { direct = now }
            return !direct.isSubset(of: now)
        }
        if dropped {
            considered.withLock { $0 = [:] }
            revisit.withLock { $0.all = true }
        }
        return dropped
    }

    /// What to tell the peer when the origins of this relay's other links
    /// (`linked`, each link's peer's current origin) changed: DIRECT with
    /// them, so the peer stops pushing their events here; and when one left
    /// the set, first an ACK per shared namespace, so the peer resumes
    /// pushing that origin from what this relay holds rather than from what
    /// it last heard. Nothing when the set is what was last sent.
    public func directFrames(linked: Set<RelayID>) -> [Frame] {
        let origins = linked.subtracting([peer.origin])
        let previous = directSent.withLock { sent in
            defer { sent = origins }
            return sent
        }
        guard origins != previous else { return [] }
        var frames = [Frame]()
        if !previous.isSubset(of: origins) {
            frames = sharedNamespaces.map { .ack($0, store.vector(of: $0)) }
        }
        return frames + [.direct(origins.sorted())]
    }

    /// The peer's GRAFT: these origins are pushed again, after what it holds.
    public func receiveGraft(_ namespace: Namespace, _ origins: [RelayID], _ vector: VersionVector) throws(ProtocolError) {
        guard shares(namespace) else {
            throw ProtocolError(.notHeld, "GRAFT of \(namespace), outside what both relays hold")
        }
        peerHeld.withLock { $0.merge(vector, in: namespace) }
        prunedByPeer.withLock { $0[namespace]?.subtract(origins) }
        pruneEpoch.withLock { $0 &+= 1 }
        // Pushing resumes from what the peer holds, not from where it stopped.
        _ = considered.withLock { $0.removeValue(forKey: namespace) }
        _ = revisit.withLock { $0.namespaces.insert(namespace) }
    }

    /// Whether an origin this relay pruned on this link is held further by
    /// the peer: a routing check may yet GRAFT it (the simulator runs checks
    /// until none is left).
    public var mayGraft: Bool {
        let held = peerHeld.withLock { $0.vectors }
        let pruned = prunedHere.withLock { $0 }
        return pruned.contains { namespace, origins in
            let mine = store.vector(of: namespace)
            return origins.keys.contains { (held[namespace]?[$0] ?? 0) > mine[$0] }
        }
    }

    /// How many routing checks a pruned origin's count must stand still
    /// before it is grafted: one when no link carries it any more (its link
    /// ended), four while a forwarder still does (a busy relay may apply
    /// nothing for a while; grafting then would only bring every event
    /// twice), never while the link to the origin itself is up: no path
    /// brings its events sooner, and under load, when every link lags, a
    /// graft would only start a round of graft and prune again.
    private func checksBeforeGraft(_ origin: RelayID, _ namespace: Namespace) -> Int {
        switch routes?.carried(origin, in: namespace, apartFrom: id) ?? .byNone {
        case .byNone: 1
        case .byForwarder: 4
        case .byOrigin: .max
        }
    }

    /// Whether the peer pruned any origin: the driver then also looks for
    /// work every `routeInterval`, since a GRAFT does not change the log.
    public var peerPruned: Bool { prunedByPeer.withLock { $0.values.contains { !$0.isEmpty } } }

    /// The namespaces whose notes go on this link: those in which either
    /// side pruned origins. Notes go both ways: the pruning side learns what
    /// it could graft, and the pruned side keeps an up-to-date view of what
    /// its peer holds (its lag, what not to send).
    private var noting: Set<Namespace> {
        let pruning = prunedHere.withLock { Set($0.keys) }
        return prunedByPeer.withLock { Set($0.filter { !$0.value.isEmpty }.keys) }.union(pruning)
    }

    /// Each noted namespace's log length now (what a note compares), read in one pass.
    private func lengths() -> [Namespace: UInt64] {
        store.tips(prefixes: configuration.prefixes).mapValues { $0.lastPosition + $0.aliasCount }
    }

    /// Whether a note is waiting for its interval (the simulator runs checks until none is).
    public var notesDue: Bool {
        let noted = noted.withLock { $0 }
        let lengths = lengths()
        return noting.contains { noted[$0]?.length != lengths[$0] ?? 0 }
    }

    /// What routing sends at time `now` (any monotonic time the driver
    /// keeps; it calls this every `routeInterval`): for each namespace in
    /// which either side pruned origins on this link, this relay's vector
    /// when it changed, at most every `noteInterval` (an ACK); and a GRAFT
    /// of each origin this relay pruned whose count here stood still over
    /// the last calls (`checksBeforeGraft`) while the peer holds more.
    ///
    /// A check costs what changed, not what the link shares: every call
    /// looks at the namespaces with an origin that may yet be grafted;
    /// every quarter `noteInterval`, at the notes due and the namespaces the
    /// peer sent news of; every four `noteInterval`s, and whenever a link
    /// of the relay ended, at every namespace. A call that finds nothing changed
    /// since one that left nothing waiting does nothing.
    public func routingFrames(now: Duration) -> [Frame] {
        let generation = store.changeGeneration
        let releases = routes?.releases ?? 0
        let (held, peerNews) = peerHeld.withLock { ($0.vectors, $0.news) }
        let plan = scan.withLock { scan -> (quiet: Bool, all: Bool, notes: Bool, candidates: Set<Namespace>) in
            let seen = (generation, peerNews, releases)
            if !scan.waiting, let last = scan.seen, last == seen { return (true, false, false, []) }
            let all = scan.seen?.releases != releases || scan.lastFull.map { now - $0 >= configuration.noteInterval * 4 } ?? true
            let notes = scan.lastNotes.map { now - $0 >= configuration.noteInterval / 4 } ?? true
            scan.seen = seen
            if all { scan.lastFull = now }
            if notes { scan.lastNotes = now }
            return (false, all, notes, scan.candidates)
        }
        guard !plan.quiet else { return [] }
        // The peer's news can only make new candidates: looked at with the notes, not every call.
        let changed: Set<Namespace> = plan.notes ? peerHeld.withLock { state in
            defer { state.changed = [] }
            return state.changed
        } : []
        var waiting = !plan.notes
        var frames = [Frame]()
        if plan.notes {
            let epoch = pruneEpoch.withLock { $0 }
            let kept = scan.withLock { $0.noting?.epoch == epoch ? $0.noting?.namespaces : nil }
            let namespaces = kept ?? noting
            if kept == nil { scan.withLock { $0.noting = (epoch, namespaces) } }
            let lengths = lengths()
            let due = noted.withLock { noted in
                namespaces.filter { namespace in
                    let length = lengths[namespace] ?? 0
                    if let last = noted[namespace], last.length == length || now - last.at < configuration.noteInterval {
                        if last.length != length { waiting = true }
                        return false
                    }
                    noted[namespace] = (length, now)
                    return true
                }
            }
            for namespace in due.sorted() { frames.append(.ack(namespace, store.vector(of: namespace))) }
        }
        let watched = prunedHere.withLock { pruned in
            plan.all ? pruned.keys.sorted() : plan.candidates.union(changed).filter { pruned[$0] != nil }.sorted()
        }
        var candidates = Set<Namespace>()
        for namespace in watched {
            let mine = store.vector(of: namespace)
            let theirs = held[namespace] ?? VersionVector()
            let graft = prunedHere.withLock { pruned -> [RelayID] in
                var graft = [RelayID]()
                for (origin, seen) in pruned[namespace] ?? [:] {
                    let still = mine[origin] == seen.held ? seen.still + 1 : 0
                    let behind = theirs[origin] > mine[origin]
                    let checks = behind ? checksBeforeGraft(origin, namespace) : .max
                    if behind, still >= checks {
                        graft.append(origin)
                    } else {
                        if checks != .max { candidates.insert(namespace) }
                        pruned[namespace]?[origin] = (mine[origin], still)
                    }
                }
                for origin in graft { pruned[namespace]?[origin] = nil }
                if pruned[namespace]?.isEmpty == true {
                    pruned[namespace] = nil
                    pruneEpoch.withLock { $0 &+= 1 }
                }
                return graft.sorted()
            }
            if !graft.isEmpty {
                routes?.take(graft, in: namespace, for: id, direct: peer.origin)
                frames.append(.graft(namespace, graft, mine))
            }
        }
        scan.withLock { scan in
            if plan.all { scan.candidates = candidates } else { scan.candidates.subtract(watched); scan.candidates.formUnion(candidates) }
            scan.waiting = waiting || !scan.candidates.isEmpty
        }
        return frames
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
    /// Looks at `changed` (the namespaces whose logs grew since the last
    /// call, `Store.takeChanges`) and those a GRAFT or DIRECT made to look at
    /// again; at every namespace when `changed` is nil, or when a DIRECT
    /// dropped an origin since the last call.
    public func grownNamespaces(changed: Set<Namespace>? = nil) -> [(namespace: Namespace, head: UInt64)] {
        let considered = considered.withLock { $0 }
        let again = revisit.withLock { revisit in
            defer { revisit = (false, []) }
            return revisit
        }
        let tips = if let changed, !again.all {
            store.tips(of: changed.union(again.namespaces), prefixes: configuration.prefixes)
        } else {
            store.tips(prefixes: configuration.prefixes)
        }
        return tips.sorted(by: { $0.key < $1.key }).compactMap { namespace, tip in
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
        let held = peerHeld.withLock { $0.vectors[namespace] } ?? VersionVector()
        let direct = directAtPeer.withLock { $0 }
        let pruned = prunedByPeer.withLock { $0[namespace] }
        func skips(_ origin: RelayID) -> Bool { direct.contains(origin) || pruned?.contains(origin) == true }
        // What grew is all held by the peer or of origins it does not take here (the
        // usual case in a mesh: an event from its origin's own link): nothing to read.
        if let through, store.aliasCount(of: namespace) == through.alias,
           !store.vector(of: namespace).entries.contains(where: { $0.value > held[$0.key] && !skips($0.key) }) {
            considered.withLock { $0[namespace] = (max(head, through.position), through.alias) }
            return nil
        }
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
            if !held.contains(origin: record.origin, originSeq: record.originSeq), !skips(record.origin) { records.append(record) }
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
            peerHeld.withLock { $0.merge(segment.advances, in: namespace, fromPeer: false) }
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

/// What a link's peer is known to hold, per namespace, and how many times
/// the peer's own frames (WANT, ACK, SEGMENT, GRAFT) told it more or either
/// side pruned origins: the routing checks look again only when that count moved.
private struct PeerHeld {
    var vectors = [Namespace: VersionVector]()
    var news: UInt64 = 0
    /// The namespaces of the news since the last routing check.
    var changed = Set<Namespace>()

    mutating func merge(_ vector: VersionVector, in namespace: Namespace, fromPeer: Bool = true) {
        vectors[namespace, default: VersionVector()].merge(vector)
        if fromPeer { heard(of: namespace) }
    }

    mutating func heard(of namespace: Namespace) {
        news &+= 1
        changed.insert(namespace)
    }
}

/// What a link's routing checks keep between calls.
private struct RoutingScan {
    /// The store's change generation, the peer's news count and the
    /// relay's count of ended links at the last check.
    var seen: (generation: UInt64, peerNews: UInt64, releases: UInt64)?
    /// Whether the last check left work for the next (a note held back, an origin that may be grafted).
    var waiting = false
    /// Namespaces with a pruned origin the peer holds more of, not carried by the link to the origin itself.
    var candidates = Set<Namespace>()
    var lastFull: Duration?
    var lastNotes: Duration?
    /// The namespaces with prunes on either side, as of a prune epoch.
    var noting: (epoch: UInt64, namespaces: Set<Namespace>)?
}
