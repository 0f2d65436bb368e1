import Foundation
import HTTPTypes
import HummingbirdWSClient
import Logging
import NIOCore
public import TrailAPI
public import TrailCore

/// What a subscription delivers, in the order the relay sent it.
public enum SubscriptionUpdate: Sendable {
    case event(ReceivedEvent)
    /// The namespace's participants when a connection (re)starts.
    case participants([ParticipantOutput])
    case joined(ParticipantOutput)
    case left(ParticipantOutput)
    /// The subscription now reads from this relay (the first connection, then each failover).
    case connected(relay: String)
}

extension TrailClient {
    /// The namespace's events after `cursor` (from the start when nil): the
    /// backlog, then each new event, for as long as the sequence is iterated.
    /// When a relay fails, the subscription goes on from its portable cursor
    /// on the next relay of the list: no event is delivered twice, none is
    /// skipped. A relay that refuses the subscription (a bad or trimmed
    /// cursor, a token that does not reach the namespace) ends it with
    /// `TrailClientError.refused`. `participant` announces this subscriber
    /// in the namespace's participant list.
    public func subscribe(
        _ namespace: Namespace, after cursor: String? = nil, participant: String? = nil, types: [String] = [],
        batch: Int? = nil
    ) -> Subscription {
        Subscription(client: self, namespace: namespace, cursor: cursor, participant: participant, types: types, batch: batch)
    }
}

public struct Subscription: AsyncSequence, Sendable {
    public typealias Element = SubscriptionUpdate

    let client: TrailClient
    let namespace: Namespace
    let cursor: String?
    let participant: String?
    let types: [String]
    let batch: Int?

    public func makeAsyncIterator() -> Iterator {
        let gate = Gate()
        let made = NIOThrowingAsyncSequenceProducer.makeSequence(
            elementType: Pump.Item.self, backPressureStrategy: Pump.watermarks, finishOnDeinit: true, delegate: gate)
        let pump = Pump(subscription: self, source: made.source, gate: gate)
        return Iterator(pump: pump, inner: made.sequence.makeAsyncIterator(), cursor: cursor)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let pump: Pump
        var inner: NIOThrowingAsyncSequenceProducer<Pump.Item, any Error, Pump.Watermarks, Gate>.AsyncIterator
        /// The portable cursor after every event returned so far: resumes on any relay.
        public private(set) var cursor: String?

        /// The next update; nil once the subscription ends or the task is cancelled.
        public mutating func next() async throws -> SubscriptionUpdate? {
            let item: Pump.Item?
            do {
                item = try await inner.next()
            } catch is CancellationError {
                return nil
            }
            if let after = item?.cursor { cursor = after }
            return item?.update
        }
    }

    /// Where the pump waits while the consumer has enough updates buffered:
    /// the sequence's delegate, told when the buffer drains below the low
    /// watermark or the consumer is gone.
    final class Gate: NIOAsyncSequenceProducerDelegate, Sendable {
        private struct State {
            var waiter: CheckedContinuation<Void, Never>?
            var more = false
            var terminated = false
        }
        private let state = Locked(State())

        func produceMore() {
            let waiter = state.withLock { state in
                defer { state.waiter = nil }
                if state.waiter == nil { state.more = true }
                return state.waiter
            }
            waiter?.resume()
        }

        func didTerminate() {
            let waiter = state.withLock { state in
                defer { state.waiter = nil }
                state.terminated = true
                return state.waiter
            }
            waiter?.resume()
        }

        /// Returns once the consumer wants more, or is gone.
        func demand() async {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state in
                    if state.more || state.terminated {
                        state.more = false
                        return true
                    }
                    state.waiter = continuation
                    return false
                }
                if ready { continuation.resume() }
            }
        }

        var terminated: Bool { state.withLock { $0.terminated } }
    }

    /// Moves messages from the relay's socket into a bounded buffer that the
    /// iterator drains: while the consumer keeps up, neither side waits for
    /// the other per update; a consumer that reads slowly fills the buffer,
    /// then slows the socket, not the memory. Stops when the iterator is dropped.
    final class Pump: Sendable {
        typealias Watermarks = NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark
        typealias Source = NIOThrowingAsyncSequenceProducer<Item, any Error, Watermarks, Gate>.Source

        /// An update, and for the last event of a message the portable cursor after it.
        struct Item: Sendable {
            let update: SubscriptionUpdate
            var cursor: String?
        }
        static let watermarks = Watermarks(lowWatermark: 64, highWatermark: 256)

        /// What the pumping task and the iterator share; the task does not own the pump.
        final class Shared: Sendable {
            let cursor: Locked<String?>
            let source: Source
            let gate: Gate
            init(cursor: String?, source: Source, gate: Gate) {
                self.cursor = Locked(cursor)
                self.source = source
                self.gate = gate
            }

            /// Hands updates to the consumer; waits while its buffer is full.
            /// False once the consumer is gone.
            func deliver(_ updates: [Item]) async -> Bool {
                switch source.yield(contentsOf: updates) {
                case .produceMore: return true
                case .stopProducing:
                    await gate.demand()
                    return !gate.terminated
                case .dropped: return false
                }
            }

            func finish(_ error: (any Error)? = nil) {
                if let error { source.finish(error) } else { source.finish() }
            }
        }

        let shared: Shared
        let task: Task<Void, Never>

        init(subscription: Subscription, source: Source, gate: Gate) {
            let shared = Shared(cursor: subscription.cursor, source: source, gate: gate)
            self.shared = shared
            task = Task { await Self.run(subscription, shared) }
        }

        deinit { task.cancel() }

        static func run(_ subscription: Subscription, _ shared: Shared) async {
            let cursor = shared
            let client = subscription.client
            let delayMin = Duration.milliseconds(50)
            var delay = delayMin
            var index = 0
            while !Task.isCancelled {
                let relay = client.relays[index % client.relays.count]
                let delivered = Locked(false)
                let refusal = Locked<ErrorBody?>(nil)
                do {
                    try await WebSocketClient.connect(
                        url: url(subscription, relay: relay, cursor: cursor.cursor.withLock { $0 }),
                        configuration: .init(maxFrameSize: 64 << 20, additionalHeaders: try await headers(client, relay: relay)),
                        tlsConfiguration: client.tls,
                        logger: client.logger
                    ) { inbound, _, _ in
                        guard await shared.deliver([Item(update: .connected(relay: relay))]) else { return }
                        for try await message in inbound.messages(maxSize: 64 << 20) {
                            guard case .text(var text) = message else { continue }
                            let update = try text.withUTF8 { try StreamMessage.parse(UnsafeRawBufferPointer($0)) }
                            var updates = [Item]()
                            switch update.kind {
                            case "events":
                                updates.reserveCapacity(update.events?.count ?? 0)
                                for output in update.events ?? [] { updates.append(Item(update: .event(try ReceivedEvent(output, relay: relay)))) }
                                if !updates.isEmpty { updates[updates.count - 1].cursor = update.portableCursor }
                            case "participants": updates.append(Item(update: .participants(update.participants ?? [])))
                            case "joined": if let who = update.participant { updates.append(Item(update: .joined(who))) }
                            case "left": if let who = update.participant { updates.append(Item(update: .left(who))) }
                            case "error":
                                if let error = update.error {
                                    refusal.withLock { $0 = ErrorBody(status: error.status, code: error.code, field: error.field, message: error.message) }
                                }
                                return
                            default: continue
                            }
                            // The failover cursor moves before the consumer sees the events (a new
                            // connection resumes after them: the buffer still holds them); the
                            // iterator's own cursor moves as it returns them.
                            if update.kind == "events" {
                                if let next = update.portableCursor { cursor.cursor.withLock { $0 = next } }
                                delivered.withLock { $0 = true }
                            }
                            guard await shared.deliver(updates) else { return }
                        }
                    }
                } catch {
                    if Task.isCancelled { break }
                    client.logger.debug("subscription connection ended", metadata: ["relay": "\(relay)", "error": "\(error)"])
                    // Ask over HTTP why the upgrade failed: a 4xx is final, anything else fails over.
                    if let body = await refusalReason(subscription, relay: relay, cursor: cursor.cursor.withLock { $0 }) {
                        refusal.withLock { $0 = body }
                    }
                }
                if shared.gate.terminated { return }
                if let body = refusal.withLock({ $0 }), (400..<500).contains(body.error.status) {
                    shared.finish(TrailClientError.refused(body))
                    return
                }
                if delivered.withLock({ $0 }) { delay = delayMin }
                index += 1
                if index % client.relays.count == 0 {
                    try? await Task.sleep(for: delay)
                    delay = Swift.min(delay * 2, .seconds(2))
                }
            }
            shared.finish()
        }

        static func headers(_ client: TrailClient, relay: String) async throws -> HTTPFields {
            var fields = HTTPFields()
            if let bearer = try await client.bearer(for: relay) { fields[.authorization] = "Bearer \(bearer)" }
            return fields
        }

        static func url(_ subscription: Subscription, relay: String, cursor: String?) -> String {
            var query = [(String, String)]()
            if let cursor { query.append(("after", cursor)) }
            if let participant = subscription.participant { query.append(("participant", participant)) }
            for type in subscription.types { query.append(("type", type)) }
            if let batch = subscription.batch { query.append(("batch", String(batch))) }
            let base = relay.hasPrefix("https://") ? "wss://" + relay.dropFirst(8) : "ws://" + relay.dropFirst(relay.hasPrefix("http://") ? 7 : 0)
            return base + "/v1/subscribe/" + TrailClient.escape(subscription.namespace) + TrailClient.encode(query)
        }

        static func refusalReason(_ subscription: Subscription, relay: String, cursor: String?) async -> ErrorBody? {
            var query: [(String, String)] = [("limit", "1")]
            if let cursor { query.append(("after", cursor)) }
            do {
                let answer = try await subscription.client.request(
                    .GET, "/v1/events/\(TrailClient.escape(subscription.namespace))", query: query, only: relay)
                _ = try TrailClient.decode(PageOutput.self, answer)
                return nil
            } catch TrailClientError.refused(let body) {
                return body
            } catch {
                return nil
            }
        }
    }
}
