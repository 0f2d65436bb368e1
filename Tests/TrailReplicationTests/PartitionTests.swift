import Foundation
import Testing
import TrailCore
import TrailReplication
import TrailStore

/// Five relays in a full mesh, each link through a `FaultProxy`. The mesh is
/// cut into {0, 1} and {2, 3, 4}; each side keeps writing; once the links
/// heal, every relay ends with every event, in a valid causal log. The time
/// from healing to convergence is printed (`TRAIL_LONG_TESTS=1`: 100k events).
@Suite(.serialized) struct PartitionTests {
    /// `count` events appended in batches of 500, each following the one before.
    func writeChain(_ relay: TestRelay, _ namespace: Namespace, count: Int, tag: String) async throws {
        var previous: EventID?
        var batch = [Event]()
        for index in 0..<count {
            let event = try Event(namespace: namespace, timestamp: relay.store.now(), parents: previous.map { [$0] } ?? [],
                                  type: "edit", payload: Array("\(tag) \(index) ".utf8) + [UInt8](repeating: 0x61, count: 200))
            previous = event.id
            batch.append(event)
            if batch.count == 500 || index == count - 1 {
                _ = try await relay.store.append(contentsOf: batch)
                batch.removeAll()
            }
        }
    }

    @Test func fiveRelaysConvergeAfterAPartitionHeals() async throws {
        let perSide = ProcessInfo.processInfo.environment["TRAIL_LONG_TESTS"] == nil ? 5_000 : 50_000
        var built = [TestRelay]()
        for index in 0..<5 {
            built.append(try await TestRelay("part\(index)") { $0.reconnectDelayMax = .milliseconds(250) })
        }
        let relays = built
        var proxies = [(Int, Int, FaultProxy)]()
        for i in 0..<5 {
            for j in (i + 1)..<5 {
                let proxy = try await FaultProxy(to: relays[j].port)
                proxies.append((i, j, proxy))
                relays[i].replicator.connect(host: "127.0.0.1", port: proxy.port)
            }
        }
        let namespace = try Namespace("doc/partitioned")
        try await writeChain(relays[0], namespace, count: 1, tag: "before")
        try #require(try await converge(relays, namespaces: [namespace.name], timeout: .seconds(20)), "the mesh did not form through the proxies")

        let sideA: Set = [0, 1]
        for (i, j, proxy) in proxies where sideA.contains(i) != sideA.contains(j) { proxy.cut() }
        let (a, b) = (relays[0], relays[3])
        async let left: Void = writeChain(a, namespace, count: perSide, tag: "left")
        async let right: Void = writeChain(b, namespace, count: perSide, tag: "right")
        _ = try await (left, right)
        #expect(try await converge([relays[0], relays[1]], namespaces: [namespace.name]))
        #expect(try await converge([relays[2], relays[3], relays[4]], namespaces: [namespace.name]))
        #expect(relays[1].store.vector(of: namespace) != relays[2].store.vector(of: namespace), "the cut let events through")

        let healed = ContinuousClock.now
        for (_, _, proxy) in proxies { proxy.heal() }
        let converged = try await converge(relays, namespaces: [namespace.name], timeout: .seconds(120))
        let elapsed = ContinuousClock.now - healed
        print("partition of 5 relays healed: \(2 * perSide) events written apart converged in \(elapsed)")
        #expect(converged)
        let reference = try relays[0].ids(namespace.name)
        #expect(reference.count == 2 * perSide + 1)
        for relay in relays {
            #expect(try relay.ids(namespace.name) == reference, "\(relay.name) holds other events")
            #expect(try relay.store.check(namespace).isEmpty, "\(relay.name)'s log breaks an invariant")
        }
        for relay in relays { await relay.stop() }
        for (_, _, proxy) in proxies { await proxy.close() }
    }
}
