import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import NIOCore
import TrailAPI
import TrailCore
import TrailReplication
import TrailStore

typealias Context = BasicWebSocketRequestContext

// The client API of Docs/API.md. A namespace is the rest of the path after
// the route's prefix (`/v1/events/auction/task-7`), percent-decoded.

extension Relay {
    var errorMiddleware: ErrorMiddleware { ErrorMiddleware(metrics: metrics) }

    func makeRouter() -> Router<Context> {
        let router = Router(context: Context.self)
        router.middlewares.add(errorMiddleware)
        // GET and POST /v1/events/{namespace} are answered by RelayResponder, ahead of this router.
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/readyz") { [self] _, _ in
            guard isReady else { throw APIError(.serviceUnavailable, "not_ready", "the relay is starting or shutting down") }
            return "ready\n"
        }
        router.get("/metrics") { [self] _, _ in
            let bytes = metrics.scrape(store: store, replicator: replicator, presence: presence)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        router.get("/v1/status") { [self] request, _ in
            _ = try access.authorize(Self.secret(request), .read, nil)
            return jsonResponse(status())
        }
        router.get("/v1/namespaces") { [self] request, _ in try listNamespaces(request) }
        router.get("/v1/namespaces/**") { [self] request, _ in try namespaceStatus(request) }
        router.post("/v1/events") { [self] request, _ in try await appendAcrossNamespaces(request) }
        router.post("/v1/auth/challenge") { [self] request, _ in
            let body: ChallengeRequest = try await decodeAuthBody(request)
            return jsonResponse(try access.sessions.challenge(for: body.key))
        }
        router.post("/v1/auth/session") { [self] request, _ in
            let body: SessionRequest = try await decodeAuthBody(request)
            return jsonResponse(try access.sessions.redeem(body), status: .created)
        }
        router.get("/v1/admin/blocked-peers") { [self] request, _ in
            try authorizeAdmin(request)
            return jsonResponse(blockedPeers())
        }
        router.put("/v1/admin/blocked-peers") { [self] request, _ in jsonResponse(try await setBlockedPeers(request)) }
        router.get("/v1/participants/**") { [self] request, _ in
            let namespace = try Self.namespace(request, after: "/v1/participants/")
            _ = try access.authorize(Self.secret(request), .read, namespace)
            return jsonResponse(ParticipantsOutput(namespace: namespace.name, participants: presence.participants(namespace)))
        }
        router.ws("/v1/subscribe/**") { [self] request, _ in
            guard request.headers.firstValue(.upgrade)?.lowercased() == "websocket" else {
                throw APIError(.upgradeRequired, "upgrade_required", field: "Upgrade", "subscriptions are WebSocket connections (Upgrade: websocket)")
            }
            _ = try subscriptionRequest(request)
            return .upgrade([:])
        } onUpgrade: { [self] inbound, outbound, context in
            let subscription = try subscriptionRequest(context.request, checkCursor: false)
            await serve(subscription, inbound: inbound, outbound: outbound)
        }
        return router
    }

    // MARK: Request parts

    static func secret(_ request: Request) -> String? {
        AccessControl.presented(request.headers, query: query(request, "access_token").map(String.init))
    }

    /// A query parameter; most requests carry no query, and answer at once.
    static func query(_ request: Request, _ name: String) -> Substring? {
        guard request.uri.query != nil else { return nil }
        return request.uri.queryParameters[name[...]]
    }

    static func namespace(_ request: Request, after prefix: String) throws(APIError) -> Namespace {
        let path = request.uri.path
        guard path.hasPrefix(prefix) else {
            throw APIError(.badRequest, "bad_namespace", field: "namespace", "the path must be \(prefix)NAMESPACE")
        }
        let raw = String(path.dropFirst(prefix.count))
        // Percent-decoding goes through Foundation; most paths have nothing to decode.
        guard let name = raw.utf8.contains(UInt8(ascii: "%")) ? raw.removingPercentEncoding : raw else {
            throw APIError(.badRequest, "bad_namespace", field: "namespace", "\"\(raw)\" has a malformed percent-escape")
        }
        do { return try Namespace(name) } catch {
            throw APIError(.badRequest, "bad_namespace", field: "namespace", error.description)
        }
    }

    static func cursor(_ request: Request, parameter: String = "after") throws(APIError) -> Cursor? {
        guard let text = query(request, parameter), !text.isEmpty else { return nil }
        do { return try Cursor(text: String(text)) } catch {
            throw APIError(.badRequest, "bad_cursor", field: parameter, "not a cursor this relay issued or a portable one: \(error)")
        }
    }

    static func integer(_ request: Request, _ name: String, default value: Int, _ range: ClosedRange<Int>) throws(APIError) -> Int {
        guard let text = query(request, name) else { return value }
        guard let number = Int(text), range.contains(number) else {
            throw APIError(.badRequest, "bad_parameter", field: name, "expected an integer from \(range.lowerBound) to \(range.upperBound), got \"\(text)\"")
        }
        return number
    }

    /// `type` and `author` parameters, each repeatable or comma-separated.
    static func filter(_ request: Request) throws(APIError) -> ReadFilter {
        let query = request.uri.queryParameters
        let types = query[values: "type"].flatMap { $0.split(separator: ",").map(String.init) }
        var authors = Set<PublicKey>()
        // Every comma-separated entry must be a key: an empty one is a mistake, not "any author".
        for text in query[values: "author"].flatMap({ $0.split(separator: ",", omittingEmptySubsequences: false) }) {
            guard let key = try? PublicKey(hex: String(text)) else {
                throw APIError(.badRequest, "bad_parameter", field: "author", "\"\(text)\" is not a public key (64 hex digits)")
            }
            authors.insert(key)
        }
        return ReadFilter(types: types.isEmpty ? nil : Set(types), authors: authors.isEmpty ? nil : authors)
    }

    // MARK: Status

    func status() -> RelayStatusOutput {
        let namespaces = (try? store.namespaces()) ?? []
        let incarnation = store.incarnation
        return RelayStatusOutput(
            relay: store.relayID.hex, incarnation: incarnation.number, origin: incarnation.origin.hex, ready: isReady,
            namespaceCount: namespaces.count, durability: store.configuration.durability.rawValue,
            peers: replicator.links.map { link in
                RelayStatusOutput.Peer(
                    relay: link.peer.hex, address: link.address, dialed: link.dialed, eventsSent: link.eventsSent,
                    eventsReceived: link.eventsReceived,
                    lag: namespaces.reduce(0) { $0 + link.lag($1.namespace, local: $1.vector) })
            })
    }

    func output(_ info: NamespaceInfo) throws -> NamespaceOutput {
        NamespaceOutput(
            namespace: info.namespace.name, eventCount: info.eventCount, byteCount: info.byteCount,
            firstPosition: info.firstPosition, lastPosition: info.lastPosition, trimmedThrough: info.trimmedThrough,
            pendingCount: info.pendingCount,
            vector: Dictionary(uniqueKeysWithValues: info.vector.entries.map { ($0.key.hex, $0.value) }),
            portableCursor: Cursor.vector(info.vector).text,
            aliases: info.aliasCount == 0 ? nil : try store.aliases(in: info.namespace).map { Self.output($0, in: info.namespace) })
    }

    static func output(_ alias: Alias, in namespace: Namespace) -> AliasOutput {
        AliasOutput(namespace: namespace.name, origin: alias.origin.hex, originSeq: alias.originSeq, id: alias.id?.hex, after: alias.after)
    }

    func listNamespaces(_ request: Request) throws -> Response {
        let prefix = request.uri.queryParameters["prefix"].map(String.init) ?? ""
        let token = try access.authorize(Self.secret(request), .read, nil)
        try admitRead(token)
        let infos = try store.namespaces(prefix: prefix).filter { info in
            token.map { $0.prefixes.contains { info.namespace.name.hasPrefix($0) } } ?? true
        }
        return jsonResponse(NamespacesOutput(namespaces: try infos.map(output)))
    }

    func namespaceStatus(_ request: Request) throws -> Response {
        let namespace = try Self.namespace(request, after: "/v1/namespaces/")
        try admitRead(try access.authorize(Self.secret(request), .read, namespace))
        guard let info = try store.info(namespace) else {
            throw APIError(.notFound, "unknown_namespace", field: "namespace", "namespace \"\(namespace)\" holds no events here")
        }
        return jsonResponse(try output(info))
    }

    // MARK: Reading

    func read(_ request: Request) throws -> Response {
        let namespace = try Self.namespace(request, after: "/v1/events/")
        try admitRead(try access.authorize(Self.secret(request), .read, namespace))
        let cursor = try Self.cursor(request)
        // A binary page is a third the size of JSON and costs no JSON either side: ten times the events.
        let binary = request.headers.firstValue(.accept)?.lowercased().hasPrefix(BulkBody.mediaType) == true
        let limitMax = binary ? 10 * configuration.pageEventCountMax : configuration.pageEventCountMax
        let limit = try Self.integer(request, "limit", default: min(100, configuration.pageEventCountMax), 1...limitMax)
        let filter = try Self.filter(request)
        if binary { return try binaryPage(namespace, after: cursor, limit: limit, filter: filter) }
        let page: Page
        do { page = try store.read(namespace, after: cursor, limit: limit, filter: filter) } catch let error as StoreError {
            throw APIError(error)
        }
        metrics.readRequests.increment()
        metrics.readEvents.increment(by: page.events.count)
        var writer = JSONWriter(capacity: 512 * page.events.count + 256)
        writer.write(Self.output(page))
        return jsonResponse(written: writer)
    }

    /// A page as a binary bulk body (`BulkBody`), its cursors in headers.
    /// Positions are dense from `Trail-First-Position`: so only a fast cursor
    /// (or none) and no filter, which would skip some. The events go out as
    /// the canonical bytes the store holds, neither decoded nor encoded
    /// again here; the client decodes each and computes its id.
    func binaryPage(_ namespace: Namespace, after cursor: Cursor?, limit: Int, filter: ReadFilter) throws(APIError) -> Response {
        if case .vector = cursor {
            throw APIError(.badRequest, "bad_parameter", field: "after", "a binary page resumes from a fast cursor; a portable one skips events, so positions would not be dense (read JSON)")
        }
        guard filter.types == nil, filter.authors == nil else {
            throw APIError(.badRequest, "bad_parameter", field: "type", "a binary page holds every event; filters are for JSON pages")
        }
        var body = ByteBuffer()
        body.reserveCapacity(min(limit, 1024) * 320)
        var first: UInt64 = 0
        var count = 0
        let page: Page
        do {
            page = try store.readStored(namespace, after: cursor, limit: limit) { position, event in
                if count == 0 { first = position }
                count += 1
                body.writeInteger(UInt32(event.count))
                body.writeBytes(event)
            }
        } catch let error as StoreError {
            throw APIError(error)
        } catch {
            throw APIError(.internalServerError, "internal", "\(error)")
        }
        metrics.readRequests.increment()
        metrics.readEvents.increment(by: count)
        var headers: HTTPFields = [.contentType: BulkBody.mediaType]
        headers[HTTPField.Name("Trail-First-Position")!] = String(first)
        headers[HTTPField.Name("Trail-Cursor")!] = page.cursor.text
        headers[HTTPField.Name("Trail-Portable-Cursor")!] = page.portableCursor.text
        headers[HTTPField.Name("Trail-Last-Position")!] = String(page.lastPosition)
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
    }

    static func output(_ page: Page) -> PageOutput {
        PageOutput(
            events: page.events.map(Self.output), cursor: page.cursor.text, portableCursor: page.portableCursor.text,
            lastPosition: page.lastPosition)
    }

    static func output(_ stored: StoredEvent) -> EventOutput {
        EventOutput(event: stored.event, position: stored.position, origin: stored.origin, originSeq: stored.originSeq)
    }

    /// One event's JSON object, as every answer and message carries it.
    static func json(_ stored: StoredEvent) -> [UInt8] {
        var writer = JSONWriter(capacity: 384 + stored.event.payload.count)
        writer.write(output(stored))
        return writer.bytes
    }
}

/// Turns every error a handler throws into the JSON error body: store and
/// input errors by their meaning, Hummingbird's own (unknown route, body too
/// large) by their status, anything else as a 500 that is logged.
struct ErrorMiddleware: RouterMiddleware {
    let metrics: RelayMetrics

    /// The methods a route takes, for a 405 on a known path.
    static func allowedMethods(_ path: String) -> [String]? {
        switch path {
        case "/healthz", "/readyz", "/metrics", "/v1/status", "/v1/namespaces": return ["GET"]
        case "/v1/admin/blocked-peers": return ["GET", "PUT"]
        case "/v1/events", "/v1/auth/challenge", "/v1/auth/session": return ["POST"]
        case _ where path.hasPrefix("/v1/events/"): return ["GET", "POST"]
        case _ where path.hasPrefix("/v1/namespaces/"), _ where path.hasPrefix("/v1/participants/"),
             _ where path.hasPrefix("/v1/subscribe/"): return ["GET"]
        default: return nil
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            metrics.clientErrors.increment()
            throw error
        } catch let error as StoreError {
            throw APIError(error)
        } catch let error as InputError {
            metrics.clientErrors.increment()
            throw APIError(error)
        } catch let error as HTTPError where error.status == .notFound {
            metrics.clientErrors.increment()
            if let allowed = Self.allowedMethods(request.uri.path), !allowed.contains(request.method.rawValue) {
                var refusal = APIError(.methodNotAllowed, "method_not_allowed", "\(request.uri.path) takes \(allowed.joined(separator: ", "))")
                refusal.headers[.allow] = allowed.joined(separator: ", ")
                throw refusal
            }
            throw APIError(.notFound, "not_found", "no route \(request.method.rawValue) \(request.uri.path) (Docs/API.md lists the routes)")
        } catch let error as HTTPError {
            metrics.clientErrors.increment()
            let code = error.status == .notFound ? "not_found" : error.status == .contentTooLarge ? "too_large" : "http"
            throw APIError(error.status, code, error.body ?? error.status.reasonPhrase)
        } catch {
            context.logger.error("request failed", metadata: ["path": "\(request.uri.path)", "error": "\(error)"])
            throw APIError(.internalServerError, "internal", "\(error)")
        }
    }
}

/// The relay's HTTP responder: `GET` and `POST /v1/events/{namespace}`, the
/// routes every append and read takes, are matched by their prefix; every
/// other request goes to the router. The router's trie splits a path into
/// components character by character, and resolving these multi-component
/// paths was 8% of a relay's CPU under single-event appends. Other methods on
/// these paths go to the router too, which answers 405.
struct RelayResponder: HTTPResponder {
    let relay: Relay
    let router: RouterResponder<Context>
    let errors: ErrorMiddleware

    func respond(to request: Request, context: Context) async throws -> Response {
        guard request.method == .post || request.method == .get, request.uri.path.utf8.starts(with: "/v1/events/".utf8) else {
            return try await router.respond(to: request, context: context)
        }
        do {
            return try await errors.handle(request, context: context) { [relay] request, _ in
                request.method == .post ? try await relay.append(request) : try relay.read(request)
            }
        } catch let error as any HTTPResponseError {
            return try error.response(from: request, context: context)
        }
    }
}
