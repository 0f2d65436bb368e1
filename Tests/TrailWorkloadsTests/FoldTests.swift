import Foundation
import Testing
import TrailCore
import TrailReplay
import TrailStore
import TrailWorkloads
@_exported import TrailTestSupport

/// The folds every relay runs must give one answer for every causal order of
/// the same events: checked with the replay tools' explorer over many orders.
@Suite struct FoldTests {
    func stamp(_ offset: UInt64) -> HybridTimestamp { HybridTimestamp(physicalMilliseconds: 1_800_000_000_000 + offset, logical: 0) }

    func event(_ namespace: Namespace, _ type: String, _ payload: String, at offset: UInt64, parents: [EventID] = [], key: SigningKey? = nil) throws -> Event {
        let event = try Event(namespace: namespace, author: key?.publicKey, timestamp: stamp(offset), parents: parents, type: type, payload: Array(payload.utf8))
        return key.map { event.signed(by: $0) } ?? event
    }

    /// Stores `events` in a fresh directory and explores every fold over them.
    func explore(_ events: [Event], seed: UInt64 = 1, _ fold: @escaping ([Event]) -> String) async throws -> Explorer.Report {
        let directory = TemporaryDirectory("fold")
        let store = try Store(directory: directory.path)
        defer { store.close() }
        _ = try await store.append(contentsOf: events)
        let window = try await Explorer.window(of: DirectorySource(store: store), namespace: events[0].namespace)
        var explorer = Explorer(events: window, seed: seed)
        explorer.orderCountMax = 120
        return try await explorer.run { fold($0.map(\.event)) }
    }

    let keys = (1...5).map { try! SigningKey(seed: [UInt8](repeating: UInt8($0), count: 32)) }

    @Test func auctionWinnerIsTheSameInEveryOrderAndFollowsTheRules() async throws {
        let namespace = try Namespace("auction/fold")
        let requester = keys[0]
        let task = try event(namespace, "task", AuctionOutcome.task("t", deadlineMilliseconds: stamp(1000).physicalMilliseconds,
                                                                     deliverWithinMilliseconds: 500, reserve: 10), at: 0, key: requester)
        let bids = [
            try event(namespace, "bid", AuctionOutcome.bid(stake: 40), at: 100, parents: [task.id], key: keys[1]),
            try event(namespace, "bid", AuctionOutcome.bid(stake: 60), at: 200, parents: [task.id], key: keys[2]),
            try event(namespace, "bid", AuctionOutcome.bid(stake: 60), at: 300, parents: [task.id], key: keys[3]),  // a tie on stake
            try event(namespace, "bid", AuctionOutcome.bid(stake: 90), at: 1001, parents: [task.id], key: keys[4]),  // late
            try event(namespace, "bid", AuctionOutcome.bid(stake: 5), at: 400, parents: [task.id], key: keys[1]),   // under the reserve
        ]
        let outcome = AuctionOutcome(events: [task] + bids)
        #expect(outcome.ranking.count == 3 && outcome.ranking[2].bidder == keys[1].publicKey)
        #expect(!outcome.ranking.contains { $0.bidder == keys[4].publicKey }, "a late bid counted")
        let tieWinner = min(keys[2].publicKey, keys[3].publicKey)
        #expect(outcome.assignee == tieWinner && outcome.ranking[0].bidder == tieWinner)
        // The winner misses its window (an event after it is the log's witness); the next takes the task and delivers.
        let tick = try event(namespace, "tick", "{}", at: 1600, parents: [task.id], key: requester)
        let next = outcome.ranking[1].bidder
        let nextKey = keys.first { $0.publicKey == next }!
        let deliver = try event(namespace, "deliver", #"{"result":"ok"}"#, at: 1700, parents: [task.id], key: nextKey)
        let later = AuctionOutcome(events: [task] + bids + [tick, deliver])
        #expect(later.failed == [tieWinner] && later.assignee == next && later.delivered)
        let report = try await explore([task] + bids + [tick, deliver]) { AuctionOutcome(events: $0).summary }
        #expect(report.finding == nil && report.ordersTried > 20)
        // The order-dependent variant (the first counted bid in arrival order wins) is caught, and the pair named.
        let firstBid: ([Event]) -> String = { events in
            let outcome = AuctionOutcome(events: events)
            let counted = Set(outcome.ranking.map(\.id))
            return events.first { counted.contains($0.id) }?.author?.hex ?? "none"
        }
        let caught = try await explore([task] + bids, seed: 3, firstBid)
        let pair = try #require(caught.finding)
        #expect(Set([pair.first.event.type, pair.second.event.type]) == ["bid"])
    }

    @Test func reputationIsIntegerDecayedAndOrderFree() async throws {
        let namespace = try Namespace("reputation/fold")
        var events = [Event]()
        for (index, key) in keys.enumerated() {
            let subject = keys[(index + 1) % keys.count].publicKey
            events.append(try event(namespace, "vouch", Reputation.vouch(for: subject, stake: 100, expiresMilliseconds: stamp(10_000_000).physicalMilliseconds),
                                    at: UInt64(index) * 1_800_000, key: key))
        }
        events.append(try event(namespace, "slash", Reputation.slash(keys[2].publicKey, amount: 30, reason: "missed"), at: 9_000_000, key: keys[0]))
        let expired = try event(namespace, "vouch", Reputation.vouch(for: keys[0].publicKey, stake: 500, expiresMilliseconds: stamp(5).physicalMilliseconds), at: 1, key: keys[3])
        let forged = try event(namespace, "vouch", Reputation.vouch(for: keys[0].publicKey, stake: 900, expiresMilliseconds: stamp(10_000_000).physicalMilliseconds), at: 2)
        let scores = Reputation(events: events + [expired, forged])
        // Reference time: the newest event, 9 000 000 ms = 2.5 half-lives after the first vouch.
        #expect(scores.score(keys[1].publicKey) == 100_000 / 4 - (100_000 / 4) * 500 / 2000)
        // keys[4]'s vouch at 7.2M ms is half a half-life old; the expired and the unsigned vouch do not count.
        #expect(scores.score(keys[0].publicKey) == 100_000 - 100_000 * 500 / 2000)
        #expect(scores.score(keys[2].publicKey) < scores.score(keys[3].publicKey), "the slash lowers keys[2]")
        let report = try await explore(events + [expired]) { Reputation(events: $0).summary }
        #expect(report.finding == nil)
    }

    @Test func sharedTextIsTheSameInEveryCausalOrder() async throws {
        let namespace = try Namespace("doc/fold")
        let start = try event(namespace, "insert", SharedText.insert(after: nil, text: "Hello"), at: 0)
        let a = try event(namespace, "insert", SharedText.insert(after: start.id, text: " brave"), at: 10, parents: [start.id])
        let b = try event(namespace, "insert", SharedText.insert(after: start.id, text: " new"), at: 11, parents: [start.id])
        let c = try event(namespace, "insert", SharedText.insert(after: b.id, text: " world"), at: 12, parents: [b.id])
        let d = try event(namespace, "delete", SharedText.delete(a.id), at: 13, parents: [a.id])
        let e = try event(namespace, "insert", SharedText.insert(after: a.id, text: "!"), at: 14, parents: [a.id])
        let text = SharedText(events: [start, a, b, c, d, e])
        // Siblings newest first: " new world" (11) before " brave" (10, deleted), whose child "!" stays.
        #expect(text.text == "Hello new world!")
        let report = try await explore([start, a, b, c, d, e]) { SharedText(events: $0).text }
        #expect(report.finding == nil && report.concurrentPairCount > 0)
        // A fold that appends texts in arrival order is caught.
        let naive = try await explore([start, a, b, c, e]) { events in events.compactMap { String(decoding: $0.payload, as: UTF8.self).split(separator: "\"").dropLast().last.map(String.init) }.joined() }
        #expect(naive.finding != nil)
    }
}
