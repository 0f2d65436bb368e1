import Foundation
import Testing
import TrailCore
import TrailStore

@Suite struct AppendTests {
    @Test func appendedEventsGetDensePositionsAndAreReadableByID() async throws {
        let directory = TemporaryDirectory()
        let store = try Store(directory: directory.path)
        defer { store.close() }
        var ids = [EventID]()
        for index in 0..<10 {
            let result = try await store.append(makeEvent("chat/room", index))
            guard case .appended(let placement) = result.outcome else { Issue.record("\(result)"); return }
            #expect(placement.position == UInt64(index + 1))
            #expect(placement.origin == store.relayID)
            #expect(placement.originSeq == UInt64(index + 1))
            ids.append(result.id)
        }
        for (index, id) in ids.enumerated() {
            let stored = try #require(try store.event(id: id))
            #expect(stored.position == UInt64(index + 1))
        }
        #expect(try store.readAll("chat/room").map(\.id) == ids)
        #expect(store.vector(of: try Namespace("chat/room")) == VersionVector([store.relayID: 10]))
        #expect(try store.check(Namespace("chat/room")).isEmpty)
    }

    /// Regression, found by the simulator: a 1 MiB write buffer made RocksDB
    /// abort the process on the first memtable of the id family.
    @Test func aTinyWriteBufferIsRaisedToTheMinimum() async throws {
        let directory = TemporaryDirectory()
        let configuration = StoreConfiguration(writeBufferBytes: 1 << 20)
        #expect(configuration.writeBufferBytes == StoreConfiguration.writeBufferBytesMin)
        let store = try Store(directory: directory.path, configuration: configuration)
        defer { store.close() }
        for index in 0..<50 { _ = try await store.append(try makeEvent("small", index)) }
        #expect(try store.readAll("small").count == 50)
    }

    @Test func appendingAHeldEventAgainSaysDuplicateAndWhere() async throws {
        let directory = TemporaryDirectory()
        let store = try Store(directory: directory.path)
        defer { store.close() }
        let event = try makeEvent("auction/task-1", 1)
        let first = try await store.append(event)
        let again = try await store.append(contentsOf: [event, event])
        #expect(again.allSatisfy { $0.outcome == .duplicate(first.placement!) })
        #expect(try store.readAll("auction/task-1").count == 1)
    }

    @Test func eventsSurviveReopenAndNumberingContinues() async throws {
        let directory = TemporaryDirectory()
        var store = try Store(directory: directory.path, configuration: StoreConfiguration(durability: .synced))
        let relay = store.relayID
        _ = try await store.append(contentsOf: (0..<5).map { try makeEvent("ns", $0) })
        store.close()
        store = try Store(directory: directory.path)
        defer { store.close() }
        #expect(store.relayID == relay)
        let next = try await store.append(makeEvent("ns", 5))
        #expect(next.placement?.position == 6)
        #expect(next.placement?.originSeq == 6)
        #expect(try store.check(Namespace("ns")).isEmpty)
    }

    /// One writer for every shard, and one writer per shard.
    @Test(arguments: [1, 4])
    func concurrentAppendersLeaveEveryNamespaceDenseAndTheVectorEqualToTheLog(writers: Int) async throws {
        let directory = TemporaryDirectory()
        let store = try Store(directory: directory.path, configuration: StoreConfiguration(shardCount: 4, writerCount: writers))
        defer { store.close() }
        let taskCount = 200
        let perTask = 25
        let namespaceCount = 40
        let results = try await withThrowingTaskGroup(of: [AppendResult].self) { group in
            for task in 0..<taskCount {
                group.addTask {
                    var results = [AppendResult]()
                    for index in 0..<perTask {
                        let event = try makeEvent("load/ns-\((task + index) % namespaceCount)", task * 1000 + index)
                        if index % 5 == 0 {
                            results += try await store.append(contentsOf: [event, try makeEvent("load/batch-\(task % 7)", task * 1000 + index)])
                        } else {
                            results.append(try await store.append(event))
                        }
                    }
                    return results
                }
            }
            return try await group.reduce(into: [AppendResult]()) { $0 += $1 }
        }
        #expect(results.allSatisfy { if case .appended = $0.outcome { true } else { false } })
        var total: UInt64 = 0
        for info in try store.namespaces(prefix: "load") {
            #expect(try store.check(info.namespace).isEmpty, "\(info.namespace)")
            #expect(info.vector.total == info.lastPosition)
            #expect(info.eventCount == info.lastPosition)
            let positions = try store.readAll(info.namespace.name).map(\.position)
            #expect(positions == Array(1...info.lastPosition))
            total += info.eventCount
        }
        #expect(total == UInt64(results.count))
        for result in results { #expect(try store.event(id: result.id)?.position == result.placement?.position) }
    }

    @Test func anOversizedPayloadIsRefusedAndNothingIsStored() async throws {
        let directory = TemporaryDirectory()
        let store = try Store(directory: directory.path, configuration: StoreConfiguration(limits: EventLimits(payloadBytesMax: 64)))
        defer { store.close() }
        _ = try await store.append(makeEvent("ns", 0))
        let big = try Event(namespace: Namespace("ns"), timestamp: .zero, type: "t", payload: [UInt8](repeating: 1, count: 65))
        await #expect(throws: StoreError.self) { try await store.append(big) }
        #expect(try store.readAll("ns").count == 1)
    }

    @Test func aForgedSignatureIsRefused() async throws {
        let directory = TemporaryDirectory()
        let store = try Store(directory: directory.path)
        defer { store.close() }
        let author = try SigningKey(seed: [UInt8](repeating: 3, count: 32))
        let other = try SigningKey(seed: [UInt8](repeating: 4, count: 32))
        let honest = try Event(namespace: Namespace("rep"), author: author.publicKey, timestamp: .zero, type: "vouch", payload: [1])
        _ = try await store.append(honest.signed(by: author))
        let forgedBytes = try Event(namespace: Namespace("rep"), author: other.publicKey, timestamp: .zero, type: "vouch", payload: [2])
            .signed(by: other).encoded
        // Swap in the honest author's key: the signature no longer matches.
        var bytes = forgedBytes
        bytes.replaceSubrange(1 + 1 + 3 + 1..<1 + 1 + 3 + 1 + 32, with: author.publicKey.bytes)
        let forged = try Event(decoding: bytes)
        await #expect(throws: StoreError.self) { try await store.append(forged) }
        #expect(try store.readAll("rep").count == 1)
    }
}

@Suite struct IDIndexTests {
    /// Ids stay findable across reopen (with the state replayed from the log),
    /// duplicates are recognised, and trimmed events leave the id index.
    @Test func idsStayFindableAcrossReopenAndTrim() async throws {
        let directory = TemporaryDirectory("ids")
        let configuration = StoreConfiguration(shardCount: 2)
        var store = try Store(directory: directory.path, configuration: configuration)
        var ids = [EventID]()
        for round in 0..<20 {
            let batch = try (0..<5).map { try makeEvent("ids/ns-\($0 % 3)", round * 10 + $0) }
            ids += try await store.append(contentsOf: batch).map(\.id)
        }
        for id in ids { #expect(try store.event(id: id) != nil) }
        // Appending held events again is a duplicate, whether their id sits in memory or in a table file.
        let again = try await store.append(contentsOf: (0..<5).map { try makeEvent("ids/ns-\($0 % 3)", $0) })
        #expect(again.allSatisfy { if case .duplicate = $0.outcome { true } else { false } })
        store.close()
        store = try Store(directory: directory.path, configuration: configuration)
        defer { store.close() }
        for id in ids { #expect(try store.event(id: id) != nil, "\(id.short) lost after reopen") }
        for info in try store.namespaces() { #expect(try store.check(info.namespace).isEmpty) }
        let namespace = try Namespace("ids/ns-0")
        let trimmedThrough = try await store.trim(namespace, through: 10)
        #expect(trimmedThrough == 10)
        let remaining = try store.read(namespace, after: .position(relay: store.relayID.fingerprint, position: 10)).events
        #expect(remaining.first?.position == 11)
        #expect(try store.check(namespace).isEmpty)
        let gone = ids.filter { id in (try? store.event(id: id)) == nil }
        #expect(gone.count == 10)
    }
}

@Suite struct CorruptionTests {
    @Test func corruptedInputIsRefusedAndTheStoreStaysIntact() async throws {
        let directory = TemporaryDirectory("corrupt")
        let store = try Store(directory: directory.path)
        defer { store.close() }
        let events = try (0..<10).map { try makeEvent("audit/log", $0) }
        _ = try await store.append(contentsOf: events)
        let bytes = events[3].encoded
        #expect(throws: DecodeError.self) { try Event(decoding: Array(bytes.dropLast(5))) }
        #expect(throws: DecodeError.self) { try Event(decoding: bytes + [0xFF]) }
        let cursor = try store.read(Namespace("audit/log"), limit: 4).portableCursor.text
        var damaged = Array(cursor)
        damaged[damaged.count / 2] = damaged[damaged.count / 2] == "x" ? "y" : "x"
        #expect(throws: DecodeError.self) { try Cursor(text: String(damaged)) }
        #expect(throws: DecodeError.self) { try Cursor(text: String(cursor.dropLast(3))) }
        #expect(try store.readAll("audit/log").map(\.id) == events.map(\.id))
        #expect(try store.check(Namespace("audit/log")).isEmpty)
    }
}

@Suite struct SyncedTests {
    /// With `synced`, groups are acknowledged by the syncer thread after their
    /// fsync: an acknowledged event must already be readable, by id and by page.
    @Test func anAcknowledgedSyncedAppendIsReadableAtOnce() async throws {
        let directory = TemporaryDirectory("synced")
        let store = try Store(directory: directory.path, configuration: StoreConfiguration(durability: .synced))
        defer { store.close() }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<16 {
                group.addTask {
                    for index in 0..<20 {
                        let result = try await store.append(makeEvent("synced/ns-\(task % 4)", task * 100 + index))
                        let stored = try #require(try store.event(id: result.id))
                        #expect(stored.position == result.placement?.position)
                        let page = try store.read(stored.event.namespace, after: .position(relay: store.relayID.fingerprint, position: stored.position - 1), limit: 1)
                        #expect(page.events.first?.id == result.id)
                    }
                }
            }
            try await group.waitForAll()
        }
        for info in try store.namespaces(prefix: "synced") { #expect(try store.check(info.namespace).isEmpty) }
    }
}
