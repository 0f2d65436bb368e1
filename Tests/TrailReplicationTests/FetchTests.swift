import Foundation
import Testing
import TrailCore
import TrailReplication
import TrailStore

/// Missing parents are fetched by id: a relay whose event waits for a parent
/// it holds nowhere asks its peers (FETCH), and applies what they answer.
@Suite(.serialized) struct FetchTests {
    let friend = try! SigningKey(seed: [UInt8](repeating: 0x53, count: 32))

    @Test func aPendingEventsParentIsFetchedFromAPeerThatDoesNotPushIt() async throws {
        let relay = try await TestRelay("fetching", allowed: [friend.publicKey], allowAny: false) {
            $0.fetchInterval = .milliseconds(100)
        }
        let namespace = try Namespace("doc/fetch")
        let parent = try Event(namespace: namespace, timestamp: relay.store.now(), type: "note", payload: Array("parent".utf8))
        let child = try Event(namespace: namespace, timestamp: relay.store.now(), parents: [parent.id], type: "note", payload: Array("child".utf8))
        #expect(try await relay.store.append(child).outcome == .pending)

        // A peer that holds the parent but pushes nothing: only FETCH brings it.
        let peer = try await HostilePeer(port: relay.port)
        try await peer.handshake(as: friend)
        try await peer.send(.ready)
        try await peer.send(.credit(8))
        var asked: [EventID] = []
        let deadline = ContinuousClock.now + .seconds(10)
        while asked.isEmpty, ContinuousClock.now < deadline, let frame = try await peer.receive() {
            if case .fetch(let ids) = frame { asked = ids }
        }
        #expect(asked == [parent.id])
        try await peer.send(.fetched([Segment.Record(origin: friend.publicKey, originSeq: 1, event: parent)]))
        for _ in 0..<200 where try relay.ids("doc/fetch").count < 2 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(try relay.ids("doc/fetch") == [parent.id, child.id])
        #expect(try relay.store.pending(in: namespace).isEmpty)
        #expect(try relay.store.check(namespace).isEmpty)
        // The link counts the answer just after applying it.
        for _ in 0..<100 where (relay.replicator.links.first?.eventsFetched ?? 0) < 1 { try await Task.sleep(for: .milliseconds(20)) }
        #expect(relay.replicator.links.first?.eventsFetched == 1)
        await peer.close()
        await relay.stop()
    }
}
