import TrailCore

/// A strict JSON reader (RFC 8259) for the append body, the relay's hottest
/// input: it parses into a small tree without Foundation's boxing, and its
/// errors give the byte offset. Depth is bounded, so a hostile body cannot
/// exhaust the stack.
public enum JSONNode: Equatable, Sendable {
    case null
    case bool(Bool)
    /// The number as written (the append body has no numeric fields; kept for errors).
    case number(String)
    case string(String)
    case array([JSONNode])
    /// Keys in order of appearance; a repeated key is an error.
    case object([(String, JSONNode)])

    public static func == (lhs: JSONNode, rhs: JSONNode) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.number(let a), .number(let b)), (.string(let a), .string(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    /// An array of strings; errors name `field`, or `field[i]` for an item.
    func strings(field: String) throws(InputError) -> [String] {
        guard case .array(let items) = self else {
            throw InputError(field: field, reason: "expected an array, found \(kindName)")
        }
        var texts = [String]()
        texts.reserveCapacity(items.count)
        for (index, item) in items.enumerated() {
            guard case .string(let text) = item else {
                throw InputError(field: "\(field)[\(index)]", reason: "expected a string, found \(item.kindName)")
            }
            texts.append(text)
        }
        return texts
    }

    var kindName: String {
        switch self {
        case .null: "null"
        case .bool: "a boolean"
        case .number: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}

public struct JSONReader {
    public static let depthMax = 32

    let bytes: UnsafeRawBufferPointer
    var offset = 0

    /// Parses one JSON value filling the whole buffer (whitespace aside).
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(InputError) -> JSONNode {
        var reader = JSONReader(bytes: bytes)
        reader.skipSpace()
        let value = try reader.value(depth: 0)
        reader.skipSpace()
        guard reader.offset == bytes.count else { throw reader.fail("unexpected text after the JSON value") }
        return value
    }

    func fail(_ reason: String) -> InputError {
        InputError(field: "body", reason: "is not valid JSON: \(reason) at byte \(offset)")
    }

    mutating func skipSpace() {
        while offset < bytes.count {
            switch bytes[offset] {
            case 0x20, 0x09, 0x0A, 0x0D: offset += 1
            default: return
            }
        }
    }

    mutating func value(depth: Int) throws(InputError) -> JSONNode {
        guard depth < Self.depthMax else { throw fail("nesting deeper than \(Self.depthMax)") }
        guard offset < bytes.count else { throw fail("the body ends where a value was expected") }
        switch bytes[offset] {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): try literal("true"); return .bool(true)
        case UInt8(ascii: "f"): try literal("false"); return .bool(false)
        case UInt8(ascii: "n"): try literal("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
        default: throw fail("unexpected character")
        }
    }

    mutating func literal(_ word: StaticString) throws(InputError) {
        let count = word.utf8CodeUnitCount
        guard offset + count <= bytes.count else { throw fail("unexpected end") }
        for index in 0..<count where bytes[offset + index] != word.utf8Start[index] { throw fail("unexpected character") }
        offset += count
    }

    mutating func number() throws(InputError) -> String {
        let start = offset
        if bytes[offset] == UInt8(ascii: "-") { offset += 1 }
        func digits(_ reader: inout JSONReader) -> Int {
            let from = reader.offset
            while reader.offset < reader.bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(reader.bytes[reader.offset]) { reader.offset += 1 }
            return reader.offset - from
        }
        guard offset < bytes.count else { throw fail("a number ends early") }
        if bytes[offset] == UInt8(ascii: "0") { offset += 1 } else if digits(&self) == 0 { throw fail("a number needs digits") }
        if offset < bytes.count, bytes[offset] == UInt8(ascii: ".") {
            offset += 1
            guard digits(&self) > 0 else { throw fail("a fraction needs digits") }
        }
        if offset < bytes.count, bytes[offset] | 0x20 == UInt8(ascii: "e") {
            offset += 1
            if offset < bytes.count, bytes[offset] == UInt8(ascii: "+") || bytes[offset] == UInt8(ascii: "-") { offset += 1 }
            guard digits(&self) > 0 else { throw fail("an exponent needs digits") }
        }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<offset]), as: UTF8.self)
    }

    mutating func string() throws(InputError) -> String {
        offset += 1  // the opening quote
        let start = offset
        // The common case: no escapes, so the bytes are the string (checked as UTF-8).
        while offset < bytes.count {
            let byte = bytes[offset]
            if byte == UInt8(ascii: "\"") {
                let raw = UnsafeRawBufferPointer(rebasing: bytes[start..<offset])
                offset += 1
                guard let text = String(validUTF8: raw) else { throw fail("a string is not valid UTF-8") }
                return text
            }
            if byte == UInt8(ascii: "\\") { break }
            guard byte >= 0x20 else { throw fail("a control character inside a string") }
            offset += 1
        }
        var out = [UInt8](UnsafeRawBufferPointer(rebasing: bytes[start..<offset]))
        while offset < bytes.count {
            let byte = bytes[offset]
            switch byte {
            case UInt8(ascii: "\""):
                offset += 1
                guard let text = String(validUTF8: out) else { throw fail("a string is not valid UTF-8") }
                return text
            case UInt8(ascii: "\\"):
                offset += 1
                guard offset < bytes.count else { throw fail("the body ends inside an escape") }
                let escape = bytes[offset]
                offset += 1
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escape)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar) {
                        guard offset + 1 < bytes.count, bytes[offset] == UInt8(ascii: "\\"), bytes[offset + 1] == UInt8(ascii: "u") else {
                            throw fail("a lone high surrogate")
                        }
                        offset += 2
                        let low = try hex4()
                        guard (0xDC00..<0xE000).contains(low) else { throw fail("a high surrogate without its low half") }
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00..<0xE000).contains(scalar) {
                        throw fail("a lone low surrogate")
                    }
                    guard let unicode = Unicode.Scalar(scalar) else { throw fail("an invalid \\u escape") }
                    out.append(contentsOf: Array(String(Character(unicode)).utf8))
                default: throw fail("an unknown escape")
                }
            default:
                guard byte >= 0x20 else { throw fail("a control character inside a string") }
                out.append(byte)
                offset += 1
            }
        }
        throw fail("the body ends inside a string")
    }

    mutating func hex4() throws(InputError) -> UInt32 {
        guard offset + 4 <= bytes.count else { throw fail("a \\u escape ends early") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[offset]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw fail("a \\u escape needs four hex digits")
            }
            value = value << 4 | UInt32(digit)
            offset += 1
        }
        return value
    }

    mutating func array(depth: Int) throws(InputError) -> JSONNode {
        offset += 1
        var items = [JSONNode]()
        skipSpace()
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "]") {
            offset += 1
            return .array(items)
        }
        while true {
            skipSpace()
            items.append(try value(depth: depth + 1))
            skipSpace()
            guard offset < bytes.count else { throw fail("the body ends inside an array") }
            if bytes[offset] == UInt8(ascii: ",") { offset += 1; continue }
            if bytes[offset] == UInt8(ascii: "]") { offset += 1; return .array(items) }
            throw fail("expected , or ] in an array")
        }
    }

    mutating func object(depth: Int) throws(InputError) -> JSONNode {
        offset += 1
        var members = [(String, JSONNode)]()
        skipSpace()
        if offset < bytes.count, bytes[offset] == UInt8(ascii: "}") {
            offset += 1
            return .object(members)
        }
        while true {
            skipSpace()
            guard offset < bytes.count, bytes[offset] == UInt8(ascii: "\"") else { throw fail("expected a key in quotes") }
            let key = try string()
            guard !members.contains(where: { $0.0 == key }) else { throw fail("the key \"\(key)\" appears twice") }
            skipSpace()
            guard offset < bytes.count, bytes[offset] == UInt8(ascii: ":") else { throw fail("expected : after a key") }
            offset += 1
            skipSpace()
            members.append((key, try value(depth: depth + 1)))
            skipSpace()
            guard offset < bytes.count else { throw fail("the body ends inside an object") }
            if bytes[offset] == UInt8(ascii: ",") { offset += 1; continue }
            if bytes[offset] == UInt8(ascii: "}") { offset += 1; return .object(members) }
            throw fail("expected , or } in an object")
        }
    }
}

extension AppendBody {
    /// The append body from JSON bytes: one event object, or `{"events": [...]}`.
    /// Field errors name the path (`events[2].parents[0]`); unknown fields are refused.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(InputError) -> AppendBody {
        let root = try JSONReader.parse(bytes)
        guard case .object(let members) = root else {
            throw InputError(field: "body", reason: "expected an object, found \(root.kindName)")
        }
        if let events = members.first(where: { $0.0 == "events" }) {
            if let other = members.first(where: { $0.0 != "events" }) {
                throw InputError(field: other.0, reason: "unknown field (a batch holds only \"events\")")
            }
            guard case .array(let items) = events.1 else {
                throw InputError(field: "events", reason: "expected an array, found \(events.1.kindName)")
            }
            var inputs = [EventInput]()
            inputs.reserveCapacity(items.count)
            for (index, item) in items.enumerated() { inputs.append(try EventInput(item, field: "events[\(index)]")) }
            return .batch(inputs)
        }
        return .one(try EventInput(root, field: ""))
    }
}

extension EventInput {
    init(_ node: JSONNode, field: String) throws(InputError) {
        guard case .object(let members) = node else {
            throw InputError(field: field.isEmpty ? "body" : field, reason: "expected an object, found \(node.kindName)")
        }
        self.init()
        func path(_ key: String) -> String { field.isEmpty ? key : "\(field).\(key)" }
        func text(_ key: String, _ value: JSONNode) throws(InputError) -> String? {
            switch value {
            case .string(let text): return text
            case .null: return nil
            default: throw InputError(field: path(key), reason: "expected a string, found \(value.kindName)")
            }
        }
        for (key, value) in members {
            switch key {
            case "type": type = try text(key, value)
            case "payload": payload = try text(key, value)
            case "payload_base64": payloadBase64 = try text(key, value)
            case "author": author = try text(key, value)
            case "timestamp": timestamp = try text(key, value)
            case "signature": signature = try text(key, value)
            case "encoded": encoded = try text(key, value)
            case "parents":
                switch value {
                case .null: parents = nil
                default: parents = try value.strings(field: path(key))
                }
            default:
                throw InputError(field: path(key), reason: "unknown field (known: \(CodingKeys.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
        }
    }
}

extension AppendBatchResponse {
    /// A batch answer from JSON bytes, read without Foundation (a bulk client reads thousands at once).
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(InputError) -> AppendBatchResponse {
        guard case .object(let members) = try JSONReader.parse(bytes),
              case .array(let items)? = members.first(where: { $0.0 == "results" })?.1 else {
            throw InputError(field: "results", reason: "expected {\"results\": [...]}")
        }
        var results = [AppendOutcome]()
        results.reserveCapacity(items.count)
        for (index, item) in items.enumerated() { results.append(try AppendOutcome(item, field: "results[\(index)]")) }
        return AppendBatchResponse(results: results)
    }
}

extension AppendOutcome {
    init(_ node: JSONNode, field: String) throws(InputError) {
        guard case .object(let members) = node else { throw InputError(field: field, reason: "expected an object") }
        var outcome: String?, id: String?
        self.init(outcome: "", id: "")
        for (key, value) in members {
            switch (key, value) {
            case ("outcome", .string(let text)): outcome = text
            case ("id", .string(let text)): id = text
            case ("origin", .string(let text)): origin = text
            case ("durability", .string(let text)): durability = text
            case ("existing", .string(let text)): existing = text
            case ("position", .number(let text)): position = UInt64(text)
            case ("origin_seq", .number(let text)): originSeq = UInt64(text)
            case ("last_position", .number(let text)): lastPosition = UInt64(text)
            default: continue  // fields added later are not this reader's business
            }
        }
        guard let outcome, let id else { throw InputError(field: field, reason: "an outcome needs \"outcome\" and \"id\"") }
        self.outcome = outcome
        self.id = id
    }
}

extension BlockedPeersBody {
    /// The operator's body for `PUT /v1/admin/blocked-peers`, read as strictly
    /// as an append body: `{"relays": [...]}` and nothing else, each key a string.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(InputError) -> BlockedPeersBody {
        let root = try JSONReader.parse(bytes)
        guard case .object(let members) = root else {
            throw InputError(field: "body", reason: "expected {\"relays\": [\"<relay key, hex>\", …]}, found \(root.kindName)")
        }
        if let other = members.first(where: { $0.0 != "relays" }) {
            throw InputError(field: other.0, reason: "unknown field (the body holds only \"relays\")")
        }
        guard let relays = members.first?.1 else { throw InputError(field: "relays", reason: "is required") }
        return BlockedPeersBody(relays: try relays.strings(field: "relays"))
    }
}

extension StreamMessage {
    /// A subscription message from JSON bytes, read without Foundation: a
    /// subscriber reads one per event and is often the busiest part of an
    /// agent. Fields added later are skipped, as `JSONDecoder` would.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(InputError) -> StreamMessage {
        guard case .object(let members) = try JSONReader.parse(bytes) else {
            throw InputError(field: "message", reason: "expected an object")
        }
        var message = StreamMessage(kind: "")
        var kind: String?
        for (key, value) in members {
            switch key {
            case "kind": kind = try value.text(field: key)
            case "cursor": message.cursor = try value.optionalText(field: key)
            case "portable_cursor": message.portableCursor = try value.optionalText(field: key)
            case "events":
                guard let items = try value.items(field: key) else { continue }
                var events = [EventOutput]()
                events.reserveCapacity(items.count)
                for (index, item) in items.enumerated() { events.append(try EventOutput(item, field: "events[\(index)]")) }
                message.events = events
            case "participants":
                guard let items = try value.items(field: key) else { continue }
                var participants = [ParticipantOutput]()
                for (index, item) in items.enumerated() { participants.append(try ParticipantOutput(item, field: "participants[\(index)]")) }
                message.participants = participants
            case "participant": if value != .null { message.participant = try ParticipantOutput(value, field: key) }
            case "error": if value != .null { message.error = try ErrorBody.Detail(value, field: key) }
            default: continue
            }
        }
        guard let kind else { throw InputError(field: "kind", reason: "is required") }
        message.kind = kind
        return message
    }
}

extension JSONNode {
    /// The members of an object; errors name `field`.
    func members(field: String) throws(InputError) -> [(String, JSONNode)] {
        guard case .object(let members) = self else { throw InputError(field: field, reason: "expected an object, found \(kindName)") }
        return members
    }

    /// The string; `field` (built only for an error) names it.
    func text(field: @autoclosure () -> String) throws(InputError) -> String {
        guard case .string(let text) = self else { throw InputError(field: field(), reason: "expected a string, found \(kindName)") }
        return text
    }

    func optionalText(field: @autoclosure () -> String) throws(InputError) -> String? {
        if case .null = self { return nil }
        return try text(field: field())
    }

    /// An integer of type `T` (a position, a count, a status); `field` names it on an error.
    func integer<T: FixedWidthInteger>(_: T.Type = T.self, field: @autoclosure () -> String) throws(InputError) -> T {
        guard case .number(let text) = self, let value = T(text) else {
            throw InputError(field: field(), reason: "expected \(T.isSigned ? "an integer" : "an unsigned integer"), found \(kindName)")
        }
        return value
    }

    /// The items of an array, or nil for null.
    func items(field: String) throws(InputError) -> [JSONNode]? {
        switch self {
        case .array(let items): return items
        case .null: return nil
        default: throw InputError(field: field, reason: "expected an array, found \(kindName)")
        }
    }
}

extension EventOutput {
    /// An event as the relay writes it; every required field must be there.
    init(_ node: JSONNode, field: String) throws(InputError) {
        var id: String?, namespace: String?, origin: String?, type: String?, timestamp: String?
        var position: UInt64?, originSeq: UInt64?, timeMs: UInt64?
        var parents = [String](), author: String?, payload: String?, payloadBase64: String?, signature: String?
        for (key, value) in try node.members(field: field) {
            func path() -> String { "\(field).\(key)" }  // only for an error
            switch key {
            case "id": id = try value.text(field: path())
            case "namespace": namespace = try value.text(field: path())
            case "origin": origin = try value.text(field: path())
            case "type": type = try value.text(field: path())
            case "timestamp": timestamp = try value.text(field: path())
            case "position": position = try value.integer(field: path())
            case "origin_seq": originSeq = try value.integer(field: path())
            case "time_ms": timeMs = try value.integer(field: path())
            case "parents": parents = try value.strings(field: path())
            case "author": author = try value.optionalText(field: path())
            case "payload": payload = try value.optionalText(field: path())
            case "payload_base64": payloadBase64 = try value.optionalText(field: path())
            case "signature": signature = try value.optionalText(field: path())
            default: continue
            }
        }
        guard let id, let namespace, let origin, let type, let timestamp, let position, let originSeq, let timeMs else {
            let missing = [("id", id == nil), ("namespace", namespace == nil), ("origin", origin == nil), ("type", type == nil),
                           ("timestamp", timestamp == nil), ("position", position == nil), ("origin_seq", originSeq == nil),
                           ("time_ms", timeMs == nil)].first { $0.1 }!.0
            throw InputError(field: "\(field).\(missing)", reason: "is required")
        }
        self.init(id: id, namespace: namespace, position: position, origin: origin, originSeq: originSeq, type: type,
                  author: author, timestamp: timestamp, timeMs: timeMs, parents: parents,
                  payload: payload, payloadBase64: payloadBase64, signature: signature)
    }
}

extension ParticipantOutput {
    init(_ node: JSONNode, field: String) throws(InputError) {
        var id: String?, relay: String?, joinedMs: UInt64?
        for (key, value) in try node.members(field: field) {
            switch key {
            case "id": id = try value.text(field: "\(field).id")
            case "relay": relay = try value.text(field: "\(field).relay")
            case "joined_ms": joinedMs = try value.integer(field: "\(field).joined_ms")
            default: continue
            }
        }
        guard let id, let relay, let joinedMs else { throw InputError(field: field, reason: "a participant needs id, relay and joined_ms") }
        self.init(id: id, relay: relay, joinedMs: joinedMs)
    }
}

extension ErrorBody.Detail {
    init(_ node: JSONNode, field: String) throws(InputError) {
        var status: Int?, code: String?, detailField: String?, message: String?
        for (key, value) in try node.members(field: field) {
            switch key {
            case "status": status = try value.integer(field: "\(field).status")
            case "code": code = try value.text(field: "\(field).code")
            case "field": detailField = try value.optionalText(field: "\(field).field")
            case "message": message = try value.text(field: "\(field).message")
            default: continue
            }
        }
        guard let status, let code, let message else { throw InputError(field: field, reason: "an error needs status, code and message") }
        self.init(status: status, code: code, field: detailField, message: message)
    }
}
