import Foundation
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import NIOWebSocket
import ServiceLifecycle
import TrailAPI
import TrailCore
import TrailStore

extension Relay {
    /// What `GET /v1/subscribe/{namespace}` asked for, checked before the upgrade
    /// so that a bad cursor or token is an HTTP error, not a closed socket.
    struct SubscriptionRequest: Sendable {
        var namespace: Namespace
        var cursor: Cursor?
        var filter: ReadFilter
        var batch: Int
        var participant: String?
    }

    /// `checkCursor` reads one event to refuse a bad cursor before the upgrade;
    /// the handler after the upgrade skips that read.
    func subscriptionRequest(_ request: Request, checkCursor: Bool = true) throws(APIError) -> SubscriptionRequest {
        let namespace = try Self.namespace(request, after: "/v1/subscribe/")
        let token = try access.authorize(Self.secret(request), .read, namespace)
        // Counted once per subscription: before the upgrade, not again after it.
        if checkCursor { try admitRead(token) }
        let cursor = try Self.cursor(request)
        let batch = try Self.integer(request, "batch", default: configuration.pageEventCountMax, 1...configuration.pageEventCountMax)
        let filter = try Self.filter(request)
        var participant: String?
        if let id = request.uri.queryParameters["participant"] {
            guard !id.isEmpty, id.utf8.count <= 255, !id.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw APIError(.badRequest, "bad_parameter", field: "participant", "expected 1 to 255 bytes of printable text")
            }
            participant = String(id)
        }
        // A cursor that is trimmed, from another relay, or past the end fails here.
        if checkCursor {
            do { _ = try store.read(namespace, after: cursor, limit: 1, filter: filter) } catch let error as StoreError {
                throw APIError(error)
            } catch {
                throw APIError(.internalServerError, "internal", "\(error)")
            }
        }
        return SubscriptionRequest(namespace: namespace, cursor: cursor, filter: filter, batch: batch, participant: participant)
    }

    /// Streams the backlog, then each commit, as `events` messages; and the
    /// namespace's participants with their joins and leaves. Each subscriber
    /// reads the store at its own pace: one that reads slowly holds one batch
    /// in memory and delays nobody. Ends when the client closes, the relay
    /// shuts down (close code 1001), or reading fails (an `error` message first).
    func serve(_ subscription: SubscriptionRequest, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter) async {
        metrics.subscribers.increment()
        defer { metrics.subscribers.decrement() }
        let namespace = subscription.namespace
        let (watcher, notices) = presence.watch(namespace)
        defer { presence.unwatch(namespace, watcher) }
        if let id = subscription.participant { presence.join(namespace, id: id) }
        defer { if let id = subscription.participant { presence.leave(namespace, id: id) } }

        // Two child tasks; the participant notices run in this one. Either child
        // ending (client closed, store closed, write failed) or a shutdown ends
        // the notice stream, and with it the subscription. Each task costs
        // memory, and an idle relay may hold tens of thousands of subscribers.
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    await self.streamEvents(subscription, outbound)
                    self.presence.unwatch(namespace, watcher)
                }
                group.addTask {
                    // The client says nothing we act on; its close ends the subscription.
                    do { for try await _ in inbound.messages(maxSize: 1 << 16) {} } catch {}
                    self.presence.unwatch(namespace, watcher)
                }
                let list = StreamMessage(kind: "participants", participants: presence.participants(namespace))
                if (try? await Self.send(list, outbound)) != nil {
                    for await notice in notices {
                        guard (try? await Self.send(notice, outbound)) != nil else { break }
                    }
                }
                group.cancelAll()
            }
        } onGracefulShutdown: { [presence] in
            presence.unwatch(namespace, watcher)
        }
        if Task.isShuttingDownGracefully || !store.isOpen {
            try? await outbound.close(.goingAway, reason: "relay shutting down")
        }
    }

    /// Sends the backlog from the store, then the fan-out's chunks as they
    /// come; falls back to the store whenever the chunks do not continue
    /// exactly where this subscriber is (behind them, or a filter or batch
    /// size that needs its own pages).
    func streamEvents(_ subscription: SubscriptionRequest, _ outbound: WebSocketOutboundWriter) async {
        let (fanout, token) = fanouts.retain(subscription.namespace)
        defer { fanouts.release(fanout) }
        let filtered = subscription.filter != .all
        var cursor = subscription.cursor
        var position: UInt64?
        while !Task.isCancelled, store.isOpen {
            if let at = position {
                switch fanout.next(after: at) {
                case .chunk(let chunk) where chunk.events.count <= subscription.batch:
                    let message: ByteBuffer
                    var count = chunk.events.count
                    if filtered {
                        let kept = chunk.events.indices.filter { subscription.filter.admits(chunk.events[$0].event) }
                        count = kept.count
                        message = Fanout.eventsMessage(kept.map { chunk.eventJSON[$0] }, cursor: chunk.cursor, portableCursor: chunk.portableCursor)
                    } else {
                        message = chunk.message
                    }
                    position = chunk.last
                    cursor = .position(relay: store.relayID.fingerprint, position: chunk.last)
                    if count > 0 || !filtered {
                        guard (try? await outbound.write(.custom(.init(fin: true, opcode: .text, data: message)))) != nil else { return }
                        metrics.deliveredEvents.increment(by: count)
                        metrics.sharedMessages.increment()
                    }
                    continue
                case .head:
                    await fanout.wait(after: at, token: token)
                    continue
                case .chunk, .behind:
                    break  // a chunk larger than this subscriber's batch, or behind the chunks: read the store
                }
            }
            let page: Page
            do {
                page = try store.read(subscription.namespace, after: cursor, limit: subscription.batch, filter: subscription.filter)
            } catch {
                if !store.isOpen { return }
                let body = (error as? StoreError).map { APIError($0) } ?? APIError(.internalServerError, "internal", "\(error)")
                try? await Self.send(StreamMessage(kind: "error", error: body.body.error), outbound)
                return
            }
            cursor = page.cursor
            guard case .position(_, let through) = page.cursor else { return }
            position = through
            if !page.events.isEmpty {
                let message = Fanout.eventsMessage(page.events.map(Self.json), cursor: page.cursor.text, portableCursor: page.portableCursor.text)
                guard (try? await outbound.write(.custom(.init(fin: true, opcode: .text, data: message)))) != nil else { return }
                metrics.deliveredEvents.increment(by: page.events.count)
                metrics.ownMessages.increment()
            }
            if through >= page.lastPosition, case .head = fanout.next(after: through) {
                await fanout.wait(after: through, token: token)
            }
        }
    }

    static func send(_ message: StreamMessage, _ outbound: WebSocketOutboundWriter) async throws {
        let data = try jsonEncoder.encode(message)
        try await outbound.write(.text(String(decoding: data, as: UTF8.self)))
    }
}
