import Foundation
public import TrailCore

/// Runs workloads 1 and 3 together across a federation: agents vouch for
/// each other (reputation), a requester posts a task, bidders on different
/// relays bid, the first-ranked bidder fails to deliver and is slashed, the
/// next delivers. Every relay's fold must give the same scores and winner.
public struct AuctionRun: Sendable {
    public let federation: Federation
    public var bidders = 6
    public var name = "auction/task-\(UInt32.random(in: 0...UInt32.max))"
    /// Bidding stays open this long after the task is posted.
    public var biddingMilliseconds: UInt64 = 4000
    public var deliverWithinMilliseconds: UInt64 = 8000

    public init(federation: Federation) { self.federation = federation }

    public func run() async throws -> WorkloadReport {
        let auction = try Namespace(name)
        let reputation = try Namespace("reputation/" + name.replacingOccurrences(of: "/", with: "-"))
        var generator = SystemRandomNumberGenerator()
        let requester = SigningKey.generate(using: &generator)
        let keys = (0..<bidders).map { _ in SigningKey.generate(using: &generator) }
        var count = 0

        // Reputation: each agent vouches for the next one; a forged vouch is refused by every relay.
        let expires = UInt64(Date().timeIntervalSince1970 * 1000) + 3_600_000
        for (index, key) in keys.enumerated() {
            let subject = keys[(index + 1) % keys.count].publicKey
            let vouch = try Federation.event(reputation, type: "vouch", payload: Reputation.vouch(for: subject, stake: Int64(10 * (index + 1)), expiresMilliseconds: expires), key: key)
            _ = try await federation.client(index).append(vouch)
            count += 1
        }
        let forger = keys[0]
        let forged = try Federation.event(reputation, type: "vouch", payload: Reputation.vouch(for: forger.publicKey, stake: 1_000_000, expiresMilliseconds: expires), key: keys[1])
            .attaching(signature: forger.sign(Array("not this event".utf8)))
        var refusals = 0
        for index in federation.urls.indices {
            do { _ = try await federation.client(index).append(forged) } catch { refusals += 1 }
        }

        // The task, then bids from every relay (after the task has reached it).
        let deadline = UInt64(Date().timeIntervalSince1970 * 1000) + biddingMilliseconds
        let task = try Federation.event(auction, type: "task", payload: AuctionOutcome.task(
            "summarise the incident log", deadlineMilliseconds: deadline, deliverWithinMilliseconds: deliverWithinMilliseconds, reserve: 10), key: requester)
        _ = try await federation.client(0).append(task)
        count += 1
        try await federation.converge([auction])
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, key) in keys.enumerated() {
                group.addTask {
                    let bid = try Federation.event(auction, type: "bid", payload: AuctionOutcome.bid(stake: Int64(20 + 7 * ((index * 5) % keys.count))), parents: [task.id], key: key)
                    _ = try await federation.client(index).append(bid)
                }
            }
            try await group.waitForAll()
        }
        count += keys.count
        try await federation.converge([auction, reputation])

        // After the deadline every agent computes the assignee from its own relay's log.
        try await Task.sleep(for: .milliseconds(Int64(deadline) - Int64(Date().timeIntervalSince1970 * 1000) + 50))
        func outcome(on index: Int) async throws -> AuctionOutcome {
            AuctionOutcome(events: try await federation.events(auction, on: index),
                           reputationEvents: try await federation.events(reputation, on: index))
        }
        let first = try await outcome(on: 0)
        guard let assignee = first.assignee, let window = first.windowEnd else { throw WorkloadError.failed("no bid counted") }
        let winnerIndex = keys.firstIndex { $0.publicKey == assignee }!
        _ = try await federation.client(winnerIndex).append(try Federation.event(auction, type: "ack", payload: "{}", parents: [task.id], key: keys[winnerIndex]))
        count += 1
        // The winner does not deliver. Once its window has passed, the requester
        // posts a tick (the log's own witness that time passed) and the slash.
        try await Task.sleep(for: .milliseconds(Int64(window) - Int64(Date().timeIntervalSince1970 * 1000) + 50))
        // Stamped just past the window (the requester's clock has passed it): the
        // log's witness that the first window closed, and no later than that.
        _ = try await federation.client(1).append(try Federation.event(auction, type: "tick", payload: "{}", parents: [task.id], key: requester, at: window + 1))
        let stake = first.ranking.first { $0.bidder == assignee }!.stake
        _ = try await federation.client(1).append(try Federation.event(reputation, type: "slash", payload: Reputation.slash(assignee, amount: stake, reason: "no delivery by \(window)"), key: requester))
        count += 2
        // The ranking was fixed at the deadline: the next bidder knows it is next and delivers.
        guard first.ranking.count > 1 else { throw WorkloadError.failed("only one bid counted: \(first.summary)") }
        let next = first.ranking[1].bidder
        let nextIndex = keys.firstIndex { $0.publicKey == next }!
        _ = try await federation.client(nextIndex).append(try Federation.event(auction, type: "deliver", payload: #"{"result":"done"}"#, parents: [task.id], key: keys[nextIndex]))
        count += 1
        try await federation.converge([auction, reputation])

        let outcomes = try await federation.urls.indices.asyncMap { try await outcome(on: $0) }
        let scores = try await federation.agree(reputation) { Reputation(events: $0).summary }
        let summaries = outcomes.map(\.summary)
        return WorkloadReport(
            workload: "task auction", agents: keys.count + 1, events: count + keys.count,
            checks: [
                ("same winner on every relay", Set(summaries).count == 1 && outcomes[0].delivered && outcomes[0].assignee == next),
                ("failed winner slashed, task passed on", outcomes[0].failed == [assignee]),
                ("same scores on every relay", Set(scores).count == 1),
                ("forged vouch refused by every relay", refusals == federation.urls.count),
            ],
            notes: [outcomes[0].summary])
    }
}

extension Range where Bound == Int {
    func asyncMap<T>(_ transform: (Int) async throws -> T) async rethrows -> [T] {
        var out = [T]()
        for index in self { out.append(try await transform(index)) }
        return out
    }
}
