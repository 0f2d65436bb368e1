import Foundation
import Testing
import TrailCore
import TrailReplication
import TrailStore

/// The same event accepted by two relays at once (a client that retried on a
/// second relay): every relay, including one that hears of it through only
/// one of them, must converge, with the event once in each log.
@Suite(.serialized) struct AliasReplicationTests {
    @Test(arguments: [Topology.chain, .ring])
    func anEventAcceptedTwiceStillConverges(topology: Topology) async throws {
        var relays = [TestRelay]()
        for index in 0..<3 { relays.append(try await TestRelay("r\(index)")) }
        let namespace = "auction/retry"
        let retried = try Event(
            namespace: Namespace(namespace), timestamp: HybridTimestamp(physicalMilliseconds: 1_700_000_000_000, logical: 0),
            parents: [], type: "bid", payload: Array(#"{"amount":12}"#.utf8))
        // r1 writes first, so the retried event takes a different originSeq on each relay.
        try await relays[1].write(namespace, count: 2, tag: "before")
        _ = try await relays[0].store.append(retried)
        _ = try await relays[1].store.append(retried)
        try await relays[0].write(namespace, count: 3, tag: "after r0")
        try await relays[1].write(namespace, count: 3, tag: "after r1")
        // Chain r2 - r0 - r1: r2 hears of r1's copy only through r0. Ring: also r1 - r2.
        relays[2].link(to: relays[0])
        relays[0].link(to: relays[1])
        if topology == .ring { relays[1].link(to: relays[2]) }
        let converged = try await converge(relays, namespaces: [namespace], timeout: .seconds(30))
        #expect(converged, "\(relays.map { $0.store.vector(of: try! Namespace(namespace)) })")
        let reference = try relays[0].ids(namespace)
        #expect(reference.count == 9)
        for relay in relays {
            #expect(try relay.ids(namespace) == reference, "\(relay.name)")
            #expect(try relay.store.check(Namespace(namespace)).isEmpty, "\(relay.name)")
            #expect(try relay.store.pending(in: Namespace(namespace)).isEmpty, "\(relay.name)")
            #expect(try relay.store.read(Namespace(namespace)).events.count == 9, "\(relay.name) holds the retried event once")
        }
        // Both of the retried event's slots are held everywhere.
        let vector = relays[2].store.vector(of: try Namespace(namespace))
        #expect(vector[relays[0].store.relayID] == 4 && vector[relays[1].store.relayID] == 6)
        for relay in relays { await relay.stop() }
    }
}
