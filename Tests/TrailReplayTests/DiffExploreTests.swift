import Foundation
import Testing
import TrailCore
import TrailReplay
import TrailStore

@Suite struct DiffTests {
    /// B got carol's bid before the others, missed the close, and holds a
    /// note of its own; C holds another event under carol's (origin, seq).
    @Test func diffListsExactlyThePlantedDifferences() async throws {
        let log = try await AuctionLog()
        defer { log.store.close() }
        let origin = log.store.relayID
        let directoryB = TemporaryDirectory("diff-b")
        let b = try Store(directory: directoryB.path)
        defer { b.close() }
        _ = try await b.apply(log.task, origin: origin, originSeq: 1)
        _ = try await b.apply(log.carolBid, origin: AuctionLog.otherRelay, originSeq: 1)
        _ = try await b.apply(log.aliceBid, origin: origin, originSeq: 2)
        _ = try await b.apply(log.bobBid, origin: origin, originSeq: 3)
        let note = try AuctionLog.event("note", "seen by b only", at: 500, parents: [log.task.id])
        _ = try await b.append(note)

        let differences = try await Diff(DirectorySource(store: log.store), DirectorySource(store: b)).run()
        let difference = try #require(differences.first)
        #expect(differences.count == 1)
        #expect(difference.vectorOrder == .concurrent)
        #expect(difference.onlyInA.map(\.id) == [log.close.id])
        #expect(difference.onlyInB.map(\.id) == [note.id])
        #expect(difference.conflicts.isEmpty)
        #expect(difference.commonCount == 4)
        // A: alice, bob, carol; B: carol, alice, bob. Carol comes out of order after bob.
        let pair = try #require(difference.disagreements.first)
        #expect(difference.disagreements.count == 1)
        #expect(pair.first.id == log.bobBid.id && pair.second.id == log.carolBid.id)
        #expect(pair.concurrent)
        #expect(pair.firstInB == 4 && pair.secondInB == 2)

        let directoryC = TemporaryDirectory("diff-c")
        let c = try Store(directory: directoryC.path)
        defer { c.close() }
        let impostor = try AuctionLog.event("bid", #"{"bidder":"mallory","stake":99}"#, at: 300, parents: [log.task.id])
        _ = try await c.apply(log.task, origin: origin, originSeq: 1)
        _ = try await c.apply(impostor, origin: AuctionLog.otherRelay, originSeq: 1)
        let conflict = try #require(try await Diff(DirectorySource(store: log.store), DirectorySource(store: c)).run().first?.conflicts.first)
        #expect(conflict.inA == log.carolBid.id && conflict.inB == impostor.id && conflict.originSeq == 1)

        let same = try await Diff(DirectorySource(store: log.store), DirectorySource(store: log.store)).run()
        #expect(same.allSatisfy { $0.isSame } && same.first?.vectorOrder == .equal)
    }
}

/// Folds over an auction's events, as an agent would compute the winner.
enum Folds {
    static func stake(_ stored: StoredEvent) -> (String, Int)? {
        guard stored.event.type == "bid",
              let object = try? JSONSerialization.jsonObject(with: Data(stored.event.payload)) as? [String: Any],
              let bidder = object["bidder"] as? String, let stake = object["stake"] as? Int else { return nil }
        return (bidder, stake)
    }

    /// The bug: the first bid to arrive wins.
    static func firstBidWins(_ events: [StoredEvent]) -> String { events.lazy.compactMap(stake).first?.0 ?? "none" }

    /// The fix: the highest stake wins, ties to the smaller name.
    static func highestStakeWins(_ events: [StoredEvent]) -> String {
        events.compactMap(stake).max { ($0.1, $1.0) < ($1.1, $0.0) }?.0 ?? "none"
    }

    /// A CRDT counter: the sum of stakes, whatever the order.
    static func totalStake(_ events: [StoredEvent]) -> String { String(events.compactMap(stake).reduce(0) { $0 + $1.1 }) }
}

@Suite struct ExploreTests {
    @Test func anArrivalOrderBugIsFoundAsTheSmallestPair() async throws {
        let log = try await AuctionLog()
        defer { log.store.close() }
        let events = try await Explorer.window(of: DirectorySource(store: log.store), namespace: AuctionLog.namespace)
        let report = try await Explorer(events: events, seed: 1).run { Folds.firstBidWins($0) }
        #expect(report.recordedOutcome == "alice")
        #expect(report.concurrentPairCount == 3)
        let finding = try #require(report.finding)
        #expect(finding.first.id == log.aliceBid.id && finding.second.id == log.bobBid.id)
        #expect(finding.changedOutcome == "bob")
        #expect(finding.order == [1, 3, 2, 4, 5])
    }

    @Test func orderIndependentFoldsShowNoDifference() async throws {
        let log = try await AuctionLog()
        defer { log.store.close() }
        let events = try await Explorer.window(of: DirectorySource(store: log.store), namespace: AuctionLog.namespace)
        for fold in [Folds.highestStakeWins, Folds.totalStake] {
            let report = try await Explorer(events: events, seed: 9).run { fold($0) }
            #expect(report.finding == nil)
            #expect(report.distinctOutcomes == 1)
            // Three concurrent bids have 3! = 6 orders: all were tried.
            #expect(report.ordersTried == 5)
        }
    }

    /// Forty concurrent writes of which two, far apart, write the same key:
    /// last-writer-by-arrival makes the result depend on those two alone.
    /// The systematic swaps (closest pairs) do not reach them; random orders
    /// do, and bisection narrows the difference to exactly that pair. The
    /// same seed finds the same pair by the same number of orders.
    @Test func aFarApartPairIsNarrowedDownFromARandomOrder() async throws {
        let directory = TemporaryDirectory("explore")
        let store = try Store(directory: directory.path)
        defer { store.close() }
        let namespace = try Namespace("kv/settings")
        let root = try Event(namespace: namespace, timestamp: HybridTimestamp(physicalMilliseconds: 1, logical: 0), type: "start", payload: [])
        var writes = [Event]()
        for index in 0..<40 {
            let key = index == 5 || index == 35 ? "x" : "k\(index)"
            writes.append(try Event(namespace: namespace, timestamp: HybridTimestamp(physicalMilliseconds: 2 + UInt64(index), logical: 0),
                                    parents: [root.id], type: "set", payload: Array("\(key)=\(index)".utf8)))
        }
        _ = try await store.append(contentsOf: [root] + writes)
        let events = try await Explorer.window(of: DirectorySource(store: store), namespace: namespace)
        let lastWriterOfX: ([StoredEvent]) -> String = { order in
            order.last { String(decoding: $0.event.payload, as: UTF8.self).hasPrefix("x=") }.map { String(decoding: $0.event.payload, as: UTF8.self) } ?? ""
        }
        var explorer = Explorer(events: events, seed: 2026)
        explorer.orderCountMax = 80
        let report = try await explorer.run(lastWriterOfX)
        #expect(report.recordedOutcome == "x=35")
        let finding = try #require(report.finding)
        #expect(Set([finding.first.id, finding.second.id]) == Set([writes[5].id, writes[35].id]))
        #expect(finding.changedOutcome == "x=5")
        let again = try await explorer.run(lastWriterOfX)
        #expect(again.ordersTried == report.ordersTried && again.finding?.order == finding.order)
    }
}

@Suite struct GraphTests {
    /// A chain of ten edits by one author collapses into one box between the
    /// events around it; with collapsing off, every event is drawn.
    @Test func longRunsCollapseAndConcurrentEventsShareARow() async throws {
        let directory = TemporaryDirectory("graph")
        let store = try Store(directory: directory.path)
        defer { store.close() }
        let namespace = try Namespace("doc/graph")
        func event(_ type: String, _ index: UInt64, _ parents: [EventID]) throws -> Event {
            try Event(namespace: namespace, timestamp: HybridTimestamp(physicalMilliseconds: index, logical: 0), parents: parents,
                      type: type, payload: Array("\(type) \(index)".utf8))
        }
        let root = try event("open", 0, [])
        var chain = [Event]()
        for index in 1...10 { chain.append(try event("edit", UInt64(index), [chain.last?.id ?? root.id])) }
        let side = try event("comment", 11, [root.id])
        let close = try event("close", 12, [chain.last!.id, side.id])
        _ = try await store.append(contentsOf: [root] + chain + [side, close])
        let events = try await Explorer.window(of: DirectorySource(store: store), namespace: namespace)
        let dot = Graph(events: events).dot(title: "doc")
        #expect(dot.contains("10 × edit\\n@2…@11"), "\(dot)")
        #expect(dot.components(separatedBy: "[label=").count - 1 == 4)  // open, the run, comment, close
        #expect(dot.contains("{ rank=same; e1; e11; }"))                 // the run's head beside the comment
        var expanded = Graph(events: events)
        expanded.collapse = false
        #expect(expanded.dot(title: "doc").components(separatedBy: "[label=").count - 1 == 13)
    }
}
