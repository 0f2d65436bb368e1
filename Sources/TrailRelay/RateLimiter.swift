import Foundation
import TrailCore
import HTTPTypes
import Hummingbird

/// Per-client append limits: one token bucket per token name (or one shared
/// by every client of a relay without tokens). A request takes as many
/// tokens as it carries events, or is refused whole with 429 and
/// `Retry-After`: it never half-appends.
final class RateLimiter: Sendable {
    struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private let buckets = Locked<[String: Bucket]>([:])

    /// Takes `count` tokens from `client`'s bucket, or throws 429 naming the limit and when to retry.
    func admit(_ client: String, count: Int, rate: AppendRate, reading: Bool = false, now: ContinuousClock.Instant = .now) throws(APIError) {
        let needed = Double(count)
        if reading {
            // Reads have a bucket of their own, and their rate counts requests.
            guard let wait = take(needed, from: "read " + client, rate: rate, now: now) else { return }
            var error = APIError(.tooManyRequests, "rate_limited", field: "Authorization",
                                 "\(client) may read \(AppendRate.format(rate.eventsPerSecond)) requests/s (burst \(AppendRate.format(rate.burst))); retry in \(String(format: "%.2f", wait)) s")
            error.headers[.retryAfter] = String(Int(wait.rounded(.up)))
            throw error
        }
        guard needed <= rate.burst else {
            var error = APIError(.tooManyRequests, "rate_limited", field: "body",
                                 "\(client) may append \(rate); a batch of \(count) events can never fit: send at most \(AppendRate.format(rate.burst)) per request")
            error.headers[.retryAfter] = "1"
            throw error
        }
        guard let wait = take(needed, from: client, rate: rate, now: now) else { return }
        var error = APIError(.tooManyRequests, "rate_limited", field: "Authorization",
                             "\(client) may append \(rate); retry in \(String(format: "%.2f", wait)) s")
        error.headers[.retryAfter] = String(Int(wait.rounded(.up)))
        throw error
    }

    /// Takes `needed` tokens from the bucket, or answers how many seconds until it holds them.
    private func take(_ needed: Double, from client: String, rate: AppendRate, now: ContinuousClock.Instant) -> Double? {
        buckets.withLock { buckets in
            var bucket = buckets[client] ?? Bucket(tokens: rate.burst, updated: now)
            let elapsed = now - bucket.updated
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            bucket.tokens = min(rate.burst, bucket.tokens + max(0, seconds) * rate.eventsPerSecond)
            bucket.updated = now
            defer { buckets[client] = bucket }
            guard bucket.tokens >= needed else { return (needed - bucket.tokens) / rate.eventsPerSecond }
            bucket.tokens -= needed
            return nil
        }
    }
}
