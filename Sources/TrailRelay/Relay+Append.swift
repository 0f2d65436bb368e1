import Foundation
import Hummingbird
import NIOCore
import TrailAPI
import TrailCore
import TrailReplication
import TrailStore

extension Relay {
    /// The media type of the binary bulk body (`BulkBody`).
    static let bulkMediaType = BulkBody.mediaType

    /// `POST /v1/events/{namespace}`: one event or a batch, JSON or binary.
    func append(_ request: Request) async throws -> Response {
        let namespace = try Self.namespace(request, after: "/v1/events/")
        let token = try access.authorize(Self.secret(request), .write, namespace)
        let wanted = try Self.wantedDurability(request)
        let replicas = try Self.integer(request, "replicas", default: 0, 0...64)
        let timeout = try Self.integer(request, "timeout_ms", default: 10_000, 1...120_000)
        var condition: UInt64?
        if let text = Self.query(request, "if_last_position") {
            guard let position = UInt64(text) else {
                throw APIError(.badRequest, "bad_parameter", field: "if_last_position", "expected the log's last position (an integer, 0 for an empty log), got \"\(text)\"")
            }
            condition = position
        }
        let body = try await collectBody(request)
        let policy = configuration.policy(for: namespace)
        let limits = EventLimits(payloadBytesMax: min(policy?.payloadBytesMax ?? Int.max, configuration.payloadBytesMax))
        let events: [Event]
        let single: Bool
        if request.headers.firstValue(.contentType)?.lowercased().hasPrefix(Self.bulkMediaType) == true {
            events = try Self.decodeBulk(body, namespace: namespace, limits: limits)
            single = false
        } else {
            let parsed = body.withUnsafeReadableBytes { bytes in Result { () throws(InputError) in try AppendBody.parse(bytes) } }
            switch try parsed.get() {
            case .one(let input):
                events = [try input.event(in: namespace, now: store.now, limits: limits, field: "body")]
                single = true
            case .batch(let inputs):
                var built = [Event]()
                built.reserveCapacity(inputs.count)
                for (index, input) in inputs.enumerated() {
                    built.append(try input.event(in: namespace, now: store.now, limits: limits, field: "events[\(index)]"))
                }
                events = built
                single = false
            }
        }
        guard !events.isEmpty else { throw APIError(.badRequest, "bad_field", field: "events", "the batch is empty") }
        if condition != nil, !single {
            throw APIError(.badRequest, "bad_parameter", field: "if_last_position", "a conditional append takes one event, not a batch")
        }
        if let policy { try Self.check(events, against: policy, single: single) }
        try admit(token, count: events.count)
        try await applyRetention(policy, namespace)

        let (results, durable) = try await commit(events.count, wanted: wanted) { [store] in
            if let condition { return [try await store.append(events[0], ifLastPosition: condition)] }
            return single ? [try await store.append(events[0])] : try await store.append(contentsOf: events)
        }
        var reached = durable
        // A relay with no peer configured answers at once: nobody could acknowledge.
        let federated = configuration.peerListen != nil || !configuration.peers.isEmpty
        if replicas > 0, !federated {
            reached = "replicated:0"
        } else if replicas > 0 {
            let held = await waitForReplicas(replicas, namespace: namespace, results: results, timeout: .milliseconds(timeout))
            reached = "replicated:\(held)"
        }
        let outcomes = results.map { Self.outcome($0, durability: reached) }
        guard single else {
            var writer = JSONWriter(capacity: 200 * outcomes.count + 16)
            writer.write(AppendBatchResponse(results: outcomes))
            return jsonResponse(written: writer)
        }
        let status: HTTPResponse.Status = switch results[0].outcome {
        case .appended: .created
        case .duplicate: .ok
        case .pending: .accepted
        case .conflict, .headMoved: .conflict
        case .trimmed: .gone
        }
        var writer = JSONWriter()
        writer.write(outcomes[0])
        return jsonResponse(written: writer, status: status)
    }

    static func wantedDurability(_ request: Request) throws(APIError) -> Durability? {
        guard let text = Self.query(request, "durability") else { return nil }
        guard let durability = Durability(rawValue: String(text)) else {
            throw APIError(.badRequest, "bad_parameter", field: "durability", "expected buffered or synced, got \"\(text)\" (use replicas=N to wait for peers)")
        }
        return durability
    }

    static func outcome(_ result: AppendResult, durability: String) -> AppendOutcome {
        switch result.outcome {
        case .appended(let placement), .duplicate(let placement):
            let name = if case .appended = result.outcome { "appended" } else { "duplicate" }
            return AppendOutcome(
                outcome: name, id: result.id.hex, position: placement.position, origin: placement.origin.hex,
                originSeq: placement.originSeq, durability: durability)
        case .pending: return AppendOutcome(outcome: "pending", id: result.id.hex, durability: durability)
        case .conflict(let existing): return AppendOutcome(outcome: "conflict", id: result.id.hex, existing: existing.hex)
        case .trimmed: return AppendOutcome(outcome: "trimmed", id: result.id.hex)
        case .headMoved(let last): return AppendOutcome(outcome: "head_moved", id: result.id.hex, lastPosition: last)
        }
    }

    /// `POST /v1/events`: a binary bulk body whose events may be in many
    /// namespaces (the writer of many conversations at once). Each namespace
    /// must be writable with the token and obey its policy; all events are
    /// decoded and checked before any is appended.
    func appendAcrossNamespaces(_ request: Request) async throws -> Response {
        guard request.headers.firstValue(.contentType)?.lowercased().hasPrefix(Self.bulkMediaType) == true else {
            throw APIError(.unsupportedMediaType, "bad_body", field: "Content-Type",
                           "POST /v1/events takes the binary bulk body (\(Self.bulkMediaType)); post JSON to /v1/events/{namespace}")
        }
        let secret = Self.secret(request)
        let wanted = try Self.wantedDurability(request)
        let body = try await collectBody(request)
        let events = try Self.decodeBulk(body, namespace: nil, limits: EventLimits(payloadBytesMax: configuration.payloadBytesMax))
        guard !events.isEmpty else { throw APIError(.badRequest, "bad_field", field: "body", "the batch is empty") }
        var namespaces = [Namespace: [Event]]()
        for event in events { namespaces[event.namespace, default: []].append(event) }
        var token: AccessToken?
        for (namespace, inNamespace) in namespaces {
            token = try access.authorize(secret, .write, namespace)
            let policy = configuration.policy(for: namespace)
            if let policy {
                if let limit = policy.payloadBytesMax, let large = inNamespace.first(where: { $0.payload.count > limit }) {
                    throw APIError(.badRequest, "too_large", field: "body",
                                   "event \(large.id.short) in \(namespace) has a payload of \(large.payload.count) bytes; namespaces under \"\(policy.prefix)\" take at most \(limit)")
                }
                try Self.check(inNamespace, against: policy, single: false)
            }
        }
        try admit(token, count: events.count)
        for namespace in namespaces.keys { try await applyRetention(configuration.policy(for: namespace), namespace) }
        let (results, reached) = try await commit(events.count, wanted: wanted) { [store] in try await store.append(contentsOf: events) }
        var writer = JSONWriter(capacity: 200 * results.count + 16)
        writer.write(AppendBatchResponse(results: results.map { Self.outcome($0, durability: reached) }))
        return jsonResponse(written: writer)
    }

    /// The bulk body (`BulkBody`), each event in `namespace`, or in any namespace when nil.
    static func decodeBulk(_ body: ByteBuffer, namespace: Namespace?, limits: EventLimits) throws(APIError) -> [Event] {
        let decoded = body.withUnsafeReadableBytes { bytes in Result { () throws(BulkBody.Invalid) in try BulkBody.decode(bytes, limits: limits) } }
        let events: [Event]
        do { events = try decoded.get() } catch {
            throw APIError(.badRequest, error.isFraming ? "bad_body" : "bad_event",
                           field: "body[\(error.index)]", "at offset \(error.offset): \(error.reason)")
        }
        if let namespace, let (index, event) = events.enumerated().first(where: { $0.element.namespace != namespace }) {
            throw APIError(.badRequest, "bad_event", field: "body[\(index)].namespace", "the event is in \"\(event.namespace)\", the request in \"\(namespace)\"")
        }
        return events
    }

    /// A namespace policy's rules on who may write what.
    static func check(_ events: [Event], against policy: NamespacePolicy, single: Bool) throws(APIError) {
        for (index, event) in events.enumerated() {
            let field = single ? "body" : "events[\(index)]"
            if policy.requireSignatures || policy.allowedAuthors != nil, event.signature == nil {
                throw APIError(
                    .badRequest, "unsigned", field: "\(field).signature",
                    "namespaces under \"\(policy.prefix)\" take only signed events")
            }
            if let allowed = policy.allowedAuthors, !(event.author.map(allowed.contains) ?? false) {
                throw APIError(
                    .forbidden, "author_not_allowed", field: "\(field).author",
                    "author \(event.author?.hex ?? "(none)") may not write under \"\(policy.prefix)\"")
            }
        }
    }

    /// Sets the policy's retention on a namespace the first time this process writes it.
    func applyRetention(_ policy: NamespacePolicy?, _ namespace: Namespace) async throws {
        guard let retention = policy?.retention else { return }
        let first = retentionApplied.withLock { $0.insert(namespace).inserted }
        guard first else { return }
        do { try await store.setRetention(retention, for: namespace) } catch {
            retentionApplied.withLock { _ = $0.remove(namespace) }
            throw error
        }
    }

    /// A small JSON body of the authentication routes, refused with 400 naming what is wrong.
    func decodeAuthBody<Body: Decodable>(_ request: Request) async throws -> Body {
        let bytes = try await collectBody(request)
        do { return try JSONDecoder().decode(Body.self, from: Data(bytes.readableBytesView)) } catch DecodingError.keyNotFound(let key, _) {
            throw APIError(.badRequest, "bad_field", field: key.stringValue, "required")
        } catch DecodingError.typeMismatch(_, let context) {
            throw APIError(.badRequest, "bad_field", field: context.codingPath.map(\.stringValue).joined(separator: "."), "expected a string")
        } catch {
            throw APIError(.badRequest, "bad_json", "the body is not a JSON object of the expected fields")
        }
    }

    /// The request's body, refused with 413 past `request_bytes_max` (by its
    /// Content-Length when it has one, before reading it).
    func collectBody(_ request: Request) async throws -> ByteBuffer {
        if let length = request.headers.firstValue(.contentLength).flatMap(Int.init), length > configuration.requestBytesMax {
            throw APIError(.contentTooLarge, "too_large", field: "body", "the body is \(length) bytes; this relay takes at most \(configuration.requestBytesMax)")
        }
        var request = request
        do { return try await request.collectBody(upTo: configuration.requestBytesMax) } catch {
            throw APIError(.contentTooLarge, "too_large", field: "body", "the body exceeds \(configuration.requestBytesMax) bytes")
        }
    }

    /// Runs one request's append against the store and counts it; then syncs
    /// the WAL when the request asked for more durability than the relay's
    /// default. Returns the results and the durability reached.
    func commit(_ count: Int, wanted: Durability?, _ append: () async throws -> [AppendResult]) async throws -> ([AppendResult], String) {
        metrics.appendRequests.increment()
        let results: [AppendResult]
        do { results = try await append() } catch let error as StoreError {
            metrics.refusedEvents.increment(by: count)
            throw APIError(error)
        }
        metrics.count(results)
        guard wanted == .synced, store.configuration.durability == .buffered else { return (results, store.configuration.durability.rawValue) }
        try await store.sync()
        return (results, Durability.synced.rawValue)
    }

    /// Takes `count` events from the client's append budget (its token's
    /// `append_rate`, else the relay's), or refuses the request with 429.
    func admit(_ token: AccessToken?, count: Int) throws(APIError) {
        guard let rate = token?.appendRate ?? configuration.appendRate else { return }
        do { try rateLimiter.admit(token.map { "token \"\($0.name)\"" } ?? "this relay's clients", count: count, rate: rate) } catch {
            metrics.rateLimited.increment()
            throw error
        }
    }

    /// Takes one request from the client's read budget (its token's
    /// `read_rate`, else the relay's), or refuses it with 429.
    func admitRead(_ token: AccessToken?) throws(APIError) {
        guard let rate = token?.readRate ?? configuration.readRate else { return }
        do { try rateLimiter.admit(token.map { "token \"\($0.name)\"" } ?? "this relay's clients", count: 1, rate: rate, reading: true) } catch {
            metrics.readRateLimited.increment()
            throw error
        }
    }

    /// Waits until `count` peers acknowledge holding every placed event, or
    /// the timeout passes; returns how many peers hold them all.
    func waitForReplicas(_ count: Int, namespace: Namespace, results: [AppendResult], timeout: Duration) async -> Int {
        var needed = VersionVector()
        for result in results {
            guard let placement = result.placement else { continue }
            if needed[placement.origin] < placement.originSeq { needed.advance(origin: placement.origin, to: placement.originSeq) }
        }
        func holding() -> Int {
            replicator.links.filter { link in
                let acknowledged = link.acknowledged[namespace] ?? VersionVector()
                return needed.entries.allSatisfy { acknowledged[$0.key] >= $0.value }
            }.count
        }
        let deadline = ContinuousClock.now + timeout
        var held = holding()
        // Acknowledgements arrive on the links' own tasks; a short poll bounded by the deadline.
        while held < count, ContinuousClock.now < deadline, !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(2))
            held = holding()
        }
        return held
    }
}
