import Foundation
import Testing
import TrailCore
import TrailStore

@Suite struct CursorTests {
    @Test func resumedPortableCursorYieldsEveryUnseenEventOnceOnAnotherRelay() async throws {
        let origins = [relayKey(1), relayKey(2), relayKey(3)]
        let history = try History(seed: 42, namespace: "group/chat", origins: origins, count: 200)
        let directoryA = TemporaryDirectory("a")
        let directoryB = TemporaryDirectory("b")
        let relayA = try Store(directory: directoryA.path)
        let relayB = try Store(directory: directoryB.path)
        defer { relayA.close(); relayB.close() }
        var generator = SeededGenerator(seed: 7)
        // The same events reach the two relays in different orders.
        _ = try await relayA.apply(contentsOf: history.events)
        _ = try await relayB.apply(contentsOf: history.events.shuffled(using: &generator))
        #expect(relayA.vector(of: try Namespace("group/chat")) == relayB.vector(of: try Namespace("group/chat")))

        let namespace = try Namespace("group/chat")
        let firstPage = try relayA.read(namespace, limit: 70)
        #expect(firstPage.events.count == 70)
        let text = firstPage.portableCursor.text
        var rest = [StoredEvent]()
        var cursor: Cursor? = try Cursor(text: text)
        while true {
            let page = try relayB.read(namespace, after: cursor, limit: 25)
            rest += page.events
            cursor = page.portableCursor
            if page.events.isEmpty { break }
        }
        let seen = Set(firstPage.events.map(\.id))
        #expect(rest.count + seen.count == history.events.count)
        #expect(Set(rest.map(\.id)).isDisjoint(with: seen))
        #expect(Set(rest.map(\.id)).count == rest.count)
        // In relay B's own order.
        let orderB = try relayB.readAll("group/chat").map(\.id).filter { !seen.contains($0) }
        #expect(rest.map(\.id) == orderB)
    }

    /// `readStored` hands out each event's stored bytes — exactly its canonical
    /// encoding — at dense positions, with the same cursors as `read`; a
    /// portable cursor is refused.
    /// Reads right behind the head come from the writer's memory of the last
    /// events (`RecentEvents`); they must say what the log on disk says.
    @Test func readsAtTheHeadMatchTheLogOnDisk() async throws {
        let origins = [relayKey(1), relayKey(2), relayKey(3)]
        let history = try History(seed: 11, namespace: "group/doc", origins: origins, count: 300)
        let directory = TemporaryDirectory("head")
        let namespace = try Namespace("group/doc")
        var generator = SeededGenerator(seed: 5)
        // Out of order within windows of 25, in small groups: pending events enter the log when released.
        var shuffled = [Store.Replicated]()
        for start in stride(from: 0, to: history.events.count, by: 25) {
            shuffled += history.events[start..<min(history.events.count, start + 25)].shuffled(using: &generator)
        }
        let filters = [ReadFilter.all, ReadFilter(types: ["note"]), ReadFilter(types: ["none"])]
        var live = [(after: UInt64, filter: Int, page: Page)]()
        do {
            let store = try Store(directory: directory.path)
            defer { store.close() }
            var applied = 0
            while applied < shuffled.count {
                let count = Int.random(in: 1...12, using: &generator)
                _ = try await store.apply(contentsOf: Array(shuffled[applied..<min(shuffled.count, applied + count)]))
                applied += count
                let last = try store.read(namespace, limit: 1).lastPosition
                for after in stride(from: last, through: last > 90 ? last - 90 : 0, by: -7) {
                    for (index, filter) in filters.enumerated() {
                        let cursor = Cursor.position(relay: store.relayID.fingerprint, position: after)
                        live.append((after, index, try store.read(namespace, after: cursor, limit: 100, filter: filter)))
                    }
                }
            }
        }
        // Reopened, the store has nothing in memory: the same reads come from the log on disk.
        let store = try Store(directory: directory.path)
        defer { store.close() }
        #expect(live.filter { !$0.page.events.isEmpty }.count > 200)
        for (after, index, page) in live {
            let cursor = Cursor.position(relay: store.relayID.fingerprint, position: after)
            let through = page.lastPosition - after
            guard through > 0 else { #expect(page.events.isEmpty); continue }
            // As far as the log reached then: `through` events examined, no more.
            let disk = try store.read(namespace, after: cursor, limit: Int(through), filter: .all)
            #expect(page.events == disk.events.filter { filters[index].admits($0.event) }, "after \(after), filter \(index)")
            #expect(page.cursor == disk.cursor)
            #expect(page.portableCursor == disk.portableCursor, "after \(after)")
        }
    }

    @Test func storedBytesPageMatchesTheDecodedPage() async throws {
        let origins = [relayKey(1), relayKey(2)]
        let history = try History(seed: 9, namespace: "replay/stored", origins: origins, count: 120)
        let directory = TemporaryDirectory("stored")
        let store = try Store(directory: directory.path)
        defer { store.close() }
        _ = try await store.apply(contentsOf: history.events)
        let namespace = try Namespace("replay/stored")
        var fast: Cursor?
        var pages = 0
        while true {
            let decoded = try store.read(namespace, after: fast, limit: 50)
            var positions = [UInt64]()
            var bytes = [[UInt8]]()
            let stored = try store.readStored(namespace, after: fast, limit: 50) { position, event in
                positions.append(position)
                bytes.append(Array(event))
            }
            #expect(positions == decoded.events.map(\.position))
            #expect(bytes == decoded.events.map(\.event.encoded))
            #expect(try bytes.map { try Event(decoding: $0).id } == decoded.events.map(\.id))
            #expect(stored.cursor == decoded.cursor && stored.portableCursor == decoded.portableCursor)
            #expect(stored.lastPosition == decoded.lastPosition && stored.events.isEmpty)
            fast = stored.cursor
            pages += 1
            if decoded.events.isEmpty { break }
        }
        #expect(pages == 4)  // 50, 50, 20, then none
        let portable = try store.read(namespace, limit: 10).portableCursor
        #expect(throws: StoreError.self) { try store.readStored(namespace, after: portable) { _, _ in } }
    }

    @Test func portableCursorFromAFastPositionNamesExactlyTheEventsBeforeIt() async throws {
        let directory = TemporaryDirectory()
        let store = try Store(directory: directory.path)
        defer { store.close() }
        let history = try History(seed: 3, namespace: "ns", origins: [relayKey(1), relayKey(2)], count: 50)
        _ = try await store.apply(contentsOf: history.events)
        let all = try store.readAll("ns")
        let page = try store.read(Namespace("ns"), after: .position(relay: store.relayID.fingerprint, position: 20), limit: 10)
        guard case .vector(let vector) = page.portableCursor else { Issue.record("not a vector"); return }
        var expected = VersionVector()
        for stored in all.prefix(30) { expected.advance(origin: stored.origin, to: stored.originSeq) }
        #expect(vector == expected)
    }

    @Test func aFastCursorFromAnotherRelayOrPastTheEndIsRefused() async throws {
        let directory = TemporaryDirectory()
        let store = try Store(directory: directory.path)
        defer { store.close() }
        _ = try await store.append(makeEvent("ns", 0))
        #expect(throws: StoreError.self) { try store.read(Namespace("ns"), after: .position(relay: 12345, position: 1)) }
        #expect(throws: StoreError.self) { try store.read(Namespace("ns"), after: .position(relay: store.relayID.fingerprint, position: 2)) }
        #expect(try store.read(Namespace("ns"), after: .position(relay: store.relayID.fingerprint, position: 1)).events.isEmpty)
    }

    @Test func subscriptionYieldsTheBacklogThenTheLiveTail() async throws {
        let directory = TemporaryDirectory()
        let store = try Store(directory: directory.path)
        defer { store.close() }
        let namespace = try Namespace("live/feed")
        _ = try await store.append(contentsOf: (0..<5).map { try makeEvent("live/feed", $0) })
        let received = Task {
            var positions = [UInt64]()
            for try await stored in store.subscribe(namespace, pageSize: 2) {
                positions.append(stored.position)
                if positions.count == 12 { break }
            }
            return positions
        }
        for index in 5..<12 {
            try await Task.sleep(for: .milliseconds(5))
            _ = try await store.append(makeEvent("live/feed", index))
        }
        let positions = try await received.value
        #expect(positions == Array(1...12))
    }

    @Test func subscriptionEndsWhenTheStoreCloses() async throws {
        let directory = TemporaryDirectory()
        let store = try Store(directory: directory.path)
        let waiting = Task {
            var count = 0
            for try await _ in store.subscribe(try Namespace("quiet")) { count += 1 }
            return count
        }
        try await Task.sleep(for: .milliseconds(50))
        store.close()
        #expect(try await waiting.value == 0)
    }

    @Test func retentionTrimsAPrefixAndReadersAreToldNotSkipped() async throws {
        let directory = TemporaryDirectory()
        let store = try Store(directory: directory.path)
        defer { store.close() }
        let namespace = try Namespace("metrics/cpu")
        try await store.setRetention(Retention(eventCountMax: 10), for: namespace)
        let start = try store.read(namespace).cursor
        _ = try await store.append(contentsOf: (0..<25).map { try makeEvent("metrics/cpu", $0) })
        let info = try #require(try store.info(namespace))
        #expect(info.eventCount == 10)
        #expect(info.trimmedThrough == 15)
        #expect(info.firstPosition == 16)
        #expect(throws: StoreError.self) { try store.read(namespace, after: start) }
        #expect(throws: StoreError.self) { try store.read(namespace) }
        let resumed = try store.read(namespace, after: .position(relay: store.relayID.fingerprint, position: 15))
        #expect(resumed.events.map(\.position) == Array(16...25))
        #expect(try store.check(namespace).isEmpty)
        // A portable cursor that has seen nothing points into the trimmed range.
        #expect(throws: StoreError.self) { try store.read(namespace, after: .vector(VersionVector())) }
    }

    @Test func retentionByAgeUsesTheEventsOwnTimestamps() async throws {
        let directory = TemporaryDirectory()
        let now: UInt64 = 1_800_000_000_000
        let store = try Store(directory: directory.path, configuration: StoreConfiguration(clock: { now }))
        defer { store.close() }
        let namespace = try Namespace("presence")
        _ = try await store.append(contentsOf: (0..<10).map { try makeEvent("presence", $0, timestamp: now - 10_000 + UInt64($0) * 1000) })
        try await store.setRetention(Retention(ageMillisecondsMax: 4_500), for: namespace)
        try await store.enforceRetention()
        let info = try #require(try store.info(namespace))
        #expect(info.firstPosition == 7)  // events 0...5 are older than 4.5 s
        #expect(try store.check(namespace).isEmpty)
    }
}
