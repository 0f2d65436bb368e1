import AsyncAlgorithms
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
        let pump = Pump(subscription: self)
        return Iterator(pump: pump, inner: pump.channel.makeAsyncIterator())
    }

    public struct Iterator: AsyncIteratorProtocol {
        let pump: Pump
        var inner: AsyncThrowingChannel<SubscriptionUpdate, any Error>.AsyncIterator

        public mutating func next() async throws -> SubscriptionUpdate? {
            try await inner.next()
        }

        /// The portable cursor after every event returned so far: resumes on any relay.
        public var cursor: String? { pump.shared.cursor.withLock { $0 } }
    }

    /// Moves messages from the relay's socket into the channel, one at a time:
    /// a consumer that reads slowly slows the socket, not the memory.
    /// Stops when the iterator is dropped.
    final class Pump: Sendable {
        /// What the pumping task and the iterator share; the task does not own the pump.
        final class Shared: Sendable {
            let channel = AsyncThrowingChannel<SubscriptionUpdate, any Error>()
            let cursor: Locked<String?>
            init(cursor: String?) { self.cursor = Locked(cursor) }
        }

        let shared: Shared
        let task: Task<Void, Never>
        var channel: AsyncThrowingChannel<SubscriptionUpdate, any Error> { shared.channel }

        init(subscription: Subscription) {
            let shared = Shared(cursor: subscription.cursor)
            self.shared = shared
            task = Task { await Self.run(subscription, shared) }
        }

        deinit { task.cancel() }

        static func run(_ subscription: Subscription, _ shared: Shared) async {
            let channel = shared.channel
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
                        await channel.send(.connected(relay: relay))
                        for try await message in inbound.messages(maxSize: 64 << 20) {
                            guard case .text(let text) = message else { continue }
                            let update = try JSONDecoder().decode(StreamMessage.self, from: Data(text.utf8))
                            switch update.kind {
                            case "events":
                                for output in update.events ?? [] {
                                    await channel.send(.event(try ReceivedEvent(output, relay: relay)))
                                }
                                if let next = update.portableCursor { cursor.cursor.withLock { $0 = next } }
                                delivered.withLock { $0 = true }
                            case "participants": await channel.send(.participants(update.participants ?? []))
                            case "joined": if let who = update.participant { await channel.send(.joined(who)) }
                            case "left": if let who = update.participant { await channel.send(.left(who)) }
                            case "error":
                                if let error = update.error {
                                    refusal.withLock { $0 = ErrorBody(status: error.status, code: error.code, field: error.field, message: error.message) }
                                }
                                return
                            default: continue
                            }
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
                if let body = refusal.withLock({ $0 }), (400..<500).contains(body.error.status) {
                    channel.fail(TrailClientError.refused(body))
                    return
                }
                if delivered.withLock({ $0 }) { delay = delayMin }
                index += 1
                if index % client.relays.count == 0 {
                    try? await Task.sleep(for: delay)
                    delay = Swift.min(delay * 2, .seconds(2))
                }
            }
            channel.finish()
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
