import Foundation
import Testing
import TrailCore
import TrailStore

@Suite struct KeyRotationTests {
    @Test func aRotationIsSignedByTheOldKeyAndChainsToTheCurrentOne() throws {
        let first = try SigningKey(seed: [UInt8](repeating: 1, count: 32))
        let second = try SigningKey(seed: [UInt8](repeating: 2, count: 32))
        let third = try SigningKey(seed: [UInt8](repeating: 3, count: 32))
        let a = KeyRotation(from: first, to: second.publicKey)
        let b = KeyRotation(from: second, to: third.publicKey)
        #expect(a.isValid && b.isValid)
        #expect(try KeyRotation(bytes: a.bytes) == a)
        #expect(KeyRotation.problem(in: [a, b], endingAt: third.publicKey) == nil)
        #expect(KeyRotation.problem(in: [a, b], endingAt: second.publicKey)?.contains("end at") == true)
        #expect(KeyRotation.problem(in: [b, a], endingAt: second.publicKey)?.contains("not at") == true)
        var tampered = a.bytes
        tampered[40] ^= 1
        #expect(KeyRotation.problem(in: [try KeyRotation(bytes: tampered)], endingAt: try PublicKey(bytes: tampered[32..<64]))?.contains("not signed") == true)
        #expect(throws: KeyError.self) { try KeyRotation(bytes: a.bytes.dropLast()) }
    }

    @Test func aRotatedStoreKeepsItsEventsOriginAndFastCursors() async throws {
        let directory = TemporaryDirectory()
        var cursor: Cursor
        let origin: RelayID
        do {
            let store = try Store(directory: directory.path)
            for index in 0..<4 { _ = try await store.append(try makeEvent("rot", index)) }
            cursor = try store.read(Namespace("rot"), after: nil, limit: 2).cursor
            origin = store.originID
            store.close()
        }
        let first = try Store.rotateIdentity(directory: directory.path)
        let second = try Store.rotateIdentity(directory: directory.path)
        #expect(second.previous == first.next)
        let store = try Store(directory: directory.path)
        defer { store.close() }
        #expect(store.relayID == second.next && store.rotations == [first, second])
        #expect(store.originID == origin)
        // A fast cursor made under the first key still reads.
        let page = try store.read(Namespace("rot"), after: cursor, limit: 10)
        #expect(page.events.map(\.position) == [3, 4])
        _ = try await store.append(try makeEvent("rot", 9))
        #expect(try store.readAll("rot").last?.origin == origin)
        #expect(try store.check(Namespace("rot")).isEmpty)
        cursor = page.cursor
        #expect(try store.read(Namespace("rot"), after: cursor, limit: 10).events.count == 1)
    }

    @Test func aRotationInterruptedBeforeItWasRecordedKeepsTheOldKey() throws {
        let directory = TemporaryDirectory()
        let key: PublicKey
        do {
            let store = try Store(directory: directory.path)
            key = store.relayID
            store.close()
        }
        // A crash after the new key was written and before its rotation was.
        try (String(repeating: "ab", count: 32) + "\n").write(toFile: directory.path + "/relay.key.next", atomically: true, encoding: .utf8)
        let store = try Store(directory: directory.path)
        defer { store.close() }
        #expect(store.relayID == key && store.rotations.isEmpty)
        #expect(!FileManager.default.fileExists(atPath: directory.path + "/relay.key.next"))
    }

    @Test func aDamagedRotationsFileIsRefusedByName() throws {
        let directory = TemporaryDirectory()
        try Store.rotateIdentity(directory: directory.path)
        let path = directory.path + "/" + Store.rotationsFileName
        try "zz\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect { try Store(directory: directory.path) } throws: { error in
            "\(error)".contains(Store.rotationsFileName) && "\(error)".contains("line 1")
        }
    }
}
