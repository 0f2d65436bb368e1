import DequeModule
import Foundation

/// A bounded queue that other threads add to and one dedicated thread drains
/// in batches (a shard writer's jobs, a syncer's written groups). Closing it
/// lets the draining thread finish what is queued; then `take` returns nil.
final class BlockingQueue<Element>: @unchecked Sendable {
    // `condition` guards `items` and `isClosed`.
    private let condition = NSCondition()
    private var items = Deque<Element>()
    private var isClosed = false
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
