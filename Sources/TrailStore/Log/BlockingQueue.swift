import DequeModule
import Foundation

/// A bounded queue that other threads add to and one dedicated thread drains
/// in batches (a shard writer's jobs, a syncer's written groups). Closing it
/// lets the draining thread finish what is queued; then `take` returns nil.
///
/// A queue may also be drained by whoever finds it idle (`appendOrClaim`):
/// then at most one drainer holds it at a time, the dedicated thread included
/// (`claim`/`release`), so what the drainer owns needs no other lock.
final class BlockingQueue<Element>: @unchecked Sendable {
    // `condition` guards `items`, `isClosed` and `isClaimed`.
    private let condition = NSCondition()
    private var items = Deque<Element>()
    private var isClosed = false
    /// Someone is draining under `claim` or `appendOrClaim` and has not released.
    private var isClaimed = false
    let countMax: Int

    enum Refusal: Error {
        case closed
        case full(count: Int)
    }

    init(countMax: Int = .max) {
        self.countMax = countMax
    }

    /// Adds `element` and wakes the draining thread, or says why not.
    func append(_ element: Element) throws(Refusal) {
        condition.lock()
        defer { condition.unlock() }
        guard !isClosed else { throw .closed }
        guard items.count < countMax else { throw .full(count: items.count) }
        items.append(element)
        condition.signal()
    }

    /// Adds `element`. When nothing was queued and nobody drains, the caller
    /// becomes the drainer: it gets the batch `take` removes (its own element
    /// first) and must `release` once that batch is done. Otherwise the
    /// dedicated thread is woken and nil is returned.
    func appendOrClaim<Batch>(_ element: Element, _ take: (inout Deque<Element>) -> Batch) throws(Refusal) -> Batch? {
        condition.lock()
        defer { condition.unlock() }
        guard !isClosed else { throw .closed }
        guard items.count < countMax else { throw .full(count: items.count) }
        items.append(element)
        guard items.count == 1, !isClaimed else {
            condition.signal()
            return nil
        }
        isClaimed = true
        return take(&items)
    }

    /// The dedicated thread's `take` for a queue that others may drain too: waits
    /// until something is queued and nobody else drains, then claims it. The
    /// caller must `release` after the batch. Nil once closed, empty and released.
    func claim<Batch>(_ take: (inout Deque<Element>) -> Batch) -> Batch? {
        condition.lock()
        defer { condition.unlock() }
        while isClaimed || (items.isEmpty && !isClosed) { condition.wait() }
        guard !items.isEmpty else { return nil }
        isClaimed = true
        return take(&items)
    }

    /// Ends a claim; what was queued meanwhile goes to the dedicated thread.
    func release() {
        condition.lock()
        isClaimed = false
        condition.signal()
        condition.unlock()
    }

    /// Refuses further elements; the draining thread still gets what is queued.
    func close() {
        condition.lock()
        isClosed = true
        condition.signal()
        condition.unlock()
    }

    /// Waits until something is queued, then lets `take` remove a batch (at
    /// least one element) under the lock. Nil once closed and empty.
    func take<Batch>(_ take: (inout Deque<Element>) -> Batch) -> Batch? {
        condition.lock()
        defer { condition.unlock() }
        while items.isEmpty && !isClosed { condition.wait() }
        guard !items.isEmpty else { return nil }
        return take(&items)
    }
}
