import Testing
import TrailCore
import TrailStore

/// The library example of README.md, kept runnable.
@Suite struct ReadmeExampleTests {
    @Test func theReadmeExampleWorksAsWritten() async throws {
        let directory = TemporaryDirectory("readme")
        let store = try Store(directory: directory.path, configuration: StoreConfiguration(durability: .synced))
        defer { store.close() }

        let room = try Namespace("chat/room-1")
        let hello = try Event(namespace: room, timestamp: store.now(), type: "message", payload: Array("hi".utf8))
        let reply = try Event(namespace: room, timestamp: store.now(), parents: [hello.id],
                              type: "message", payload: Array("hello".utf8))

        #expect(try await store.append(reply).outcome == .pending)
        let result = try await store.append(hello)
        #expect(result.placement?.position == 1)
        #expect(try store.event(id: reply.id)?.position == 2)

        let page = try store.read(room, limit: 100)
        let saved = page.portableCursor.text
        let rest = try store.read(room, after: Cursor(text: saved))
        #expect(page.events.map(\.id) == [hello.id, reply.id])
        #expect(rest.events.isEmpty)

        let follow = Task {
            for try await stored in store.subscribe(room, after: page.cursor) { return stored.position }
            return 0
        }
        _ = try await store.append(Event(namespace: room, timestamp: store.now(), type: "message", payload: [1]))
        #expect(try await follow.value == 3)
    }
}
