import Foundation
import Testing
import TrailCore
import TrailReplication
import TrailStore
import TrailTestSupport

/// PRUNE and GRAFT (Docs/PROTOCOL.md, Routing): a relay takes each origin's
/// events through one link, not from every peer that holds them, and takes
/// them through another when that link goes quiet.
@Suite struct RoutingTests {
    let namespace = try! Namespace("doc/routed")

    /// The GRAFTs among a routing check's frames (the rest are ACK notes).
    func grafts(_ frames: [Frame]) -> [Frame] {
        frames.filter { if case .graft = $0 { true } else { false } }
    }

    func hello(_ store: Store) -> Frame.Hello {
        Frame.Hello(relay: store.relayID, origin: store.incarnation.origin, incarnation: store.incarnation.number,
                    nonce: [UInt8](repeating: 0, count: Frame.nonceByteCount), frameBytesMax: Frame.frameBytesMinimum, prefixes: [])
    }

    /// The HELLO of a relay numbered `number` that is not the events' origin (it got them from it).
    func forwarder(_ number: UInt8) -> Frame.Hello {
        let key = try! PublicKey(bytes: [UInt8](repeating: number, count: 32))
        return Frame.Hello(relay: key, origin: key, incarnation: 1, nonce: [UInt8](repeating: 0, count: Frame.nonceByteCount),
                           frameBytesMax: Frame.frameBytesMinimum, prefixes: [])
    }

    /// Two stores in temporary directories: `source` holds ten chained events of its own origin, `me` nothing.
    struct Relays {
        let directories = (TemporaryDirectory("route-source"), TemporaryDirectory("route-me"))
        let source: Store
        let me: Store
        init(_ tests: RoutingTests) async throws {
            source = try await tests.source(directories.0, count: 10)
            me = try Store(directory: directories.1.path)
        }
        func close() {
            me.close()
            source.close()
        }
    }

    /// A store holding `count` chained events of its own origin.
    func source(_ directory: TemporaryDirectory, count: Int) async throws -> Store {
        let store = try Store(directory: directory.path)
        var previous: EventID?
        for index in 0..<count {
            let event = try Event(namespace: namespace, timestamp: store.now(), parents: previous.map { [$0] } ?? [],
                                  type: "edit", payload: Array("edit \(index)".utf8))
            _ = try await store.append(event)
            previous = event.id
        }
        return store
    }

    /// Two links of `me` to peers that both hold the source's events: the
    /// first carries the source's origin, the second was told PRUNE for it.
    func carrierAndPruned(_ relays: Relays) throws -> (carrier: LinkSession, pruned: LinkSession) {
        let board = RouteBoard()
        let configuration = ReplicationConfiguration(allowAnyPeer: true)
        let carrier = LinkSession(store: relays.me, configuration: configuration, peer: forwarder(1), routes: board)
        let pruned = LinkSession(store: relays.me, configuration: configuration, peer: forwarder(2), routes: board)
        for session in [carrier, pruned] { try session.receiveWant(namespace, relays.source.vector(of: namespace)) }
        _ = carrier.receiveReady()
        #expect(pruned.receiveReady() == [.prune(namespace, [relays.source.incarnation.origin])])
        return (carrier, pruned)
    }

    @Test func aSecondPeerHoldingTheSameOriginIsPrunedBeforeItPushes() async throws {
        let relays = try await Relays(self)
        let (source, me) = (relays.source, relays.me)
        defer { relays.close() }
        let origin = source.incarnation.origin
        let configuration = ReplicationConfiguration(allowAnyPeer: true)
        let board = RouteBoard()
        // Two peers that both hold the source's ten events (both played by the source's store).
        let first = LinkSession(store: me, configuration: configuration, peer: forwarder(1), routes: board)
        let second = LinkSession(store: me, configuration: configuration, peer: forwarder(2), routes: board)
        for session in [first, second] { try session.receiveWant(namespace, source.vector(of: namespace)) }
        #expect(first.receiveReady().isEmpty, "the first link to offer the origin carries it")
        #expect(second.receiveReady() == [.prune(namespace, [origin])], "the second is told not to push it")

        // The pushing side honours the PRUNE, and after a GRAFT sends from what the peer holds.
        let pusher = LinkSession(store: source, configuration: configuration, peer: hello(me))
        try pusher.receiveWant(namespace, me.vector(of: namespace))
        try pusher.receivePrune(namespace, [origin])
        let pruned = try pusher.nextSegments(of: namespace, head: 10) ?? []
        #expect(pruned.flatMap(\.segment.records).isEmpty)
        var held = VersionVector()
        held.advance(origin: origin, to: 4)
        try pusher.receiveGraft(namespace, [origin], held)
        let grafted = try pusher.nextSegments(of: namespace, head: 10) ?? []
        #expect(grafted.flatMap(\.segment.records).map(\.originSeq) == Array(5...10))

        // When the carrying link ends, the origin is free: the next link to offer it carries it.
        first.close()
        let third = LinkSession(store: me, configuration: configuration, peer: forwarder(3), routes: board)
        try third.receiveWant(namespace, source.vector(of: namespace))
        #expect(third.receiveReady().isEmpty)

        // A link to the origin itself carries it, whoever did before: its events then take one hop.
        let direct = LinkSession(store: me, configuration: configuration, peer: hello(source), routes: board)
        try direct.receiveWant(namespace, source.vector(of: namespace))
        #expect(direct.receiveReady().isEmpty)
        let fourth = LinkSession(store: me, configuration: configuration, peer: forwarder(4), routes: board)
        try fourth.receiveWant(namespace, source.vector(of: namespace))
        #expect(fourth.receiveReady() == [.prune(namespace, [origin])])
    }

    @Test func aPrunedOriginIsGraftedWhenTheOtherPathGoesQuiet() async throws {
        let relays = try await Relays(self)
        let (source, me) = (relays.source, relays.me)
        defer { relays.close() }
        let origin = source.incarnation.origin
        let (_, other) = try carrierAndPruned(relays)

        // The carrier delivers three events, then nothing: the relay's count stands still.
        let page = try source.read(namespace, after: nil, limit: 3)
        _ = try await me.apply(contentsOf: page.events.map { Segment.Record(origin: $0.origin, originSeq: $0.originSeq, event: $0.event) })
        #expect(other.routingFrames(now: .zero) == [.ack(namespace, me.vector(of: namespace))],
                "the pruned peer is told what this relay holds (a note), and the count moved since the PRUNE: not quiet")
        for check in 1...3 {
            #expect(other.routingFrames(now: .zero).isEmpty, "check \(check): a link still carries the origin, so a short pause is not a stall; no new note")
        }
        #expect(other.routingFrames(now: .zero) == [.graft(namespace, [origin], me.vector(of: namespace))], "four still checks: grafted")
        #expect(grafts(other.routingFrames(now: .zero)).isEmpty, "a GRAFT is sent once")
    }

    @Test func anOriginCarriedByItsOwnLinkIsNotGraftedWhileThatLinkIsUp() async throws {
        let relays = try await Relays(self)
        let (source, me) = (relays.source, relays.me)
        defer { relays.close() }
        let origin = source.incarnation.origin
        let board = RouteBoard()
        let configuration = ReplicationConfiguration(allowAnyPeer: true)
        let direct = LinkSession(store: me, configuration: configuration, peer: hello(source), routes: board)
        let other = LinkSession(store: me, configuration: configuration, peer: forwarder(2), routes: board)
        for session in [direct, other] { try session.receiveWant(namespace, source.vector(of: namespace)) }
        #expect(direct.receiveReady().isEmpty)
        #expect(other.receiveReady() == [.prune(namespace, [origin])])

        // The origin's own link lags: three events of ten, then nothing for many checks.
        let page = try source.read(namespace, after: nil, limit: 3)
        _ = try await me.apply(contentsOf: page.events.map { Segment.Record(origin: $0.origin, originSeq: $0.originSeq, event: $0.event) })
        for check in 0..<12 {
            #expect(grafts(other.routingFrames(now: .milliseconds(50 * check))).isEmpty,
                    "check \(check): no path is faster than the origin's own link, however it lags")
        }
        // Its link ends (a partition): the forwarder that holds more is grafted at the next check.
        direct.close()
        #expect(grafts(other.routingFrames(now: .milliseconds(50 * 12))) == [.graft(namespace, [origin], me.vector(of: namespace))])
    }

    @Test func anOriginWhoseCarrierLinkEndedIsGraftedAtOnce() async throws {
        let relays = try await Relays(self)
        let (source, me) = (relays.source, relays.me)
        defer { relays.close() }
        let (carrier, other) = try carrierAndPruned(relays)
        carrier.close()
        #expect(grafts(other.routingFrames(now: .zero)) == [.graft(namespace, [source.incarnation.origin], me.vector(of: namespace))])
    }
}
