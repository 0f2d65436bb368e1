import Foundation
import Logging
public import TrailCore
import TrailStore

/// Sends frames on a link: NIO's outbound writer in production, a stream in tests.
public protocol FrameSender: Sendable {
    func send(_ frame: Frame) async throws
    /// Sends the frames in order; a transport may write them at once (one
    /// system call for an ACK and its CREDIT).
    func send(contentsOf frames: [Frame]) async throws
}

extension FrameSender {
    public func send(contentsOf frames: [Frame]) async throws {
        for frame in frames { try await send(frame) }
    }
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
    /// Which of the relay's links carries which origin (shared by its links).
    let routes: RouteBoard?

    private let credits = CreditGate()
    /// Segments received and not yet applied and credited back.
    private let outstanding = Locked<Int>(0)
    /// The credit window granted to the peer so far: it opens at
    /// `initialCredit` and grows by one per applied segment up to
    /// `creditWindow`, so that a link whose first segments turn out to carry
    /// an origin another link carries (and are PRUNEd) has sent only a few.
    private let granted = Locked<UInt32>(0)
    static let initialCredit: UInt32 = 2
    let status = Locked<LinkStatus?>(nil)
    var logger: Logger { configuration.logger }

    init(store: Store, configuration: ReplicationConfiguration, address: String, dialed: Bool,
         registry: LinkRegistry, closeTransport: @escaping @Sendable () -> Void,
         onStaleIncarnation: @escaping @Sendable (RelayID, String) async -> Void, presence: PresenceBoard? = nil,
         routes: RouteBoard? = nil) {
        self.presence = presence
        self.routes = routes
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
            let timedOut = Locked(false)
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
            // This relay found itself stale (LinkSession.receiveWant): a new incarnation.
            if error.code == .staleIncarnation { await onStaleIncarnation(announcedOrigin, error.message) }
            return error
        } catch let error as RemoteError {
            logger.warning("peer closed the link", metadata: ["address": "\(address)", "reason": "\(error.error)"])
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
            frameBytesMax: configuration.frameBytesMax, prefixes: configuration.prefixes, rotations: store.rotations)))
        guard case .hello(let hello) = try await expectFrame(source, "HELLO") else {
            throw ProtocolError(.outOfTurn, "expected HELLO first")
        }
        guard hello.protocolVersion == Frame.protocolVersion else {
            throw ProtocolError(.unsupportedVersion, "peer speaks protocol version \(hello.protocolVersion); this relay speaks \(Frame.protocolVersion)")
        }
        guard hello.relay != me else { throw ProtocolError(.notAllowed, "the peer is this relay itself (\(me.hex.prefix(16)))") }
        if let problem = KeyRotation.problem(in: hello.rotations, endingAt: hello.relay) {
            throw ProtocolError(.badProof, "the HELLO's key rotations do not hold: \(problem)")
        }
        if let successor = registry.successor(of: hello.relay) {
            throw ProtocolError(.notAllowed, "relay key \(hello.relay.hex.prefix(16)) was rotated to \(successor.hex.prefix(16)); it is retired")
        }
        // An allowlist that names one of the peer's earlier keys reaches its current key through the rotations.
        let allowedDirectly = configuration.allowAnyPeer || configuration.allowedPeers.contains(hello.relay)
        let allowedThrough = allowedDirectly ? nil : hello.rotations.first { configuration.allowedPeers.contains($0.previous) }?.previous
        guard allowedDirectly || allowedThrough != nil else {
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
        registry.retire(hello.rotations.map(\.previous), successor: hello.relay)
        if let allowedThrough {
            logger.warning("peer rotated its key; put the new key on the allowlist in place of the old", metadata: [
                "allowlisted": "\(allowedThrough.hex)", "current": "\(hello.relay.hex)", "address": "\(address)"])
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

    /// Drives the link's `LinkSession` over the connection: one loop receives
    /// frames, one applies segments in order (decoded in parallel ahead of
    /// it), one pushes what the peer lacks, one announces participants, one
    /// fetches missing parents and one routes (PRUNE/GRAFT notes and checks);
    /// the first to end ends the link.
    private func exchange(_ source: FrameSource<some AsyncIteratorProtocol>, _ sender: some FrameSender, _ hello: Frame.Hello) async throws {
        let session = LinkSession(store: store, configuration: configuration, peer: hello, routes: routes)
        defer { session.close() }
        // DIRECT before READY: the peer's first push already leaves out what comes from its origin's own relay.
        let (linkChanges, direct) = (registry.watch(), session.directFrames(linked: registry.linkedOrigins))
        defer { registry.unwatch(linkChanges.token) }
        try await sender.send(contentsOf: direct + session.openingFrames())
        let (segments, segmentSink) = AsyncStream<Task<Segment, any Error>>.makeStream()
        defer { segmentSink.finish() }
        let (peerReady, peerReadySink) = AsyncStream<Void>.makeStream()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await self.receive(source, sender, session, segmentSink: segmentSink) {
                    peerReadySink.yield()
                    peerReadySink.finish()
                }
            }
            group.addTask {
                // Pushing starts once the peer's wants are all in: until then its vectors are unknown.
                for await _ in peerReady { break }
                try await self.push(sender, session, credits: self.credits)
            }
            group.addTask { try await self.apply(segments, sender, session) }
            if let presence = self.presence {
                group.addTask { try await self.announce(presence, to: hello.relay, sender) }
            }
            group.addTask { try await self.fetchMissingParents(sender, session) }
            group.addTask { try await self.route(sender, session) }
            group.addTask {
                for await _ in linkChanges.changes {
                    try await sender.send(contentsOf: session.directFrames(linked: self.registry.linkedOrigins))
                }
            }
            // The first loop to end, by error or not, ends the link.
            defer { group.cancelAll(); self.credits.close() }
            try await group.next()
        }
    }

    private func receive(
        _ source: FrameSource<some AsyncIteratorProtocol>, _ sender: some FrameSender, _ session: LinkSession,
        segmentSink: AsyncStream<Task<Segment, any Error>>.Continuation,
        startPushing: () -> Void
    ) async throws {
        var peerReady = false
        while let frame = try await source.next() {
            switch frame {
            case .want(let namespace, let vector):
                try session.receiveWant(namespace, vector)
            case .ready:
                guard !peerReady else { throw ProtocolError(.outOfTurn, "a second READY") }
                peerReady = true
                startPushing()
                // PRUNEs for what other links carry, then the credit any push waits for.
                for prune in session.receiveReady() {
                    try await sender.send(prune)
                    status.withLock { $0?.prunesSent += 1 }
                }
                let first = min(Self.initialCredit, configuration.creditWindow)
                granted.withLock { $0 = first }
                try await sender.send(.credit(first))
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
                segmentSink.yield(Task { try LinkSession.decodeSegment(bytes, limits: limits) })
            case .credit(let count):
                credits.grant(count)
            case .ack(let namespace, let vector):
                session.receiveAck(namespace, vector)
                status.withLock { $0?.acknowledged[namespace] = vector }
            case .fetch(let ids):
                try await sender.send(session.answer(fetch: ids))
            case .fetched(let records):
                try await session.receiveFetched(records)
                status.withLock {
                    $0?.eventsFetched += UInt64(records.count)
                    $0?.conflicts = session.conflicts
                }
            case .presence(let snapshot):
                presence?.receive(snapshot)
            case .prune(let namespace, let origins):
                try session.receivePrune(namespace, origins)
                status.withLock { $0?.prunesReceived += 1 }
            case .graft(let namespace, let origins, let vector):
                try session.receiveGraft(namespace, origins, vector)
                status.withLock { $0?.graftsReceived += 1 }
            case .direct(let origins):
                status.withLock { $0?.peerDirect = Set(origins) }
                // An origin the peer no longer takes from its own relay: look at every log again.
                if session.receiveDirect(origins) { store.wakeChangeWaiters() }
            case .error(let error):
                throw RemoteError(error: error)
            case .hello, .proof:
                throw ProtocolError(.outOfTurn, "\(frame.name) after the handshake")
            }
        }
        throw ProtocolError(.shuttingDown, "the connection closed")
    }

    /// Sends the participants this relay knows of (its own and forwarded):
    /// on a change, the snapshots that changed since last sent on this link,
    /// then nothing more for `PresenceBoard.spacing` so that a burst of joins
    /// (a thousand agents subscribing) costs a few frames, not one round of
    /// every snapshot per join; and every heartbeat all of them, so that the
    /// peer's leases hold.
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
                var sent = [RelayID: UInt64]()  // the version of each origin's snapshot last sent here
                var refreshed: ContinuousClock.Instant?
                for await _ in ticks {
                    let now = ContinuousClock.now
                    // A heartbeat tick comes a little less than a heartbeat after the last refresh, which ended later.
                    let refresh = refreshed.map { now - $0 >= presence.heartbeat - presence.spacing } ?? true
                    if refresh { refreshed = now }
                    for snapshot in presence.snapshots(for: peer) where refresh || sent[snapshot.origin] != snapshot.version {
                        try await sender.send(.presence(snapshot))
                        sent[snapshot.origin] = snapshot.version
                    }
                    try await Task.sleep(for: presence.spacing)
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
    private func fetchMissingParents(_ sender: some FrameSender, _ session: LinkSession) async throws {
        let start = ContinuousClock.now
        while !Task.isCancelled {
            try await Task.sleep(for: configuration.fetchInterval)
            let wanted = await session.parentsToFetch(now: ContinuousClock.now - start, again: configuration.fetchInterval * 10)
            guard !wanted.isEmpty else { continue }
            try await sender.send(.fetch(wanted))
            status.withLock { $0?.fetchesSent += wanted.count }
        }
    }

    /// Every `routeInterval`: the notes a peer that pruned origins needs,
    /// and a GRAFT for each pruned origin whose other path went quiet. A
    /// relay that does not route prunes nothing, so has nothing to graft:
    /// it looks only for the notes, every quarter `noteInterval` (the
    /// finest step at which notes go out), not 20 times a second per link.
    private func route(_ sender: some FrameSender, _ session: LinkSession) async throws {
        let start = ContinuousClock.now
        let interval = routes == nil ? configuration.noteInterval / 4 : configuration.routeInterval
        while !Task.isCancelled {
            try await Task.sleep(for: interval)
            for frame in session.routingFrames(now: ContinuousClock.now - start) {
                try await sender.send(frame)
                if case .graft = frame { status.withLock { $0?.graftsSent += 1 } }
            }
        }
    }

    private func apply(_ segments: AsyncStream<Task<Segment, any Error>>, _ sender: some FrameSender, _ session: LinkSession) async throws {
        for await decoding in segments {
            let segment = try await decoding.value
            let answers = try await session.apply(segment)
            status.withLock {
                $0?.segmentsReceived += 1
                $0?.eventsReceived += UInt64(segment.records.count)
                $0?.conflicts = session.conflicts
            }
            outstanding.withLock { $0 -= 1 }
            // The ACK and any PRUNE before the credit: a peer told to stop pushing an
            // origin hears it before it may send another segment.
            let prunes = answers.count { if case .prune = $0 { true } else { false } }
            if prunes > 0 { status.withLock { $0?.prunesSent += prunes } }
            let window = configuration.creditWindow
            let grown = granted.withLock { granted -> UInt32 in
                guard granted < window else { return 0 }
                granted += 1
                return 1
            }
            try await sender.send(contentsOf: answers + [.credit(1 + grown)])
        }
    }

    // MARK: Pushing

    /// Sends the peer, namespace by namespace and a page at a time, what it
    /// lacks, in this relay's log order; then waits for the log to grow.
    ///
    /// The first pass looks at every namespace; later ones only at the
    /// namespaces whose logs grew since (`Store.takeChanges`) and those
    /// still being sent: a commit in one namespace does not make every link
    /// walk every namespace of the relay (40% of a relay's CPU on the
    /// ten-relay scale run, with 100 namespaces).
    private func push(_ sender: some FrameSender, _ session: LinkSession, credits: CreditGate) async throws {
        let watch = store.watchChanges()
        defer { store.unwatchChanges(watch) }
        var unfinished: Set<Namespace>?  // nil: look at every namespace
        while !Task.isCancelled {
            // Commits that enter only events the peer takes elsewhere (its own, and in a
            // mesh every other relay's) do not wake this loop: a DIRECT that drops an
            // origin wakes it and makes it look at every namespace again.
            store.ignoreChanges(from: session.originsNotPushed, watcher: watch)
            let changed = unfinished.map { $0.union(store.takeChanges(watch)) }
            var progressed = false
            unfinished = []
            for (namespace, head) in session.grownNamespaces(changed: changed) {
                guard let segments = try session.nextSegments(of: namespace, head: head) else { continue }
                progressed = true
                unfinished?.insert(namespace)
                for (segment, encoded) in segments {
                    guard await credits.acquire() else { return }
                    try await sender.send(.segment(encoded))
                    status.withLock {
                        $0?.segmentsSent += 1
                        $0?.eventsSent += UInt64(segment.records.count)
                        $0?.bytesSent += UInt64(encoded.count + 5)
                    }
                }
            }
            guard !progressed else { continue }
            if session.peerPruned {
                // A GRAFT changes what to push without changing the log: look again every routeInterval.
                let interval = configuration.routeInterval
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await self.store.waitForChanges(watch) }
                    group.addTask { try? await Task.sleep(for: interval) }
                    await group.next()
                    group.cancelAll()
                }
            } else {
                await store.waitForChanges(watch)
            }
        }
    }
}
