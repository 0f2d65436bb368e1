public import AsyncHTTPClient
import Foundation
import HummingbirdWSClient
public import Logging
import NIOCore
import NIOHTTP1
public import NIOSSL
public import TrailAPI
public import TrailCore

/// A client of one relay or of a federation of relays, over the client API of
/// Docs/API.md. Requests go to the first relay that answers, in list order;
/// subscriptions resume from their portable cursor on the next relay when
/// one fails, so an agent sees every event once, in causal order.
///
/// ```swift
/// let client = TrailClient(relays: ["http://127.0.0.1:7400"])
/// let namespace = try Namespace("auction/task-7")
/// let placed = try await client.append(type: "bid", payload: #"{"stake": 40}"#, to: namespace)
/// for try await update in client.subscribe(namespace) {
///     if case .event(let received) = update { print(received.event.type) }
/// }
/// ```
public final class TrailClient: Sendable {
    /// Base URLs such as `http://127.0.0.1:7400`, in the order they are tried.
    public let relays: [String]
    let token: String?
    /// With a key instead of a token, the client authenticates to each relay
    /// by challenge (`authenticate(to:)`) and keeps the session it gets.
    let signingKey: SigningKey?
    private let sessions = Locked<[String: (token: String, expires: ContinuousClock.Instant)]>([:])
    let http: HTTPClient
    let logger: Logger
    let requestTimeout: Duration
    /// For https/wss relays whose certificates chain to roots other than the system's.
    let tls: TLSConfiguration?
    let ownsHTTP: Bool

    /// `tlsTrustRoots`: a PEM file of the certificates that verify `https://`
    /// relays (a private CA); the system's roots otherwise. A client made with
    /// it owns a connection pool: call `shutdown()` when done.
    public init(
        relays: [String], token: String? = nil, signingKey: SigningKey? = nil, requestTimeout: Duration = .seconds(30),
        tlsTrustRoots: String? = nil, logger: Logger = Logger(label: "trail.client")
    ) {
        precondition(!relays.isEmpty, "a client needs at least one relay")
        precondition(token == nil || signingKey == nil, "a client authenticates with a token or a key, not both")
        self.signingKey = signingKey
        self.relays = relays.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
        self.token = token
        self.requestTimeout = requestTimeout
        self.logger = logger
        if let tlsTrustRoots {
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(tlsTrustRoots)
            tls.certificateVerification = .noHostnameVerification
            self.tls = tls
            http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: .init(tlsConfiguration: tls))
            ownsHTTP = true
        } else {
            tls = nil
            http = HTTPClient.shared
            ownsHTTP = false
        }
    }

    /// Closes the connection pool of a client made with `tlsTrustRoots`.
    public func shutdown() async throws {
        if ownsHTTP { try await http.shutdown() }
    }

    // MARK: Appending

    /// How long an append waits and for what.
    public struct AppendOptions: Sendable {
        /// `synced` asks for an fsync before the answer, whatever the relay's default.
        public var synced: Bool
        /// Wait until this many peer relays hold the events (bounded by `timeout`).
        public var replicas: Int
        public var timeout: Duration
        /// A conditional append: only if the namespace's log ends at this position
        /// (0: empty). Otherwise the outcome is `head_moved` with `lastPosition`.
        public var ifLastPosition: UInt64?

        public init(synced: Bool = false, replicas: Int = 0, timeout: Duration = .seconds(10), ifLastPosition: UInt64? = nil) {
            self.ifLastPosition = ifLastPosition
            self.synced = synced
            self.replicas = replicas
            self.timeout = timeout
        }
    }

    /// Appends an unsigned event the relay timestamps.
    @discardableResult
    public func append(
        type: String, payload: String, parents: [EventID] = [], to namespace: Namespace, options: AppendOptions = AppendOptions()
    ) async throws -> AppendOutcome {
        let input = EventInput(type: type, payload: payload, parents: parents.isEmpty ? nil : parents.map(\.hex))
        return try await send(json: input, namespace: namespace, options: options, as: AppendOutcome.self)
    }

    /// Appends an event built (and perhaps signed) here, exactly as it is.
    @discardableResult
    public func append(_ event: Event, options: AppendOptions = AppendOptions()) async throws -> AppendOutcome {
        try await send(json: EventInput(event: event), namespace: event.namespace, options: options, as: AppendOutcome.self)
    }

    /// Appends a batch to one namespace in the binary bulk form (Docs/FORMAT.md §5).
    @discardableResult
    public func append(contentsOf events: [Event], to namespace: Namespace, options: AppendOptions = AppendOptions()) async throws -> [AppendOutcome] {
        try await bulk(events, path: "/v1/events/\(Self.escape(namespace))", options: options)
    }

    func bulk(_ events: [Event], path: String, options: AppendOptions) async throws -> [AppendOutcome] {
        let body = ByteBuffer(bytes: BulkBody.encode(events))
        let response = try await request(.POST, path, query: Self.query(options), body: body, contentType: "application/x-trail-events")
        guard (200..<300).contains(response.status.code) else { return try Self.decode(AppendBatchResponse.self, response).results }
        let parsed = response.body.withUnsafeReadableBytes { bytes in
            Result { () throws(InputError) in try AppendBatchResponse.parse(bytes) }
        }
        do { return try parsed.get().results } catch { throw TrailClientError.malformed("batch answer: \(error)") }
    }

    /// Appends a batch whose events may be in many namespaces, in one binary
    /// bulk request (`POST /v1/events`). Results are in the events' order.
    @discardableResult
    public func append(contentsOf events: [Event], options: AppendOptions = AppendOptions()) async throws -> [AppendOutcome] {
        try await bulk(events, path: "/v1/events", options: options)
    }

    func send<T: Decodable>(json input: EventInput, namespace: Namespace, options: AppendOptions, as type: T.Type) async throws -> T {
        let data = try JSONEncoder().encode(input)
        let response = try await request(
            .POST, "/v1/events/\(Self.escape(namespace))", query: Self.query(options), body: ByteBuffer(bytes: data),
            contentType: "application/json")
        return try Self.decode(type, response)
    }

    static func query(_ options: AppendOptions) -> [(String, String)] {
        var query = [(String, String)]()
        if options.synced { query.append(("durability", "synced")) }
        if let last = options.ifLastPosition { query.append(("if_last_position", String(last))) }
        if options.replicas > 0 {
            query.append(("replicas", String(options.replicas)))
            let milliseconds = options.timeout.components.seconds * 1000 + options.timeout.components.attoseconds / 1_000_000_000_000_000
            query.append(("timeout_ms", String(max(1, milliseconds))))
        }
        return query
    }

    // MARK: Reading

    /// A page of events with the cursors that follow it.
    public struct Page: Sendable {
        public var events: [ReceivedEvent]
        /// Resumes on the relay that answered.
        public var cursor: String
        /// Resumes on any relay.
        public var portableCursor: String
        public var lastPosition: UInt64
    }

    public func read(
        _ namespace: Namespace, after cursor: String? = nil, limit: Int = 100, types: [String] = [], authors: [PublicKey] = []
    ) async throws -> Page {
        var query: [(String, String)] = [("limit", String(limit))]
        if let cursor { query.append(("after", cursor)) }
        for type in types { query.append(("type", type)) }
        for author in authors { query.append(("author", author.hex)) }
        let response = try await request(.GET, "/v1/events/\(Self.escape(namespace))", query: query)
        let page = try Self.decode(PageOutput.self, response)
        return Page(
            events: try page.events.map { try ReceivedEvent($0, relay: response.relay) }, cursor: page.cursor,
            portableCursor: page.portableCursor, lastPosition: page.lastPosition)
    }

    /// A page in the binary form: events as their canonical bytes (each
    /// verified against its id here), at positions dense from `firstPosition`.
    public struct BinaryPage: Sendable {
        public var events: [Event]
        /// The position of the first event (0 when there is none).
        public var firstPosition: UInt64
        public var cursor: String
        public var portableCursor: String
        public var lastPosition: UInt64
        public var isAtEnd: Bool { events.isEmpty || firstPosition + UInt64(events.count) - 1 >= lastPosition }
    }

    /// Reads a page as a binary bulk body (`Accept: application/x-trail-events`):
    /// no JSON either side, for replaying a log fast. Takes a fast cursor (or none).
    public func readBinary(_ namespace: Namespace, after cursor: String? = nil, limit: Int = 1000) async throws -> BinaryPage {
        try Self.binaryPage(try await fetchBinary(namespace, after: cursor, limit: limit))
    }

    /// Replays `namespace` from `cursor` (a fast cursor, or none for the
    /// start) as binary pages, through the end of the log as of the last
    /// page. While a page is decoded (each event checked field by field, its
    /// id computed from its bytes) and handed out, the request for the next one is already on its way,
    /// so the relay reads page N+1 while this side checks page N: one page
    /// ahead, never more. A fast cursor names one relay, so every page after
    /// the first comes from the relay that answered the first.
    public func replay(_ namespace: Namespace, after cursor: String? = nil, pageSize: Int = 10_000) -> Replay {
        Replay(client: self, namespace: namespace, cursor: cursor, pageSize: pageSize)
    }

    public struct Replay: AsyncSequence, Sendable {
        public typealias Element = BinaryPage
        let client: TrailClient
        let namespace: Namespace
        let cursor: String?
        let pageSize: Int

        public func makeAsyncIterator() -> Iterator {
            Iterator(client: client, namespace: namespace, cursor: cursor, pageSize: pageSize)
        }

        public struct Iterator: AsyncIteratorProtocol {
            let client: TrailClient
            let namespace: Namespace
            let cursor: String?
            let pageSize: Int
            var ahead: Task<Answer, any Error>?
            var started = false

            public mutating func next() async throws -> BinaryPage? {
                let answer: Answer
                if let ahead {
                    answer = try await ahead.value
                } else if !started {
                    started = true
                    answer = try await client.fetchBinary(namespace, after: cursor, limit: pageSize)
                } else {
                    return nil
                }
                ahead = nil
                let page = try TrailClient.binaryPage(answer)
                guard !page.events.isEmpty else { return nil }
                if !page.isAtEnd {
                    let (client, namespace, pageSize, relay, next) = (client, namespace, pageSize, answer.relay, page.cursor)
                    ahead = Task { try await client.fetchBinary(namespace, after: next, limit: pageSize, only: relay) }
                }
                return page
            }
        }
    }

    /// A binary page's answer, its status checked; the body is not decoded yet.
    func fetchBinary(_ namespace: Namespace, after cursor: String?, limit: Int, only relay: String? = nil) async throws -> Answer {
        var query: [(String, String)] = [("limit", String(limit))]
        if let cursor { query.append(("after", cursor)) }
        let answer = try await request(.GET, "/v1/events/\(Self.escape(namespace))", query: query, only: relay, accept: BulkBody.mediaType)
        guard answer.status == .ok else {
            _ = try Self.decode(PageOutput.self, answer)
            throw TrailClientError.malformed("a \(answer.status.code) answer to a binary read")
        }
        return answer
    }

    static func binaryPage(_ answer: Answer) throws -> BinaryPage {
        func header(_ name: String) throws -> String {
            guard let value = answer.headers.first(name: name) else { throw TrailClientError.malformed("binary page without \(name)") }
            return value
        }
        guard let first = UInt64(try header("Trail-First-Position")), let last = UInt64(try header("Trail-Last-Position")) else {
            throw TrailClientError.malformed("binary page positions are not integers")
        }
        let decoded = answer.body.withUnsafeReadableBytes { bytes in
            Result { () throws(BulkBody.Invalid) in try BulkBody.decode(bytes, limits: .unbounded) }
        }
        let events: [Event]
        do { events = try decoded.get() } catch { throw TrailClientError.malformed("binary page: \(error)") }
        return BinaryPage(events: events, firstPosition: first, cursor: try header("Trail-Cursor"),
                          portableCursor: try header("Trail-Portable-Cursor"), lastPosition: last)
    }

    public func participants(_ namespace: Namespace) async throws -> [ParticipantOutput] {
        let response = try await request(.GET, "/v1/participants/\(Self.escape(namespace))")
        return try Self.decode(ParticipantsOutput.self, response).participants
    }

    public func namespaces(prefix: String = "") async throws -> [NamespaceOutput] {
        let response = try await request(.GET, "/v1/namespaces", query: prefix.isEmpty ? [] : [("prefix", prefix)])
        return try Self.decode(NamespacesOutput.self, response).namespaces
    }

    public func status() async throws -> RelayStatusOutput {
        try Self.decode(RelayStatusOutput.self, try await request(.GET, "/v1/status"))
    }

    /// The status of one relay of the list.
    public func statusOf(_ relay: String) async throws -> RelayStatusOutput {
        try Self.decode(RelayStatusOutput.self, try await request(.GET, "/v1/status", only: relay))
    }

    // MARK: Operating

    /// The peer relays that `relay` (default: the first that answers) refuses links with.
    public func blockedPeers(on relay: String? = nil) async throws -> [RelayID] {
        let answer = try await request(.GET, "/v1/admin/blocked-peers", only: relay)
        return try Self.decode(BlockedPeersBody.self, answer).relays.map { try PublicKey(hex: $0) }
    }

    /// Replaces the peers `relay` refuses links with (an operator's
    /// partition; `[]` heals). Needs an operator token on a relay with tokens.
    public func setBlockedPeers(_ peers: [RelayID], on relay: String? = nil) async throws {
        let body = try JSONEncoder().encode(BlockedPeersBody(relays: peers.map(\.hex)))
        let answer = try await request(.PUT, "/v1/admin/blocked-peers", body: ByteBuffer(bytes: body), contentType: "application/json", only: relay)
        _ = try Self.decode(BlockedPeersBody.self, answer)
    }

    // MARK: HTTP

    struct Answer: Sendable {
        var status: HTTPResponseStatus
        var body: ByteBuffer
        var relay: String
        var headers: HTTPHeaders = [:]
    }

    /// Sends to each relay in turn until one answers; an answer (even a 4xx)
    /// ends the search, a connection failure moves on.
    func request(
        _ method: HTTPMethod, _ path: String, query: [(String, String)] = [], body: ByteBuffer? = nil, contentType: String? = nil,
        only: String? = nil, accept: String? = nil
    ) async throws -> Answer {
        var lastError: (any Error)?
        for relay in only.map({ [$0] }) ?? relays {
            var request = HTTPClientRequest(url: relay + path + Self.encode(query))
            request.method = method
            do {
                if let bearer = try await bearer(for: relay) { request.headers.add(name: "Authorization", value: "Bearer \(bearer)") }
            } catch let error as TrailClientError {
                if case .refused = error { throw error }
                lastError = error
                continue
            } catch {
                lastError = error
                continue
            }
            if let contentType { request.headers.add(name: "Content-Type", value: contentType) }
            if let accept { request.headers.add(name: "Accept", value: accept) }
            if let body { request.body = .bytes(body) }
            do {
                let response = try await http.execute(request, timeout: .init(requestTimeout))
                let bytes = try await response.body.collect(upTo: 256 << 20)
                return Answer(status: response.status, body: bytes, relay: relay, headers: response.headers)
            } catch {
                logger.debug("relay did not answer", metadata: ["relay": "\(relay)", "error": "\(error)"])
                lastError = error
            }
        }
        throw TrailClientError.unreachable(relays: relays, lastError: "\(lastError.map { "\($0)" } ?? "none")")
    }

    /// The bearer token for `relay`: the configured token, or with a key the
    /// session opened by challenge (again when it is within a minute of expiring).
    func bearer(for relay: String) async throws -> String? {
        if let token { return token }
        guard signingKey != nil else { return nil }
        let now = ContinuousClock.now
        if let session = sessions.withLock({ $0[relay] }), session.expires - now > .seconds(60) { return session.token }
        return try await authenticate(to: relay)
    }

    /// Opens a session on `relay` with the client's key: asks for a
    /// challenge, signs "trail.auth.v1" ‖ relay key ‖ challenge, and keeps the
    /// session token it gets (Docs/API.md, Authentication).
    @discardableResult
    public func authenticate(to relay: String) async throws -> String {
        guard let signingKey else { throw TrailClientError.refused(ErrorBody(status: 0, code: "no_key", message: "this client has no signing key")) }
        let started = ContinuousClock.now
        func post<T: Decodable>(_ path: String, _ body: some Encodable, as: T.Type) async throws -> T {
            var request = HTTPClientRequest(url: relay + path)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body)))
            let response = try await http.execute(request, timeout: .init(requestTimeout))
            let bytes = try await response.body.collect(upTo: 1 << 20)
            return try Self.decode(T.self, Answer(status: response.status, body: bytes, relay: relay))
        }
        let key = signingKey.publicKey.hex
        let challenge = try await post("/v1/auth/challenge", ChallengeRequest(key: key), as: ChallengeOutput.self)
        guard let challengeBytes = Hex.decode(challenge.challenge), let relayKey = try? PublicKey(hex: challenge.relay) else {
            throw TrailClientError.refused(ErrorBody(status: 0, code: "bad_challenge", message: "the relay's challenge is not hex: \(challenge.challenge)"))
        }
        let signature = signingKey.sign(ClientAuthentication.message(relay: relayKey, challenge: challengeBytes))
        let session = try await post("/v1/auth/session", SessionRequest(key: key, challenge: challenge.challenge, signature: Hex.encode(signature.bytes)),
                                     as: SessionOutput.self)
        sessions.withLock { $0[relay] = (session.token, started + .seconds(session.expiresIn)) }
        return session.token
    }

    static func decode<T: Decodable>(_ type: T.Type, _ answer: Answer) throws -> T {
        guard (200..<300).contains(answer.status.code) || (type == AppendOutcome.self && answer.status.code == 409) else {
            if let error = try? JSONDecoder().decode(ErrorBody.self, from: Data(answer.body.readableBytesView)) {
                throw TrailClientError.refused(error)
            }
            throw TrailClientError.refused(ErrorBody(
                status: Int(answer.status.code), code: "http",
                message: String(decoding: answer.body.readableBytesView, as: UTF8.self)))
        }
        return try JSONDecoder().decode(type, from: Data(answer.body.readableBytesView))
    }

    static func escape(_ namespace: Namespace) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "%?#")
        return namespace.name.addingPercentEncoding(withAllowedCharacters: allowed) ?? namespace.name
    }

    static func encode(_ query: [(String, String)]) -> String {
        guard !query.isEmpty else { return "" }
        var allowed = CharacterSet.urlQueryAllowed
        allowed.remove(charactersIn: "&=+%#")
        return "?" + query.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? $0.1)" }.joined(separator: "&")
    }
}

/// An event as a client received it, its id checked against its fields.
public struct ReceivedEvent: Sendable, Hashable {
    public var event: Event
    /// Its position in the log of the relay that delivered it.
    public var position: UInt64
    public var origin: RelayID
    public var originSeq: UInt64
    /// The base URL of the relay that delivered it.
    public var relay: String

    public init(_ output: EventOutput, relay: String) throws {
        event = try output.event()
        position = output.position
        guard let origin = try? PublicKey(hex: output.origin) else {
            throw TrailClientError.malformed("event \(output.id): origin \"\(output.origin)\" is not a relay key")
        }
        self.origin = origin
        originSeq = output.originSeq
        self.relay = relay
    }
}

public enum TrailClientError: Error, Sendable, CustomStringConvertible {
    /// No relay of the list answered.
    case unreachable(relays: [String], lastError: String)
    /// A relay answered with an error body.
    case refused(ErrorBody)
    /// A relay sent something the API does not allow.
    case malformed(String)

    public var description: String {
        switch self {
        case .unreachable(let relays, let lastError): "no relay answered (\(relays.joined(separator: ", "))); last error: \(lastError)"
        case .refused(let body): "relay refused: \(body)"
        case .malformed(let detail): "malformed answer: \(detail)"
        }
    }

    /// The HTTP status of a refusal, if this is one.
    public var status: Int? {
        if case .refused(let body) = self { return body.error.status }
        return nil
    }
}
