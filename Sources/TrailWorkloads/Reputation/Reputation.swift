public import TrailCore

/// Workload 3: reputation from signed vouches.
///
/// Events in a `reputation/…` namespace:
/// - `vouch` `{"subject": <key hex>, "stake": n, "expires_ms": t}`, signed by
///   the voucher. A voucher's latest vouch for a subject (by timestamp, then
///   id) replaces its earlier ones; a stake of 0 withdraws.
/// - `slash` `{"subject": <key hex>, "amount": n, "reason": "…"}`, signed.
///
/// Unsigned events, bad signatures and malformed payloads do not count (a
/// relay refuses a bad signature before it is ever stored).
///
/// Scores are integers, computed from the log alone: the reference time is
/// the newest event timestamp in the log (never the reader's clock). A vouch
/// counts while `expires_ms` is after that time, weighted by
/// `stake × 2^(-age / halfLife)` in integer arithmetic (linear between
/// halvings, in thousandths); a slash subtracts its amount, undecayed.
/// Sums of integers do not depend on order, so every relay and agent that
/// holds the same events computes the same scores, whatever its log order.
public struct Reputation: Sendable, Equatable {
    public static let halfLifeMilliseconds: UInt64 = 3_600_000

    /// Score per subject, in thousandths of a stake unit.
    public private(set) var scores: [PublicKey: Int64] = [:]
    /// The log time the scores are computed at.
    public private(set) var reference: UInt64 = 0

    public init(events: some Sequence<Event>) {
        var latest = [PublicKey: [PublicKey: Event]]()  // voucher → subject → vouch
        var slashes = [(PublicKey, Int64)]()
        for event in events {
            reference = max(reference, event.timestamp.physicalMilliseconds)
            guard let author = event.author, event.signatureStatus == .valid, let payload = Payload(event),
                  let subject = payload.key("subject") else { continue }
            switch event.type {
            case "vouch":
                guard let stake = payload.int("stake"), stake >= 0, payload.int("expires_ms") != nil, author != subject else { continue }
                if let earlier = latest[author]?[subject], Event.precedes(event, earlier) { continue }
                latest[author, default: [:]][subject] = event
            case "slash":
                guard let amount = payload.int("amount"), amount > 0 else { continue }
                slashes.append((subject, amount))
            default: continue
            }
        }
        for (_, bySubject) in latest {
            for (subject, vouch) in bySubject {
                let payload = Payload(vouch)!
                let expires = UInt64(max(0, payload.int("expires_ms")!))
                guard expires > reference else { continue }
                scores[subject, default: 0] += Self.decayed(payload.int("stake")! * 1000, age: reference - vouch.timestamp.physicalMilliseconds)
            }
        }
        for (subject, amount) in slashes { scores[subject, default: 0] -= amount * 1000 }
    }

    /// `value × 2^(-age / halfLife)`, in integers: halvings by shifts, the
    /// rest of a half-life linearly.
    static func decayed(_ value: Int64, age: UInt64) -> Int64 {
        let halvings = age / halfLifeMilliseconds
        guard halvings < 62 else { return 0 }
        let halved = value >> Int64(halvings)
        let fraction = Int64((age % halfLifeMilliseconds) * 1000 / halfLifeMilliseconds)  // thousandths of the next halving
        return halved - halved * fraction / 2000
    }

    public func score(_ subject: PublicKey) -> Int64 { scores[subject] ?? 0 }

    /// One line per subject, sorted: what agreement checks compare.
    public var summary: String {
        scores.sorted { $0.key < $1.key }.map { "\($0.key.hex.prefix(16)) \($0.value)" }.joined(separator: "\n")
    }

    public static func vouch(for subject: PublicKey, stake: Int64, expiresMilliseconds: UInt64) -> String {
        json(["subject": subject.hex, "stake": stake, "expires_ms": expiresMilliseconds])
    }

    public static func slash(_ subject: PublicKey, amount: Int64, reason: String) -> String {
        json(["subject": subject.hex, "amount": amount, "reason": reason])
    }
}
