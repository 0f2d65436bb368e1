import Foundation
import Testing
import TrailCore
import TrailReplication
import TrailStore

@Suite(.serialized) struct ConvergenceTests {
    static let cases: [(Topology, Int)] = Topology.allCases.flatMap { topology in [3, 5].map { (topology, $0) } }

    /// Writes on every relay, in two namespaces, while links come up; after
    /// quiescence every relay holds the same events and a valid causal log.
    @Test(arguments: cases)
    func relaysConverge(topology: Topology, count: Int) async throws {
        var relays = [TestRelay]()
        for index in 0..<count { relays.append(try await TestRelay("r\(index)")) }
        let namespaces = ["chat/room-1", "doc/design-42"]
        // Half the writes before the links exist (catch-up), half after (live push).
        for (index, relay) in relays.enumerated() {
            for namespace in namespaces { try await relay.write(namespace, count: 20, tag: "early r\(index)") }
        }
        for (from, to) in topology.edges(count) { relays[from].link(to: relays[to]) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, relay) in relays.enumerated() {
                group.addTask {
                    for namespace in namespaces { try await relay.write(namespace, count: 30, tag: "late r\(index)") }
                }
            }
            try await group.waitForAll()
        }
        let converged = try await converge(relays, namespaces: namespaces)
        #expect(converged, "\(topology) of \(count) did not converge: \(relays.map { $0.replicator.links.map(\.description) })")
        for namespace in namespaces {
            let reference = try relays[0].ids(namespace)
            #expect(reference.count == count * 50)
            for relay in relays {
                #expect(try relay.ids(namespace) == reference, "\(relay.name) holds other events in \(namespace)")
                #expect(try relay.store.check(Namespace(namespace)).isEmpty, "\(relay.name)'s log of \(namespace) breaks an invariant")
                #expect(try relay.store.pending(in: Namespace(namespace)).isEmpty)
            }
        }
        for relay in relays { await relay.stop() }
    }

    /// A relay that joins late catches up on a backlog larger than the credit window.
    @Test func anEmptyRelayCatchesUp() async throws {
        let source = try await TestRelay("source")
        try await source.write("log/big", count: 3000, tag: "backlog")
        let empty = try await TestRelay("empty") { $0.segmentEventCountMax = 100; $0.creditWindow = 2 }
        empty.link(to: source)
        #expect(try await converge([source, empty], namespaces: ["log/big"]))
        #expect(try empty.ids("log/big") == source.ids("log/big"))
        // The link's counters move just after the store commits: give them a moment.
        for _ in 0..<250 where (empty.replicator.links.first?.eventsReceived ?? 0) < 3000 {
            try await Task.sleep(for: .milliseconds(20))
        }
        let link = try #require(empty.replicator.links.first)
        #expect(empty.replicator.links.count == 1, "\(empty.replicator.links)")
        #expect(link.eventsReceived == 3000)
        #expect(link.eventsSent == 0)
        await source.stop()
        await empty.stop()
    }

    /// Selective replication: a relay holding only `doc/` never receives `chat/`.
    @Test func linksCarryOnlyWhatBothHold() async throws {
        let all = try await TestRelay("all")
        let docs = try await TestRelay("docs", prefixes: ["doc/"])
        try await all.write("doc/a", count: 10, tag: "a")
        try await all.write("chat/b", count: 10, tag: "b")
        try await docs.write("doc/a", count: 5, tag: "c")
        docs.link(to: all)
        #expect(try await converge([all, docs], namespaces: ["doc/a"]))
        try await Task.sleep(for: .milliseconds(200))
        #expect(docs.store.heads().keys.map(\.name).sorted() == ["doc/a"])
        #expect(try all.ids("doc/a").count == 15)
        await all.stop()
        await docs.stop()
    }
}
