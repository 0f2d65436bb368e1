import Foundation
import NIOCore
import TrailAPI
import TrailCore
import TrailStore

/// The head of one namespace's log, read from the store once and shared by
/// every subscriber there: one follower task turns each commit into a
/// chunk (the events, each encoded as JSON once, and the message that
/// carries them), and subscribers at the head send that message as it is.
/// A subscriber behind the chunks kept (or with a start mid-chunk) reads the
/// store itself until it reaches them, so a slow one costs nobody else.
final class Fanout: Sendable {
    /// A class: every subscriber at the head takes each chunk, from both
    /// cores at once, and a struct of six references would be six shared
    /// reference counts touched per subscriber instead of one.
    final class Chunk: Sendable {
        let first: UInt64
        let last: UInt64
        let events: [StoredEvent]
        /// Each event's JSON object (`EventOutput`), in order.
        let eventJSON: [[UInt8]]
        let cursor: String
        let portableCursor: String
        /// The whole `events` message for a subscriber without a filter.
        let message: ByteBuffer

        init(first: UInt64, last: UInt64, events: [StoredEvent], eventJSON: [[UInt8]], cursor: String, portableCursor: String, message: ByteBuffer) {
            self.first = first
            self.last = last
            self.events = events
            self.eventJSON = eventJSON
            self.cursor = cursor
            self.portableCursor = portableCursor
            self.message = message
        }
    }

    struct State {
        var chunks: [Chunk] = []
        /// The log position the follower has read through.
        var head: UInt64 = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter = 0
        var subscribers = 0
        var follower: Task<Void, Never>?
        var stopped = false
    }

    /// Chunks kept: enough that a subscriber a moment behind still finds its next chunk.
    static let chunkCountMax = 256

    let namespace: Namespace
    let store: Store
    let pageSize: Int
    let state = Locked(State())

    init(namespace: Namespace, store: Store, pageSize: Int) {
        self.namespace = namespace
        self.store = store
        self.pageSize = pageSize
    }

    /// Where a subscriber at `position` stands, in one look under the lock.
    enum Next {
        /// The chunk that starts right after the position.
        case chunk(Chunk)
        /// Nothing after the position yet: wait.
        case head
        /// Behind the chunks kept, or mid-chunk: read the store.
        case behind
    }

    func next(after position: UInt64) -> Next {
        state.withLock { state in
            if state.head <= position { return .head }
            guard let firstKept = state.chunks.first?.first, position + 1 >= firstKept else { return .behind }
            // Chunks are contiguous and ordered: binary search by first position.
            var low = 0, high = state.chunks.count
            while low < high {
                let middle = (low + high) / 2
                if state.chunks[middle].first <= position { low = middle + 1 } else { high = middle }
            }
            guard low < state.chunks.count, state.chunks[low].first == position + 1 else { return .behind }
            return .chunk(state.chunks[low])
        }
    }

    /// Returns once the follower read past `position`, the fan-out stopped,
    /// or the task is cancelled. `token` is the subscriber's own (from
    /// `Fanouts.retain`): a subscriber waits at most once at a time.
    func wait(after position: UInt64, token: Int) async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.head > position || state.stopped || Task.isCancelled { return true }
                    state.waiters[token] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: token) }?.resume()
        }
    }

    /// Starts the follower from the store's current head with the first
    /// subscriber. Returns the subscriber's token for `wait`.
    func retain() -> Int {
        state.withLock { state in
            state.subscribers += 1
            defer { state.nextWaiter += 1 }
            if state.follower == nil {
                state.head = store.tips(of: [namespace])[namespace]?.lastPosition ?? 0
                state.follower = Task { [self] in await follow() }
            }
            return state.nextWaiter
        }
    }

    /// Stops the follower with the last subscriber. Returns true when none remain.
    func release() -> Bool {
        let (task, waiters, empty) = state.withLock { state -> (Task<Void, Never>?, [CheckedContinuation<Void, Never>], Bool) in
            state.subscribers -= 1
            guard state.subscribers == 0 else { return (nil, [], false) }
            state.stopped = true
            defer {
                state.follower = nil
                state.waiters = [:]
                state.chunks = []
            }
            return (state.follower, Array(state.waiters.values), true)
        }
        task?.cancel()
        waiters.forEach { $0.resume() }
        return empty
    }

    private func follow() async {
        while !Task.isCancelled {
            let head = state.withLock { $0.head }
            let page: Page
            do {
                page = try store.read(namespace, after: .position(relay: store.relayID.fingerprint, position: head), limit: pageSize)
            } catch StoreError.trimmed(_, let through, _) {
                // Retention overtook the follower: go on from the trim point. Subscribers
                // still before it read the store themselves and are told `trimmed`.
                state.withLock { state in
                    state.head = max(state.head, through)
                    state.chunks = []
                }
                continue
            } catch {
                if !store.isOpen { break }
                try? await Task.sleep(for: .milliseconds(50))
                continue
            }
            guard case .position(_, let last) = page.cursor else { break }
            if last > head {
                let chunk = Self.makeChunk(page, first: head + 1, last: last)
                let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                    state.chunks.append(chunk)
                    if state.chunks.count > Self.chunkCountMax { state.chunks.removeFirst(state.chunks.count - Self.chunkCountMax) }
                    state.head = last
                    defer { state.waiters = [:] }
                    return Array(state.waiters.values)
                }
                waiters.forEach { $0.resume() }
            }
            if last >= page.lastPosition {
                await store.waitForCommit(in: namespace, after: last)
                if !store.isOpen { break }
                // With many subscribers, each chunk costs a write per subscriber: let
                // commits gather a moment (10 µs per subscriber, at most 10 ms) so one
                // chunk carries several of them. A lone subscriber waits no time.
                let linger = min(10_000, 10 * state.withLock { $0.subscribers })
                if linger >= 200 { try? await Task.sleep(for: .microseconds(linger)) }
            }
        }
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.stopped = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        waiters.forEach { $0.resume() }
    }

    static func makeChunk(_ page: Page, first: UInt64, last: UInt64) -> Chunk {
        let json = page.events.map(Relay.json)
        let cursor = page.cursor.text
        let portable = page.portableCursor.text
        return Chunk(
            first: first, last: last, events: page.events, eventJSON: json, cursor: cursor, portableCursor: portable,
            message: eventsMessage(json, cursor: cursor, portableCursor: portable))
    }

    /// `{"cursor":…,"events":[…],"kind":"events","portable_cursor":…}`, assembled
    /// from events already encoded (keys sorted, as every answer's are).
    /// Cursors are base64url: nothing in them needs escaping.
    static func eventsMessage(_ events: [[UInt8]], cursor: String, portableCursor: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(events.reduce(96 + cursor.utf8.count + portableCursor.utf8.count) { $0 + $1.count + 1 })
        buffer.writeString(#"{"cursor":""#)
        buffer.writeString(cursor)
        buffer.writeString(#"","events":["#)
        for (index, event) in events.enumerated() {
            if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
            buffer.writeBytes(event)
        }
        buffer.writeString(#"],"kind":"events","portable_cursor":""#)
        buffer.writeString(portableCursor)
        buffer.writeString(#""}"#)
        return buffer
    }
}

/// The fan-outs of the namespaces that have subscribers now.
final class Fanouts: Sendable {
    let store: Store
    let pageSize: Int
    let active = Locked([Namespace: Fanout]())

    init(store: Store, pageSize: Int) {
        self.store = store
        self.pageSize = pageSize
    }

    /// The namespace's fan-out, and the subscriber's token for its `wait`.
    func retain(_ namespace: Namespace) -> (Fanout, token: Int) {
        active.withLock { active in
            let fanout = active[namespace] ?? Fanout(namespace: namespace, store: store, pageSize: pageSize)
            active[namespace] = fanout
            return (fanout, fanout.retain())
        }
    }

    func release(_ fanout: Fanout) {
        active.withLock { active in
            if fanout.release(), active[fanout.namespace] === fanout { active.removeValue(forKey: fanout.namespace) }
        }
    }
}
