import Foundation
import Subprocess
import SystemPackage
import Testing
import TrailCore
import TrailStore

@Suite(.serialized) struct ProcessTests {
    /// Two `trail peer` processes; the receiving one is killed with SIGKILL
    /// mid-stream three times and restarted. It ends with exactly the
    /// source's events, in a valid causal log.
    @Test func aRelayKilledMidStreamConverges() async throws {
        let source = TemporaryDirectory("proc-source")
        let sink = TemporaryDirectory("proc-sink")
        let namespace = try Namespace("doc/a")
        var expected = Set<EventID>()
        do {
            let store = try Store(directory: source.path)
            var previous: EventID?
            var batch = [Event]()
            for index in 0..<30_000 {
                let event = try Event(namespace: namespace, timestamp: store.now(), parents: previous.map { [$0] } ?? [],
                                      type: "note", payload: Array("event \(index) ".utf8) + [UInt8](repeating: 7, count: 200))
                previous = index % 7 == 0 ? event.id : previous
                batch.append(event)
                expected.insert(event.id)
                if batch.count == 500 {
                    _ = try await store.append(contentsOf: batch)
                    batch.removeAll()
                }
            }
            store.close()
        }
        let server = try await TrailProcess(["peer", "--data", source.path, "--listen", "127.0.0.1:0", "--allow-any"], waitForListening: true)
        let port = try #require(server.port)
        var generator = SplitMix64(seed: UInt64.random(in: 1...1_000_000))
        for _ in 0..<3 {
            let client = try await TrailProcess(["peer", "--data", sink.path, "--connect", "127.0.0.1:\(port)", "--allow-any"], waitForListening: false)
            try await Task.sleep(for: .milliseconds(Int(generator.next() % 400) + 100))
            await client.signal(.kill)
        }
        let client = try await TrailProcess(["peer", "--data", sink.path, "--connect", "127.0.0.1:\(port)", "--allow-any"], waitForListening: false)
        // Watch the sink beside its process, bounded to 2 minutes.
        var converged = false
        for _ in 0..<1200 {
            if let reader = try? Store(directory: sink.path, mode: .secondary) {
                converged = reader.vector(of: namespace).total == 30_000
                reader.close()
            }
            if converged { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        await client.signal(.terminate)
        await server.signal(.terminate)
        #expect(converged)
        let store = try Store(directory: sink.path)
        defer { store.close() }
        var held = Set<EventID>()
        var cursor: Cursor?
        while true {
            let page = try store.read(namespace, after: cursor, limit: 1000)
            held.formUnion(page.events.map(\.id))
            cursor = page.cursor
            if page.isAtEnd { break }
        }
        #expect(held == expected)
        #expect(try store.check(namespace).isEmpty)
        #expect(try store.pending(in: namespace).isEmpty)
    }
}
