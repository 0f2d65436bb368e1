import Foundation
public import TrailCore

// The client API's bodies (Docs/API.md): what `trail serve` reads and writes
// over HTTP and WebSocket, and what TrailClient sends and decodes. JSON keys
// are snake_case; ids, keys and signatures are lowercase hex; timestamps are
// the raw 64-bit hybrid clock reading as a decimal string (JSON numbers lose
// precision above 2^53).

/// One event to append, as JSON. Either the fields (`type`, `payload` or
/// `payload_base64`, `parents`, and for a signed event `author`, `timestamp`
/// and `signature`), or `encoded`: the canonical encoding of Docs/FORMAT.md in
/// base64url, signature included. The namespace is the request's.
public struct EventInput: Encodable, Sendable, Equatable {
    public var type: String?
    public var payload: String?
    public var payloadBase64: String?
    public var parents: [String]?
    public var author: String?
    public var timestamp: String?
    public var signature: String?
    public var encoded: String?

    public init(
        type: String? = nil, payload: String? = nil, payloadBase64: String? = nil, parents: [String]? = nil,
        author: String? = nil, timestamp: String? = nil, signature: String? = nil, encoded: String? = nil
    ) {
        self.type = type
        self.payload = payload
        self.payloadBase64 = payloadBase64
        self.parents = parents
        self.author = author
        self.timestamp = timestamp
        self.signature = signature
        self.encoded = encoded
    }

    /// The exact event, as a client that built and maybe signed it sends it.
    public init(event: Event) {
        self.init(encoded: Base64URL.encode(event.encoded))
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case type, payload, parents, author, timestamp, signature, encoded
        case payloadBase64 = "payload_base64"
    }
}

/// A bad part of a request, named precisely enough to fix it.
public struct InputError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The field at fault, as a JSON path (`events[3].parents[0]`) or a query parameter.
    public var field: String
    public var reason: String
    public init(field: String, reason: String) {
        self.field = field
        self.reason = reason
    }
    public var description: String { "\(field): \(reason)" }
}

extension EventInput {
    /// The event this input describes, in `namespace`. Unsigned events without a
    /// timestamp take `now`; a signed one must carry the timestamp it was signed with.
    /// Signatures are not checked here: the store verifies them.
    public func event(in namespace: Namespace, now: () -> HybridTimestamp, limits: EventLimits, field: String) throws(InputError) -> Event {
        if let encoded {
            let others: [String?] = [type, payload, payloadBase64, author, timestamp, signature]
            guard others.allSatisfy({ $0 == nil }), parents == nil else {
                throw InputError(field: "\(field).encoded", reason: "an encoded event carries every field; send it alone")
            }
            guard let bytes = Base64URL.decode(encoded) else {
                throw InputError(field: "\(field).encoded", reason: "is not base64url (RFC 4648 §5, no padding)")
            }
            let event: Event
            do { event = try Event(decoding: bytes, limits: limits) } catch {
                throw InputError(field: "\(field).encoded", reason: "\(error)")
            }
            guard event.namespace == namespace else {
                throw InputError(
                    field: "\(field).encoded",
                    reason: "the event is in namespace \"\(event.namespace)\", the request in \"\(namespace)\"")
            }
            return event
        }
        guard let type else { throw InputError(field: "\(field).type", reason: "is required") }
        let bytes: [UInt8]
        switch (payload, payloadBase64) {
        case (let text?, nil): bytes = Array(text.utf8)
        case (nil, let base64?):
            guard let decoded = Base64Any.decode(base64) else {
                throw InputError(field: "\(field).payload_base64", reason: "is not base64 (standard or URL-safe alphabet)")
            }
            bytes = decoded
        case (nil, nil): bytes = []
        case (_?, _?): throw InputError(field: "\(field).payload", reason: "give payload or payload_base64, not both")
        }
        var parentIDs = [EventID]()
        for (index, text) in (parents ?? []).enumerated() {
            do { parentIDs.append(try EventID(hex: text)) } catch {
                throw InputError(field: "\(field).parents[\(index)]", reason: "\(error)")
            }
        }
        var authorKey: PublicKey?
        if let author {
            do { authorKey = try PublicKey(hex: author) } catch {
                throw InputError(field: "\(field).author", reason: "\(error)")
            }
        }
        let stamp: HybridTimestamp
        if let timestamp {
            guard let raw = UInt64(timestamp) else {
                throw InputError(field: "\(field).timestamp", reason: "expected the raw hybrid clock reading as a decimal string")
            }
            stamp = HybridTimestamp(rawValue: raw)
        } else {
            guard signature == nil else {
                throw InputError(field: "\(field).timestamp", reason: "a signed event must carry the timestamp its id was computed with")
            }
            stamp = now()
        }
        var event: Event
        do {
            event = try Event(
                namespace: namespace, author: authorKey, timestamp: stamp, parents: parentIDs,
                type: type, payload: bytes, limits: limits)
        } catch {
            let where_ = switch error {
            case .payloadTooLarge: payloadBase64 == nil ? "payload" : "payload_base64"
            case .invalidType: "type"
            case .tooManyParents: "parents"
            default: "event"
            }
            throw InputError(field: "\(field).\(where_)", reason: "\(error)")
        }
        if let signature {
            guard let bytes = Hex.decode(signature), let parsed = try? Signature(bytes: bytes) else {
                throw InputError(field: "\(field).signature", reason: "expected an Ed25519 signature as 128 hex digits")
            }
            guard authorKey != nil else {
                throw InputError(field: "\(field).author", reason: "a signed event must name its author")
            }
            event = event.attaching(signature: parsed)
        }
        return event
    }
}

/// Base64 in either alphabet, padded or not: what JSON producers in the wild send.
enum Base64Any {
    static func decode(_ text: String) -> [UInt8]? {
        var normalized = String(text.map { $0 == "+" ? "-" : $0 == "/" ? "_" : $0 })
        while normalized.hasSuffix("=") { normalized.removeLast() }
        return Base64URL.decode(normalized)
    }
}

/// A body of `POST /v1/events/{namespace}`: one event, or `{"events": [...]}`
/// (read by `AppendBody.parse`).
public enum AppendBody: Sendable {
    case one(EventInput)
    case batch([EventInput])
}

/// Where an appended event stands.
public struct AppendOutcome: Codable, Sendable, Equatable {
    /// `appended`, `duplicate` (held already; its placement is given), `pending`
    /// (waits for a parent), `conflict`, or `trimmed`.
    public var outcome: String
    public var id: String
    public var position: UInt64?
    public var origin: String?
    public var originSeq: UInt64?
    /// `buffered`, `synced`, or `replicated:N`: what was actually reached.
    public var durability: String?
    /// For `conflict`: the event already held at this origin sequence.
    public var existing: String?
    /// For `head_moved`: where the namespace's log actually ends.
    public var lastPosition: UInt64?

    public init(
        outcome: String, id: String, position: UInt64? = nil, origin: String? = nil, originSeq: UInt64? = nil,
        durability: String? = nil, existing: String? = nil, lastPosition: UInt64? = nil
    ) {
        self.lastPosition = lastPosition
        self.outcome = outcome
        self.id = id
        self.position = position
        self.origin = origin
        self.originSeq = originSeq
        self.durability = durability
        self.existing = existing
    }

    enum CodingKeys: String, CodingKey {
        case outcome, id, position, origin, durability, existing
        case originSeq = "origin_seq"
        case lastPosition = "last_position"
    }
}

/// The answer to a batch append: one outcome per event, in order.
public struct AppendBatchResponse: Codable, Sendable {
    public var results: [AppendOutcome]
    public init(results: [AppendOutcome]) { self.results = results }
}

/// An event as the relay returns it, with where it sits in this relay's log.
public struct EventOutput: Codable, Sendable, Equatable {
    public var id: String
    public var namespace: String
    public var position: UInt64
    public var origin: String
    public var originSeq: UInt64
    public var type: String
    public var author: String?
    public var timestamp: String
    /// Milliseconds since the Unix epoch: the timestamp's physical part.
    public var timeMs: UInt64
    public var parents: [String]
    /// The payload when it is valid UTF-8; otherwise `payload_base64` (base64url).
    public var payload: String?
    public var payloadBase64: String?
    public var signature: String?

    public init(event: Event, position: UInt64, origin: RelayID, originSeq: UInt64) {
        id = event.id.hex
        namespace = event.namespace.name
        self.position = position
        self.origin = origin.hex
        self.originSeq = originSeq
        type = event.type
        author = event.author?.hex
        timestamp = String(event.timestamp.rawValue)
        timeMs = event.timestamp.physicalMilliseconds
        parents = event.parents.map(\.hex)
        if let text = String(validUTF8: event.payload) {
            payload = text
        } else {
            payloadBase64 = Base64URL.encode(event.payload)
        }
        signature = event.signature.map { Hex.encode($0.bytes) }
    }

    init(
        id: String, namespace: String, position: UInt64, origin: String, originSeq: UInt64, type: String, author: String?,
        timestamp: String, timeMs: UInt64, parents: [String], payload: String?, payloadBase64: String?, signature: String?
    ) {
        self.id = id
        self.namespace = namespace
        self.position = position
        self.origin = origin
        self.originSeq = originSeq
        self.type = type
        self.author = author
        self.timestamp = timestamp
        self.timeMs = timeMs
        self.parents = parents
        self.payload = payload
        self.payloadBase64 = payloadBase64
        self.signature = signature
    }

    /// The event itself, rebuilt from the fields; its id is checked against `id`.
    public func event() throws(InputError) -> Event {
        let namespace: Namespace
        do { namespace = try Namespace(self.namespace) } catch { throw InputError(field: "namespace", reason: "\(error)") }
        let input = EventInput(
            type: type, payload: payload, payloadBase64: payloadBase64, parents: parents, author: author,
            timestamp: timestamp, signature: signature)
        let event = try input.event(in: namespace, now: { .zero }, limits: .unbounded, field: "event")
        guard event.id.hex == id else {
            throw InputError(field: "id", reason: "the fields hash to \(event.id.hex), not \(id)")
        }
        return event
    }

    enum CodingKeys: String, CodingKey {
        case id, namespace, position, origin, type, author, timestamp, parents, payload, signature
        case originSeq = "origin_seq"
        case timeMs = "time_ms"
        case payloadBase64 = "payload_base64"
    }
}

/// A page of a namespace's log, with the cursors to resume after it.
public struct PageOutput: Codable, Sendable {
    public var events: [EventOutput]
    /// Resumes on this relay only (fast).
    public var cursor: String
    /// Resumes on any relay that holds the namespace.
    public var portableCursor: String
    /// The last position of the log when the page was read.
    public var lastPosition: UInt64

    public init(events: [EventOutput], cursor: String, portableCursor: String, lastPosition: UInt64) {
        self.events = events
        self.cursor = cursor
        self.portableCursor = portableCursor
        self.lastPosition = lastPosition
    }

    enum CodingKeys: String, CodingKey {
        case events, cursor
        case portableCursor = "portable_cursor"
        case lastPosition = "last_position"
    }
}

/// Every 4xx and 5xx body: `{"error": {"status":…, "code":…, "field":…, "message":…}}`.
public struct ErrorBody: Codable, Sendable, Error, CustomStringConvertible {
    public struct Detail: Codable, Sendable {
        public var status: Int
        /// A stable, machine-readable reason (`bad_field`, `bad_cursor`, `conflict`…).
        public var code: String
        /// The field or parameter at fault, when there is one.
        public var field: String?
        public var message: String
    }
    public var error: Detail

    public init(status: Int, code: String, field: String? = nil, message: String) {
        error = Detail(status: status, code: code, field: field, message: message)
    }

    public var description: String {
        "\(error.status) \(error.code)" + (error.field.map { " (\($0))" } ?? "") + ": \(error.message)"
    }
}

/// Someone subscribed to a namespace who announced an identity.
public struct ParticipantOutput: Codable, Sendable, Hashable {
    /// The identity the subscriber announced (an agent name or key).
    public var id: String
    /// The relay it is connected to (its key in hex).
    public var relay: String
    /// When it joined, in milliseconds since the Unix epoch.
    public var joinedMs: UInt64

    public init(id: String, relay: String, joinedMs: UInt64) {
        self.id = id
        self.relay = relay
        self.joinedMs = joinedMs
    }

    enum CodingKeys: String, CodingKey {
        case id, relay
        case joinedMs = "joined_ms"
    }
}

/// A namespace's participants, as `GET /v1/participants/{namespace}` returns them.
public struct ParticipantsOutput: Codable, Sendable {
    public var namespace: String
    public var participants: [ParticipantOutput]
    public init(namespace: String, participants: [ParticipantOutput]) {
        self.namespace = namespace
        self.participants = participants
    }
}

/// One WebSocket message of a subscription (server to client), by `kind`:
/// `events` (a batch, with the cursors to resume after it), `participants`
/// (the list when the subscription starts), `joined` and `left` (one
/// participant), `error` (then the relay closes the socket).
public struct StreamMessage: Codable, Sendable {
    public var kind: String
    public var events: [EventOutput]?
    public var cursor: String?
    public var portableCursor: String?
    public var participants: [ParticipantOutput]?
    public var participant: ParticipantOutput?
    public var error: ErrorBody.Detail?

    public init(
        kind: String, events: [EventOutput]? = nil, cursor: String? = nil, portableCursor: String? = nil,
        participants: [ParticipantOutput]? = nil, participant: ParticipantOutput? = nil, error: ErrorBody.Detail? = nil
    ) {
        self.kind = kind
        self.events = events
        self.cursor = cursor
        self.portableCursor = portableCursor
        self.participants = participants
        self.participant = participant
        self.error = error
    }

    enum CodingKeys: String, CodingKey {
        case kind, events, cursor, participants, participant, error
        case portableCursor = "portable_cursor"
    }
}

/// A namespace as `GET /v1/namespaces` lists it.
public struct NamespaceOutput: Codable, Sendable {
    public var namespace: String
    public var eventCount: UInt64
    public var byteCount: UInt64
    public var firstPosition: UInt64?
    public var lastPosition: UInt64
    public var trimmedThrough: UInt64
    public var pendingCount: Int
    /// origin (hex) → highest originSeq held.
    public var vector: [String: UInt64]
    /// The portable cursor naming everything held: a subscriber from it sees only new events.
    public var portableCursor: String
    /// Origin slots held through an event the log holds under another slot
    /// (the same event accepted by two relays); absent when there are none.
    public var aliases: [AliasOutput]?

    public init(
        namespace: String, eventCount: UInt64, byteCount: UInt64, firstPosition: UInt64?, lastPosition: UInt64,
        trimmedThrough: UInt64, pendingCount: Int, vector: [String: UInt64], portableCursor: String, aliases: [AliasOutput]? = nil
    ) {
        self.aliases = aliases
        self.namespace = namespace
        self.eventCount = eventCount
        self.byteCount = byteCount
        self.firstPosition = firstPosition
        self.lastPosition = lastPosition
        self.trimmedThrough = trimmedThrough
        self.pendingCount = pendingCount
        self.vector = vector
        self.portableCursor = portableCursor
    }

    enum CodingKeys: String, CodingKey {
        case namespace, vector, aliases
        case eventCount = "event_count"
        case byteCount = "byte_count"
        case firstPosition = "first_position"
        case lastPosition = "last_position"
        case trimmedThrough = "trimmed_through"
        case pendingCount = "pending_count"
        case portableCursor = "portable_cursor"
    }
}

/// An alias slot: `(origin, origin_seq)` is held through event `id`, which
/// the log holds under another slot; it entered after position `after`.
/// `trail export --format jsonl` writes one per line as `{"alias": {...}}`.
public struct AliasOutput: Codable, Sendable, Equatable {
    public var namespace: String
    public var origin: String
    public var originSeq: UInt64
    /// nil once retention trimmed the event.
    public var id: String?
    public var after: UInt64

    public init(namespace: String, origin: String, originSeq: UInt64, id: String?, after: UInt64) {
        self.namespace = namespace
        self.origin = origin
        self.originSeq = originSeq
        self.id = id
        self.after = after
    }

    enum CodingKeys: String, CodingKey {
        case namespace, origin, id, after
        case originSeq = "origin_seq"
    }
}

/// One line of a JSON-lines export that is an alias, not an event.
public struct AliasLine: Codable, Sendable, Equatable {
    public var alias: AliasOutput
    public init(alias: AliasOutput) { self.alias = alias }
}

public struct NamespacesOutput: Codable, Sendable {
    public var namespaces: [NamespaceOutput]
    public init(namespaces: [NamespaceOutput]) { self.namespaces = namespaces }
}

/// `GET /v1/status`: who this relay is and how its peer links stand.
public struct RelayStatusOutput: Codable, Sendable {
    public struct Peer: Codable, Sendable {
        public var relay: String
        public var address: String
        public var dialed: Bool
        public var eventsSent: UInt64
        public var eventsReceived: UInt64
        /// Events held here that the peer has not acknowledged, over all namespaces.
        public var lag: UInt64

        public init(relay: String, address: String, dialed: Bool, eventsSent: UInt64, eventsReceived: UInt64, lag: UInt64) {
            self.relay = relay
            self.address = address
            self.dialed = dialed
            self.eventsSent = eventsSent
            self.eventsReceived = eventsReceived
            self.lag = lag
        }

        enum CodingKeys: String, CodingKey {
            case relay, address, dialed, lag
            case eventsSent = "events_sent"
            case eventsReceived = "events_received"
        }
    }

    public var relay: String
    public var incarnation: UInt32
    public var origin: String
    public var ready: Bool
    public var namespaceCount: Int
    public var durability: String
    public var peers: [Peer]

    public init(relay: String, incarnation: UInt32, origin: String, ready: Bool, namespaceCount: Int, durability: String, peers: [Peer]) {
        self.relay = relay
        self.incarnation = incarnation
        self.origin = origin
        self.ready = ready
        self.namespaceCount = namespaceCount
        self.durability = durability
        self.peers = peers
    }

    enum CodingKeys: String, CodingKey {
        case relay, incarnation, origin, ready, durability, peers
        case namespaceCount = "namespace_count"
    }
}

/// Writes the answers the relay sends most (events and append outcomes) as
/// JSON directly into bytes: the same text `JSONEncoder` with sorted keys
/// produces, without its per-value boxing, which dominated a busy relay's
/// profile. Absent optionals are omitted, as `JSONEncoder` omits them.
public struct JSONWriter {
    public private(set) var bytes: [UInt8] = []

    public init(capacity: Int = 256) { bytes.reserveCapacity(capacity) }

    mutating func raw(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func string(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        // Most strings (ids, keys, names, base64) need no escape: copied whole.
        let plain = text.utf8.withContiguousStorageIfAvailable { utf8 in
            for byte in utf8 where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { return false }
            bytes.append(contentsOf: utf8)
            return true
        }
        if plain == true {
            bytes.append(UInt8(ascii: "\""))
            return
        }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: bytes.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x08: bytes.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x0C: bytes.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [0x5C, UInt8(ascii: "u"), 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    mutating func number(_ value: UInt64) {
        // Digits are written in place, then reversed: no buffer of their own.
        let start = bytes.count
        var rest = value
        repeat {
            bytes.append(UInt8(ascii: "0") + UInt8(rest % 10))
            rest /= 10
        } while rest > 0
        bytes[start...].reverse()
    }

    /// `,"key":` (or `{"key":` for the first), keys written in sorted order by the caller.
    mutating func key(_ key: StaticString, first: inout Bool) {
        bytes.append(first ? UInt8(ascii: "{") : UInt8(ascii: ","))
        first = false
        bytes.append(UInt8(ascii: "\""))
        raw(key)
        raw("\":")
    }

    public mutating func write(_ outcome: AppendOutcome) {
        var first = true
        if let durability = outcome.durability { key("durability", first: &first); string(durability) }
        if let existing = outcome.existing { key("existing", first: &first); string(existing) }
        key("id", first: &first); string(outcome.id)
        if let last = outcome.lastPosition { key("last_position", first: &first); number(last) }
        if let origin = outcome.origin { key("origin", first: &first); string(origin) }
        if let originSeq = outcome.originSeq { key("origin_seq", first: &first); number(originSeq) }
        key("outcome", first: &first); string(outcome.outcome)
        if let position = outcome.position { key("position", first: &first); number(position) }
        raw("}")
    }

    public mutating func write(_ outcomes: AppendBatchResponse) {
        raw("{\"results\":[")
        for (index, outcome) in outcomes.results.enumerated() {
            if index > 0 { raw(",") }
            write(outcome)
        }
        raw("]}")
    }

    public mutating func write(_ page: PageOutput) {
        raw("{\"cursor\":")
        string(page.cursor)
        raw(",\"events\":[")
        for (index, event) in page.events.enumerated() {
            if index > 0 { raw(",") }
            write(event)
        }
        raw("],\"last_position\":")
        number(page.lastPosition)
        raw(",\"portable_cursor\":")
        string(page.portableCursor)
        raw("}")
    }

    /// Ends a JSON line.
    public mutating func newline() { bytes.append(0x0A) }

    public mutating func write(_ event: EventOutput) {
        var first = true
        if let author = event.author { key("author", first: &first); string(author) }
        key("id", first: &first); string(event.id)
        key("namespace", first: &first); string(event.namespace)
        key("origin", first: &first); string(event.origin)
        key("origin_seq", first: &first); number(event.originSeq)
        key("parents", first: &first)
        raw("[")
        for (index, parent) in event.parents.enumerated() {
            if index > 0 { raw(",") }
            string(parent)
        }
        raw("]")
        if let payload = event.payload { key("payload", first: &first); string(payload) }
        if let payload = event.payloadBase64 { key("payload_base64", first: &first); string(payload) }
        key("position", first: &first); number(event.position)
        if let signature = event.signature { key("signature", first: &first); string(signature) }
        key("time_ms", first: &first); number(event.timeMs)
        key("timestamp", first: &first); string(event.timestamp)
        key("type", first: &first); string(event.type)
        raw("}")
    }
}

/// `GET` / `PUT /v1/admin/blocked-peers`: the peer relays this relay refuses
/// links with (an operator's partition). `PUT` replaces the set; `[]` heals.
public struct BlockedPeersBody: Codable, Sendable, Equatable {
    /// Relay keys, hex.
    public var relays: [String]

    public init(relays: [String]) { self.relays = relays }
}
