import Foundation
import Logging
import Synchronization
public import TrailCore
import TrailStore

/// Sends frames on a link: NIO's outbound writer in production, a stream in tests.
public protocol FrameSender: Sendable {
    func send(_ frame: Frame) async throws
}

/// The iterator of a link's inbound frames. Used by one task at a time: the
/// handshake, then the receive loop.
final class FrameSource<Iterator: AsyncIteratorProtocol>: @unchecked Sendable where Iterator.Element == Frame {
    private var iterator: Iterator
    init(_ iterator: Iterator) { self.iterator = iterator }
    func next() async throws -> Frame? { try await iterator.next() }
}

/// A remote relay's ERROR frame, ending the link.
public struct RemoteError: Error, Sendable, CustomStringConvertible {
    public let error: ProtocolError
    public var description: String { "peer closed the link: \(error)" }
}

/// One replication link, both directions, over any transport. It proves
/// identities, exchanges vectors, then runs three loops until either side
/// ends: receiving frames, applying segments in order (decoded in parallel
/// ahead of it), and pushing what the peer lacks as the log grows.
final class PeerLink: Sendable {
    let store: Store
    let configuration: ReplicationConfiguration
    let address: String
    let dialed: Bool
    let registry: LinkRegistry
    /// Ends the transport (closes the connection) when the registry replaces this link.
    let closeTransport: @Sendable () -> Void

    /// The incarnation this link announced in its HELLO.
    let announcedOrigin: RelayID
    let announcedIncarnation: UInt32
    /// Called when a peer says this relay's incarnation is stale.
    let onStaleIncarnation: @Sendable (RelayID, String) async -> Void
    /// Participants exchanged with the peer (PRESENCE frames).
    let presence: PresenceBoard?

    private let credits = CreditGate()
    /// Segments received and not yet applied and credited back.
    private let outstanding = Mutex<Int>(0)
    /// Per namespace, what the peer is known to hold: its WANT, its ACKs, and what it sent.
    private let peerHeld = Mutex<[Namespace: VersionVector]>([:])
    let status = Mutex<LinkStatus?>(nil)
    var logger: Logger { configuration.logger }

    init(store: Store, configuration: ReplicationConfiguration, address: String, dialed: Bool,
         registry: LinkRegistry, closeTransport: @escaping @Sendable () -> Void,
         onStaleIncarnation: @escaping @Sendable (RelayID, String) async -> Void, presence: PresenceBoard? = nil) {
        self.presence = presence
        let incarnation = store.incarnation
        announcedOrigin = incarnation.origin
        announcedIncarnation = incarnation.number
        self.onStaleIncarnation = onStaleIncarnation
        self.store = store
        self.configuration = configuration
        self.address = address
        self.dialed = dialed
        self.registry = registry
        self.closeTransport = closeTransport
    }

    /// Runs the link until it ends; returns why (nil: the peer closed cleanly).
    @discardableResult
    func run<Inbound: AsyncSequence>(_ inbound: Inbound, _ sender: some FrameSender) async -> (any Error)? where Inbound.Element == Frame {
        let source = FrameSource(inbound.makeAsyncIterator())
        var peer: Frame.Hello?
        do {
            // A peer that connects and does not finish the handshake in time is cut
            // off: otherwise a silent connection would hold its slot forever.
            let timedOut = Mutex(false)
            let watchdog = Task { [closeTransport, timeout = configuration.handshakeTimeout] in
                guard (try? await Task.sleep(for: timeout)) != nil else { return }
                timedOut.withLock { $0 = true }
                closeTransport()
            }
            let hello: Frame.Hello
            do {
                hello = try await handshake(source, sender)
                watchdog.cancel()
            } catch {
                watchdog.cancel()
                if timedOut.withLock({ $0 }) {
                    throw ProtocolError(.outOfTurn, "no complete handshake within \(configuration.handshakeTimeout)")
                }
                throw error
            }
            peer = hello
            try registry.register(self, peer: hello.relay)
            defer { registry.unregister(self, peer: hello.relay) }
            logger.info("peer link up", metadata: ["peer": "\(hello.relay.hex.prefix(16))", "address": "\(address)", "dialed": "\(dialed)"])
            try await exchange(source, sender, hello)
            return nil
        } catch let error as ProtocolError {
            logger.warning("peer link refused or broken", metadata: [
                "peer": "\(peer.map { String($0.relay.hex.prefix(16)) } ?? "?")", "address": "\(address)", "reason": "\(error)"])
            try? await sender.send(.error(error))
            return error
        } catch let error as RemoteError {
            logger.warning("peer closed the link", metadata: ["address": "\(address)", "reason": "\(error.error)"])
            if error.error.code == .staleIncarnation { await onStaleIncarnation(announcedOrigin, error.error.message) }
            return error
        } catch {
            logger.info("peer link down", metadata: ["address": "\(address)", "reason": "\(error)"])
            return error
        }
    }

    // MARK: Handshake

    private func handshake(_ source: FrameSource<some AsyncIteratorProtocol>, _ sender: some FrameSender) async throws -> Frame.Hello {
        var random = SystemRandomNumberGenerator()
        let nonce = (0..<Frame.nonceByteCount).map { _ in UInt8.random(in: 0...255, using: &random) }
        let me = store.identity.publicKey
        try await sender.send(.hello(Frame.Hello(
            relay: me, origin: announcedOrigin, incarnation: announcedIncarnation, nonce: nonce,
            frameBytesMax: configuration.frameBytesMax, prefixes: configuration.prefixes)))
        guard case .hello(let hello) = try await expectFrame(source, "HELLO") else {
            throw ProtocolError(.outOfTurn, "expected HELLO first")
        }
        guard hello.protocolVersion == Frame.protocolVersion else {
            throw ProtocolError(.unsupportedVersion, "peer speaks protocol version \(hello.protocolVersion); this relay speaks \(Frame.protocolVersion)")
        }
        guard hello.relay != me else { throw ProtocolError(.notAllowed, "the peer is this relay itself (\(me.hex.prefix(16)))") }
        guard configuration.allowAnyPeer || configuration.allowedPeers.contains(hello.relay) else {
            throw ProtocolError(.notAllowed, "relay \(hello.relay.hex) is not on this relay's allowlist")
        }
        guard !registry.isBlocked(hello.relay) else {
            throw ProtocolError(.notAllowed, "relay \(hello.relay.hex) is blocked by this relay's operator (a partition)")
        }
        try await sender.send(.proof(store.identity.sign(Frame.proofMessage(nonce: hello.nonce, signer: me, verifier: hello.relay))))
        guard case .proof(let signature) = try await expectFrame(source, "PROOF") else {
            throw ProtocolError(.outOfTurn, "expected PROOF after HELLO")
        }
        guard hello.relay.verify(signature, message: Frame.proofMessage(nonce: nonce, signer: hello.relay, verifier: me)) else {
            throw ProtocolError(.badProof, "the PROOF signature does not verify against relay key \(hello.relay.hex.prefix(16)) and this link's nonce")
        }
        status.withLock {
            $0 = LinkStatus(peer: hello.relay, peerOrigin: hello.origin, address: address, dialed: dialed, connectedAt: Date())
        }
        return hello
    }

    private func expectFrame(_ source: FrameSource<some AsyncIteratorProtocol>, _ name: String) async throws -> Frame {
        guard let frame = try await source.next() else {
            throw ProtocolError(.outOfTurn, "the connection closed before \(name)")
        }
        if case .error(let error) = frame { throw RemoteError(error: error) }
        return frame
    }

    // MARK: After the handshake

    private func exchange(_ source: FrameSource<some AsyncIteratorProtocol>, _ sender: some FrameSender, _ hello: Frame.Hello) async throws {
        let shared: @Sendable (Namespace) -> Bool = { namespace in holds(self.configuration.prefixes, namespace) && holds(hello.prefixes, namespace) }
        for namespace in store.heads(prefixes: configuration.prefixes).keys.sorted() where shared(namespace) {
            try await sender.send(.want(namespace, store.vector(of: namespace)))
        }
        try await sender.send(.ready)
        try await sender.send(.credit(configuration.creditWindow))
        let (segments, segmentSink) = AsyncStream<Task<Segment, any Error>>.makeStream()
        defer { segmentSink.finish() }
        let (peerReady, peerReadySink) = AsyncStream<Void>.makeStream()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await self.receive(source, sender, hello, shared: shared, segmentSink: segmentSink) {
                    peerReadySink.yield()
                    peerReadySink.finish()
                }
            }
            group.addTask {
                // Pushing starts once the peer's wants are all in: until then its vectors are unknown.
                for await _ in peerReady { break }
                try await self.push(sender, hello, shared: shared, credits: self.credits)
            }
            group.addTask { try await self.apply(segments, sender, hello, shared: shared) }
            if let presence = self.presence {
                group.addTask { try await self.announce(presence, to: hello.relay, sender) }
            }
            group.addTask { try await self.fetchMissingParents(sender) }
            // The first loop to end, by error or not, ends the link.
            defer { group.cancelAll(); self.credits.close() }
            try await group.next()
        }
    }

    private func receive(
        _ source: FrameSource<some AsyncIteratorProtocol>, _ sender: some FrameSender, _ hello: Frame.Hello,
        shared: @escaping @Sendable (Namespace) -> Bool,
        segmentSink: AsyncStream<Task<Segment, any Error>>.Continuation,
        startPushing: () -> Void
    ) async throws {
        var peerReady = false
        while let frame = try await source.next() {
            switch frame {
            case .want(let namespace, let vector):
                guard shared(namespace) else {
                    throw ProtocolError(.notHeld, "WANT for \(namespace), which is outside what both relays hold")
                }
                let mine = store.vector(of: namespace)
                if mine[hello.origin] > vector[hello.origin] {
                    throw ProtocolError(.staleIncarnation, "in \(namespace) you hold originSeq \(vector[hello.origin]) of your own origin \(hello.origin.hex.prefix(16)), and this relay holds \(mine[hello.origin]): you lost events you accepted; start a new incarnation")
                }
                peerHeld.withLock { $0[namespace, default: VersionVector()].merge(vector) }
            case .ready:
                guard !peerReady else { throw ProtocolError(.outOfTurn, "a second READY") }
                peerReady = true
                startPushing()
            case .segment(let bytes):
                let over = outstanding.withLock { count -> Bool in
                    count += 1
                    return count > Int(configuration.creditWindow)
                }
                if over { throw ProtocolError(.outOfTurn, "SEGMENT beyond the \(configuration.creditWindow) segments of credit granted") }
                status.withLock { $0?.bytesReceived += UInt64(bytes.count + 5) }
                let limits = configuration.limits
                // Decoding (checksum, every id's hash) and signature verification run
                // on every core while earlier segments apply.
                segmentSink.yield(Task {
                    let segment = try Segment(decoding: bytes, limits: limits)
                    let signed = segment.records.map(\.event).filter { $0.signature != nil }
                    for (event, status) in zip(signed, Event.signatureStatuses(signed)) where status != .valid {
                        throw ProtocolError(.invalidEvent, status == .invalid
                            ? "event \(event.id.short) in \(segment.namespace): its signature does not verify against its author"
                            : "event \(event.id.short) in \(segment.namespace) is signed but names no author")
                    }
                    return segment
                })
            case .credit(let count):
                credits.grant(count)
            case .ack(let namespace, let vector):
                peerHeld.withLock { $0[namespace, default: VersionVector()].merge(vector) }
                status.withLock { $0?.acknowledged[namespace] = vector }
            case .fetch(let ids):
                var records = [Segment.Record]()
                for id in ids {
                    if let stored = try store.event(id: id), shared(stored.event.namespace) {
                        records.append(Segment.Record(origin: stored.origin, originSeq: stored.originSeq, event: stored.event))
                    }
                }
                try await sender.send(.fetched(records))
            case .fetched(let records):
                for record in records where !shared(record.event.namespace) {
                    throw ProtocolError(.notHeld, "FETCHED event \(record.event.id.short) in \(record.event.namespace), outside what both relays hold")
                }
                try await applyRecords(records)
                status.withLock { $0?.eventsFetched += UInt64(records.count) }
            case .presence(let snapshot):
                presence?.receive(snapshot)
            case .error(let error):
                throw RemoteError(error: error)
            case .hello, .proof:
                throw ProtocolError(.outOfTurn, "\(frame.name) after the handshake")
            }
        }
        throw ProtocolError(.shuttingDown, "the connection closed")
    }

    /// Sends the participants this relay knows of (its own and forwarded) at
    /// once, on every change, and every heartbeat so that the peer's lease holds.
    private func announce(_ presence: PresenceBoard, to peer: PublicKey, _ sender: some FrameSender) async throws {
        let (token, changes) = presence.watch()
        defer { presence.unwatch(token) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            let (ticks, tick) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
            group.addTask {
                for await _ in changes { tick.yield() }
            }
            group.addTask {
                while !Task.isCancelled {
                    tick.yield()
                    try await Task.sleep(for: presence.heartbeat)
                }
            }
            group.addTask {
                for await _ in ticks {
                    for snapshot in presence.snapshots(for: peer) { try await sender.send(.presence(snapshot)) }
                }
            }
            defer { group.cancelAll() }
            try await group.next()
        }
    }

    /// While events wait for parents this relay holds nowhere, asks the peer
    /// for them by id (FETCH) every `fetchInterval`; an id is asked again only
    /// after ten intervals, so an answerless peer is not flooded. The peer
    /// answers with what it holds (FETCHED), applied like any event.
    private func fetchMissingParents(_ sender: some FrameSender) async throws {
        var asked = [EventID: ContinuousClock.Instant]()
        let again = configuration.fetchInterval * 10
        while !Task.isCancelled {
            try await Task.sleep(for: configuration.fetchInterval)
            guard store.hasPending else { continue }
            let now = ContinuousClock.now
            asked = asked.filter { now - $0.value < again }
            let wanted = await store.missingParents(limit: Frame.fetchCountMax).filter { asked[$0] == nil }
            guard !wanted.isEmpty else { continue }
            for id in wanted { asked[id] = now }
            try await sender.send(.fetch(wanted))
            status.withLock { $0?.fetchesSent += wanted.count }
        }
    }

    private func apply(
        _ segments: AsyncStream<Task<Segment, any Error>>, _ sender: some FrameSender, _ hello: Frame.Hello,
        shared: @Sendable (Namespace) -> Bool
    ) async throws {
        for await decoding in segments {
            let segment: Segment
            do { segment = try await decoding.value } catch let error as DecodeError {
                throw ProtocolError(.badSegment, error.description)
            }
            guard shared(segment.namespace) else {
                throw ProtocolError(.notHeld, "SEGMENT of \(segment.namespace), outside what both relays hold")
            }
            // The peer holds what it sent: never push it back, even before it is applied here.
            peerHeld.withLock { $0[segment.namespace, default: VersionVector()].merge(segment.advances) }
            try await applyRecords(segment.records, signaturesVerified: true)
            status.withLock {
                $0?.segmentsReceived += 1
                $0?.eventsReceived += UInt64(segment.records.count)
            }
            outstanding.withLock { $0 -= 1 }
            try await sender.send(.credit(1))
            try await sender.send(.ack(segment.namespace, store.vector(of: segment.namespace)))
        }
    }

    private func applyRecords(_ records: [Store.Replicated], signaturesVerified: Bool = false) async throws {
        guard !records.isEmpty else { return }
        let results: [AppendResult]
        do { results = try await store.apply(contentsOf: records, signaturesVerified: signaturesVerified) } catch StoreError.invalidEvent(let reason) {
            throw ProtocolError(.invalidEvent, reason)
        }
        for (record, result) in zip(records, results) {
            if case .conflict(let held) = result.outcome {
                status.withLock { $0?.conflicts += 1 }
                logger.error("peer sent an event that conflicts with one held", metadata: [
                    "event": "\(record.event.id)", "origin": "\(record.origin.hex.prefix(16))",
                    "originSeq": "\(record.originSeq)", "held": "\(held)"])
            }
        }
    }

    // MARK: Pushing

    /// Sends the peer, namespace by namespace and a segment at a time, what
    /// it lacks, in this relay's log order; then waits for the log to grow.
    private func push(_ sender: some FrameSender, _ hello: Frame.Hello, shared: @Sendable (Namespace) -> Bool, credits: CreditGate) async throws {
        var sent = [Namespace: (position: UInt64, alias: UInt64)]()  // what of each namespace was considered
        let byteLimit = Int(hello.frameBytesMax) - 64
        while !Task.isCancelled {
            let generation = store.changeGeneration
            var progressed = false
            for (namespace, tip) in store.tips(prefixes: configuration.prefixes).sorted(by: { $0.key < $1.key }) where shared(namespace) {
                if let through = sent[namespace], through.position >= tip.lastPosition, through.alias >= tip.aliasCount { continue }
                progressed = try await pushPage(namespace, head: tip.lastPosition, &sent, hello, byteLimit: byteLimit, sender, credits) || progressed
            }
            if !progressed { await store.waitForChange(after: generation) }
        }
    }

    /// Sends the next page of the namespace's log that the peer lacks, with
    /// the aliases (`Store.aliases`) that entered among those positions, each
    /// where it entered: a record of its slot with the event's bytes. True
    /// when the page moved.
    private func pushPage(
        _ namespace: Namespace, head: UInt64, _ sent: inout [Namespace: (position: UInt64, alias: UInt64)], _ hello: Frame.Hello,
        byteLimit: Int, _ sender: some FrameSender, _ credits: CreditGate
    ) async throws -> Bool {
        let through = sent[namespace]
        let held = peerHeld.withLock { $0[namespace] } ?? VersionVector()
        let page: Page
        do {
            page = try store.read(
                namespace, after: through.map { .position(relay: store.relayID.fingerprint, position: $0.position) } ?? .vector(held),
                limit: configuration.segmentEventCountMax, bySlot: true)
        } catch StoreError.trimmed(_, let trimmedThrough, _) {
            logger.warning("the peer lacks events trimmed here", metadata: [
                "namespace": "\(namespace)", "trimmedThrough": "\(trimmedThrough)", "peer": "\(hello.relay.hex.prefix(16))"])
            sent[namespace] = (head, store.aliasCount(of: namespace))
            return false
        }
        guard case .position(_, let last) = page.cursor else { return false }
        let aliasesBefore = through?.alias ?? 0
        var aliases = store.aliasCount(of: namespace) > aliasesBefore
            ? try store.aliases(in: namespace, after: aliasesBefore).prefix { $0.after <= last }[...] : []
        sent[namespace] = (last, aliases.last?.number ?? aliasesBefore)
        guard last > (through?.position ?? 0) || !aliases.isEmpty else { return false }
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
        if !records.isEmpty {
            try await send(records, namespace: namespace, firstPosition: page.events.first?.position ?? 0,
                           byteLimit: byteLimit, sender, credits)
        }
        return true
    }

    /// The event an alias names: from the page when there, else read from the log (nil once trimmed).
    private func aliasedEvent(_ alias: Alias, _ namespace: Namespace, _ page: Page) throws -> Event? {
        if let stored = page.events.first(where: { $0.position == alias.eventPosition }) { return stored.event }
        return try store.event(at: alias.eventPosition, in: namespace)?.event
    }

    /// Sends records as segments of at most the configured size, splitting
    /// where a segment would pass the byte target or the peer's frame limit.
    private func send(_ records: [Segment.Record], namespace: Namespace, firstPosition: UInt64, byteLimit: Int,
                      _ sender: some FrameSender, _ credits: CreditGate) async throws {
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
            guard await credits.acquire() else { return }
            try await sender.send(.segment(encoded))
            peerHeld.withLock { $0[namespace, default: VersionVector()].merge(segment.advances) }
            status.withLock {
                $0?.segmentsSent += 1
                $0?.eventsSent += UInt64(end - start)
                $0?.bytesSent += UInt64(encoded.count + 5)
            }
            start = end
        }
    }
}
