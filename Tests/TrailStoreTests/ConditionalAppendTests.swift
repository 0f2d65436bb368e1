import Testing
import TrailCore
import TrailStore

/// A conditional append is a compare-and-set on the namespace's log head.
@Suite struct ConditionalAppendTests {
    @Test func onlyTheAppendThatSawTheHeadEnters() async throws {
        let directory = TemporaryDirectory("conditional")
        let store = try Store(directory: directory.path)
        defer { store.close() }
        let namespace = try Namespace("leader/checkpoints")
        func event(_ text: String, parents: [EventID] = []) throws -> Event {
            try Event(namespace: namespace, timestamp: store.now(), parents: parents, type: "checkpoint", payload: Array(text.utf8))
        }
        let first = try event("first")
        #expect(try await store.append(first, ifLastPosition: 0).placement?.position == 1)
        #expect(try await store.append(event("stale"), ifLastPosition: 0).outcome == .headMoved(lastPosition: 1))
        // A retry of what entered is a duplicate, not a conflict.
        #expect(try await store.append(first, ifLastPosition: 0).placement?.position == 1)
        // Parents must be held: a conditional event never waits in pending.
        let orphan = try event("orphan", parents: [EventID(bytes: [UInt8](repeating: 1, count: 32))])
        await #expect(throws: StoreError.self) { try await store.append(orphan, ifLastPosition: 1) }

        // Twenty leaders race on the same head: exactly one wins.
        let contenders = try (0..<20).map { try event("leader \($0)", parents: [first.id]) }
        let results = try await withThrowingTaskGroup(of: AppendResult.self) { group in
            for contender in contenders { group.addTask { try await store.append(contender, ifLastPosition: 1) } }
            return try await group.reduce(into: [AppendResult]()) { $0.append($1) }
        }
        #expect(results.filter { $0.placement != nil }.count == 1)
        #expect(results.filter { $0.outcome == .headMoved(lastPosition: 2) }.count == 19)
        #expect(store.vector(of: namespace).total == 2)
        #expect(try store.check(namespace).isEmpty)
    }
}
