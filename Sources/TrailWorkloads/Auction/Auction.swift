public import TrailCore

/// Workload 1: a task auction, decided by a fold every agent and relay runs.
///
/// Events in an `auction/…` namespace:
/// - `task` `{"task": "…", "deadline_ms": t, "deliver_within_ms": d, "reserve": n}`, signed by the requester;
/// - `bid` `{"stake": n}`, signed by the bidder, a child of the task;
/// - `ack` `{}` from the current assignee; `deliver` `{"result": "…"}` from it.
///
/// Rules (all on the events' own timestamps, so no reader's clock enters):
/// - **Late bids**: a bid stamped after `deadline_ms` does not count. A
///   bidder's latest bid before the deadline (by timestamp, then id) counts.
///   Bids under the reserve do not count.
/// - **Weight**: `stake × (1000 + clamp(reputation, 0, 9000)) / 1000`, with
///   the bidder's reputation in thousandths (`Reputation`) *as of the
///   deadline* (over the reputation events stamped at or before it), so a
///   later slash cannot reorder a closed auction: a reputation of one stake
///   unit adds 0.1%, up to ten times the stake.
/// - **Ranking**: weight, then stake, then the smaller bidder key: no ties.
/// - **Delivery**: the first in the ranking must `deliver` within
///   `deliver_within_ms` after the deadline; the next within the window
///   after that, and so on. A candidate whose window has closed (some event
///   in the log is stamped after it) without a delivery is slashed (its
///   stake, in the reputation namespace, posted by the requester) and the
///   task goes to the next bidder.
public struct AuctionOutcome: Sendable, Equatable {
    public struct Bid: Sendable, Equatable {
        public let bidder: PublicKey
        public let stake: Int64
        public let weight: Int64
        public let id: EventID
    }

    public let task: EventID?
    public let requester: PublicKey?
    /// Counted bids, best first.
    public let ranking: [Bid]
    /// Who holds the task now (delivered or still within their window).
    public let assignee: PublicKey?
    public let delivered: Bool
    /// Candidates whose window closed without a delivery, in order.
    public let failed: [PublicKey]
    /// When the assignee's delivery window closes.
    public let windowEnd: UInt64?

    /// The one line agreement checks compare.
    public var summary: String {
        "winner \(assignee.map { String($0.hex.prefix(16)) } ?? "none") delivered \(delivered) failed [\(failed.map { String($0.hex.prefix(8)) }.joined(separator: ","))] bids \(ranking.count)"
    }

    /// `reputationEvents`: the reputation namespace's events (any order); those after the deadline do not count.
    public init(events: some Sequence<Event>, reputationEvents: [Event] = []) {
        let events = Array(events)
        let now = events.map(\.timestamp.physicalMilliseconds).max() ?? 0
        let task = events.filter { $0.type == "task" && $0.signatureStatus == .valid }.min(by: Event.precedes)
        guard let task, let fields = Payload(task), let deadline = fields.int("deadline_ms"), let within = fields.int("deliver_within_ms"), within > 0 else {
            self.task = nil; requester = nil; ranking = []; assignee = nil; delivered = false; failed = []; windowEnd = nil
            return
        }
        let reserve = fields.int("reserve") ?? 0
        let reputation = Reputation(events: reputationEvents.filter { $0.timestamp.physicalMilliseconds <= UInt64(max(0, deadline)) })
        var latest = [PublicKey: Event]()
        for bid in events where bid.type == "bid" && bid.parents.contains(task.id) && bid.signatureStatus == .valid {
            guard let bidder = bid.author, bid.timestamp.physicalMilliseconds <= UInt64(max(0, deadline)),
                  let stake = Payload(bid)?.int("stake"), stake >= reserve, stake > 0 else { continue }
            if let earlier = latest[bidder], Event.precedes(bid, earlier) { continue }
            latest[bidder] = bid
        }
        let bids = latest.map { bidder, event -> Bid in
            let stake = Payload(event)!.int("stake")!
            let bonus = min(max(reputation.score(bidder), 0), 9000)
            return Bid(bidder: bidder, stake: stake, weight: stake * (1000 + bonus) / 1000, id: event.id)
        }
        let ranking = bids.sorted { ($0.weight, $0.stake, $1.bidder) > ($1.weight, $1.stake, $0.bidder) }
        var failed = [PublicKey]()
        var assignee: PublicKey?
        var delivered = false
        var windowEnd: UInt64?
        for (round, candidate) in ranking.enumerated() {
            let end = UInt64(deadline) + UInt64(within) * UInt64(round + 1)
            let delivery = events.contains {
                $0.type == "deliver" && $0.author == candidate.bidder && $0.signatureStatus == .valid
                    && $0.timestamp.physicalMilliseconds <= end && $0.timestamp.physicalMilliseconds > UInt64(deadline)
            }
            if delivery {
                assignee = candidate.bidder; delivered = true; windowEnd = end
                break
            }
            if now > end { failed.append(candidate.bidder); continue }
            assignee = candidate.bidder; windowEnd = end
            break
        }
        self.task = task.id
        requester = task.author
        self.ranking = ranking
        self.assignee = assignee
        self.delivered = delivered
        self.failed = failed
        self.windowEnd = windowEnd
    }

    public static func task(_ description: String, deadlineMilliseconds: UInt64, deliverWithinMilliseconds: UInt64, reserve: Int64) -> String {
        json(["task": description, "deadline_ms": deadlineMilliseconds, "deliver_within_ms": deliverWithinMilliseconds, "reserve": reserve])
    }

    public static func bid(stake: Int64) -> String { json(["stake": stake]) }
}
