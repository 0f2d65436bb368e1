import Foundation
import Testing
import TrailCore
import TrailStore

/// The same event, byte for byte, accepted by two relays before either heard
/// of the other: each numbers it in its own origin. Each relay must still end
/// up holding the other's slot, or the other's later events would wait
/// forever for a predecessor it answers as a duplicate.
@Suite struct AliasTests {
    /// Everything a store holds of a namespace, as replication would send it: every log record.
    func records(_ store: Store, _ namespace: String) throws -> [Store.Replicated] {
        try store.readAll(namespace).map { Store.Replicated(event: $0.event, origin: $0.origin, originSeq: $0.originSeq) }
    }

    @Test func theSameEventAcceptedByTwoRelaysFillsBothSlots() async throws {
        let (directoryA, directoryB) = (TemporaryDirectory(), TemporaryDirectory())
        let a = try Store(directory: directoryA.path)
        let b = try Store(directory: directoryB.path)
        defer { a.close(); b.close() }
        let shared = try makeEvent("auction/7", 0)
        // B holds one event before the shared one, so the two slots differ: (A, 1) and (B, 2).
        _ = try await b.append(try makeEvent("auction/7", 1))
        let onA = try await a.append(shared)
        let onB = try await b.append(shared)
        guard case .appended(let placedA) = onA.outcome, case .appended(let placedB) = onB.outcome else {
            Issue.record("expected both appended: \(onA.outcome), \(onB.outcome)")
            return
        }
        #expect(placedA.originSeq == 1 && placedB.originSeq == 2)
        // Each goes on writing after it.
        _ = try await a.append(try makeEvent("auction/7", 2, parents: [shared.id]))
        _ = try await b.append(try makeEvent("auction/7", 3, parents: [shared.id]))

        // Each relay receives the other's whole log, its copy of the shared event included.
        let fromA = try records(a, "auction/7"), fromB = try records(b, "auction/7")
        let resultsOnA = try await a.apply(contentsOf: fromB)
        _ = try await b.apply(contentsOf: fromA)
        #expect(resultsOnA.map(\.outcome.isDuplicate) == [false, true, false])

        let namespace = try Namespace("auction/7")
        #expect(a.vector(of: namespace) == b.vector(of: namespace))
        #expect(a.vector(of: namespace)[b.relayID] == 3, "B's event after the shared one entered A")
        #expect(Set(try a.readAll("auction/7").map(\.id)) == Set(try b.readAll("auction/7").map(\.id)))
        #expect(try a.readAll("auction/7").count == 4, "the shared event is in the log once")
        #expect(try a.pending(in: namespace).isEmpty && b.pending(in: namespace).isEmpty)
        #expect(try a.check(namespace).isEmpty)
        #expect(try b.check(namespace).isEmpty)
        let aliases = try a.aliases(in: namespace)
        #expect(aliases.count == 1)
        #expect(aliases.first.map { ($0.origin, $0.originSeq, $0.eventPosition) } ?? (a.relayID, 0, 0) == (b.relayID, 2, 1))
        // Applying the same again is idempotent: no second alias.
        _ = try await a.apply(contentsOf: fromB)
        #expect(try a.aliases(in: namespace).count == 1)
    }

    @Test func anAliasWaitsForItsSlotPredecessorDurably() async throws {
        let directory = TemporaryDirectory()
        let other = relayKey(7)
        let shared = try makeEvent("doc/x", 0)
        let first = try makeEvent("doc/x", 1)
        let after = try makeEvent("doc/x", 2, parents: [shared.id])
        let namespace = try Namespace("doc/x")
        do {
            let store = try Store(directory: directory.path, configuration: StoreConfiguration(durability: .synced))
            _ = try await store.append(shared)
            // The other relay's (2) is the shared event; (1) has not arrived.
            let results = try await store.apply(contentsOf: [
                Store.Replicated(event: shared, origin: other, originSeq: 2),
                Store.Replicated(event: after, origin: other, originSeq: 3),
            ])
            #expect(results.map(\.outcome.isDuplicate) == [true, false])
            #expect(store.vector(of: namespace)[other] == 0)
            #expect(try store.pending(in: namespace).map(\.id) == [after.id], "a pending alias is not a pending event")
            store.close()
        }
        let store = try Store(directory: directory.path)
        defer { store.close() }
        _ = try await store.apply(first, origin: other, originSeq: 1)
        #expect(store.vector(of: namespace)[other] == 3)
        #expect(try store.readAll("doc/x").map(\.id) == [shared.id, first.id, after.id])
        #expect(try store.pending(in: namespace).isEmpty)
        #expect(try store.check(namespace).isEmpty)
        #expect(try store.aliases(in: namespace).map(\.after) == [2])
    }

    @Test func anEventPendingUnderOneSlotFillsTheOtherWhenItEnters() async throws {
        let directory = TemporaryDirectory()
        let store = try Store(directory: directory.path)
        defer { store.close() }
        let (one, two) = (relayKey(1), relayKey(2))
        let parent = try makeEvent("task/9", 0)
        let shared = try makeEvent("task/9", 1, parents: [parent.id])
        let namespace = try Namespace("task/9")
        // The shared event arrives under both slots before its parent.
        _ = try await store.apply(shared, origin: one, originSeq: 2)
        _ = try await store.apply(shared, origin: two, originSeq: 1)
        #expect(try store.readAll("task/9").isEmpty)
        _ = try await store.apply(parent, origin: one, originSeq: 1)
        #expect(store.vector(of: namespace)[one] == 2)
        #expect(store.vector(of: namespace)[two] == 1)
        #expect(try store.readAll("task/9").map(\.id) == [parent.id, shared.id])
        #expect(try store.check(namespace).isEmpty)
        // Reopened, the state record carries the alias.
        store.close()
        let reopened = try Store(directory: directory.path)
        defer { reopened.close() }
        #expect(reopened.vector(of: namespace)[two] == 1)
        #expect(try reopened.check(namespace).isEmpty)
    }

    @Test func aPortableCursorSkipsAnEventSeenUnderEitherSlot() async throws {
        let directory = TemporaryDirectory()
        let store = try Store(directory: directory.path)
        defer { store.close() }
        let other = relayKey(5)
        let shared = try makeEvent("chat/r", 0)
        let later = try makeEvent("chat/r", 1, parents: [shared.id])
        _ = try await store.append(shared)
        _ = try await store.apply(contentsOf: [
            Store.Replicated(event: shared, origin: other, originSeq: 1),
            Store.Replicated(event: later, origin: other, originSeq: 2),
        ])
        let namespace = try Namespace("chat/r")
        // A reader that saw the shared event on the other relay, as (other, 1).
        var seen = VersionVector()
        seen.advance(origin: other, to: 1)
        let page = try store.read(namespace, after: .vector(seen))
        #expect(page.events.map(\.id) == [later.id])
        // Replication counts slots: a peer holding only (other, 1) still lacks this relay's own slot.
        let bySlot = try store.read(namespace, after: .vector(seen), bySlot: true)
        #expect(bySlot.events.map(\.id) == [shared.id, later.id])
    }
}

extension AppendResult.Outcome {
    var isDuplicate: Bool {
        if case .duplicate = self { return true }
        return false
    }
}
