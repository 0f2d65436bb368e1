import Foundation
import Testing
import TrailCore
import TrailReplication
import TrailStore

/// DIRECT: in a mesh every relay takes each origin's events from that
/// origin's own relay, so no event crosses a link twice; when the direct
/// link goes down, the other peers push that origin again, and nothing is lost.
@Suite(.serialized) struct DirectTests {
    /// Waits, bounded, until every relay has `count` links up.
    func waitForLinks(_ relays: [TestRelay], _ count: Int) async throws -> Bool {
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if relays.allSatisfy({ $0.replicator.links.count == count }) { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    /// Events a relay received over its links, all peers together.
    func received(_ relay: TestRelay) -> Int {
        relay.replicator.links.reduce(0) { $0 + Int($1.eventsReceived) }
    }

    /// Events received since `before`, once `count` have come or a few
    /// seconds passed: a link counts a segment just after applying it, so
    /// the vectors may agree a moment before the counts do.
    func received(_ relay: TestRelay, since before: Int, expecting count: Int) async throws -> Int {
        let deadline = ContinuousClock.now + .seconds(5)
        while received(relay) - before < count, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        try await Task.sleep(for: .milliseconds(100))  // and no more than that
        return received(relay) - before
    }

    @Test func aMeshCarriesEachEventOnceAndReroutesWhenADirectLinkDrops() async throws {
        let relays = [try await TestRelay("direct0"), try await TestRelay("direct1"), try await TestRelay("direct2")]
        // Relay 0 reaches relay 1 through a proxy, so that link alone can be cut.
        let proxy = try await FaultProxy(to: relays[1].port)
        relays[0].replicator.connect(host: "127.0.0.1", port: proxy.port)
        relays[0].link(to: relays[2])
        relays[1].link(to: relays[2])
        try #require(try await waitForLinks(relays, 2), "the mesh did not form")
        // The DIRECT frames of the last links to come up reach the peers within a round trip.
        try await Task.sleep(for: .milliseconds(300))

        let namespace = "team/direct"
        let before = relays.map(received)
        for (index, relay) in relays.enumerated() { try await relay.write(namespace, count: 200, tag: "r\(index)") }
        #expect(try await converge(relays, namespaces: [namespace], timeout: .seconds(30)))
        for (index, relay) in relays.enumerated() {
            // 400 events were made elsewhere; each came once, from the relay that made it.
            let count = try await received(relay, since: before[index], expecting: 400)
            #expect(count == 400, "relay \(index) received \(count) events for 400")
            for link in relay.replicator.links {
                #expect(link.peerDirect.count == 1, "each peer takes the third relay's events from it directly")
            }
        }

        // Cut 0-1: relay 2 must now forward 0's events to 1, and 1's to 0.
        proxy.cut()
        try #require(try await waitForLinks([relays[0], relays[1]], 1), "the cut link stayed up")
        try await relays[0].write(namespace, count: 100, tag: "cut0")
        try await relays[1].write(namespace, count: 100, tag: "cut1")
        #expect(try await converge(relays, namespaces: [namespace], timeout: .seconds(30)), "relay 2 did not forward across the cut")
        let reference = try relays[2].ids(namespace)
        #expect(reference.count == 800)
        for (index, relay) in relays.enumerated() {
            #expect(try relay.ids(namespace) == reference, "relay \(index) holds other events")
            #expect(try relay.store.check(try Namespace(namespace)).isEmpty, "relay \(index)'s log breaks an invariant")
        }

        // Healed: the direct link comes back and carries the next events alone.
        proxy.heal()
        try #require(try await waitForLinks(relays, 2), "the healed link did not come back")
        try await Task.sleep(for: .milliseconds(300))
        let healed = relays.map(received)
        try await relays[0].write(namespace, count: 50, tag: "healed")
        #expect(try await converge(relays, namespaces: [namespace], timeout: .seconds(30)))
        for index in 1...2 {
            let count = try await received(relays[index], since: healed[index], expecting: 50)
            #expect(count == 50, "relay \(index) received \(count) events for 50")
        }

        for relay in relays { await relay.stop() }
        await proxy.close()
    }
}
