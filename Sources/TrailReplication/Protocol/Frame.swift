public import TrailCore

/// One message of the peer protocol. On the wire each frame is a 4-byte
/// big-endian length (of what follows), a 1-byte type, then the fields.
/// `Docs/PROTOCOL.md` specifies every frame, field and rule.
public enum Frame: Sendable, Equatable {
    /// First frame each side sends.
    case hello(Hello)
    /// Second frame: the sender's identity key signed over the other side's nonce.
    case proof(Signature)
    /// "I hold this vector of `namespace`: send me what I lack, then keep pushing."
    case want(Namespace, VersionVector)
    /// The initial wants are all sent; pushing may start.
    case ready
    /// Segment bytes (Docs/FORMAT.md §4), sent only against credit.
    case segment([UInt8])
    /// The receiver may be sent this many more segments.
    case credit(UInt32)
    /// After applying a segment: the receiver's vector for the namespace.
    case ack(Namespace, VersionVector)
    /// Ask the receiver for these events by id (a parent this link does not carry).
    case fetch([EventID])
    /// The events of a fetch that the receiver holds, as records of any namespaces.
    case fetched([Segment.Record])
    /// Why the sender is closing the link.
    case error(ProtocolError)
    /// One relay's participants (its own, or forwarded), with the lease left on them.
    case presence(PresenceBoard.Snapshot)
    /// "Stop pushing me these origins' events of `namespace`: they reach me
    /// through another link."
    case prune(Namespace, [RelayID])
    /// "Push me these origins' events of `namespace` again, after what I
    /// hold (the vector)": undoes a PRUNE when the other path went quiet.
    case graft(Namespace, [RelayID], VersionVector)
    /// "I am linked to the relays of these origins (their current
    /// incarnations): do not push me their events, in any namespace; they
    /// come from their own relays." Each replaces the last; an origin left
    /// out is pushed again, after the vectors the sender's ACKs gave.
    case direct([RelayID])

    public struct Hello: Sendable, Equatable {
        public var protocolVersion: UInt16
        /// The relay's long-lived identity key: what allowlists name.
        public var relay: PublicKey
        /// The origin id of the relay's current incarnation: what its new events carry.
        public var origin: RelayID
        public var incarnation: UInt32
        /// 32 random bytes the other side must sign.
        public var nonce: [UInt8]
        /// The largest frame the sender accepts.
        public var frameBytesMax: UInt32
        /// Namespace prefixes the sender holds; empty means every namespace.
        public var prefixes: [String]
        /// The relay's key rotations, oldest first, ending at `relay`: a peer
        /// whose allowlist names an earlier key accepts this one through them.
        public var rotations: [KeyRotation]

        public init(protocolVersion: UInt16 = Frame.protocolVersion, relay: PublicKey, origin: RelayID, incarnation: UInt32,
                    nonce: [UInt8], frameBytesMax: UInt32, prefixes: [String], rotations: [KeyRotation] = []) {
            self.rotations = rotations
            self.protocolVersion = protocolVersion
            self.relay = relay
            self.origin = origin
            self.incarnation = incarnation
            self.nonce = nonce
            self.frameBytesMax = frameBytesMax
            self.prefixes = prefixes
        }
    }

    public static let protocolVersion: UInt16 = 3
    /// "TRAILP" then the version: the first bytes of every HELLO, so a stray
    /// client (an HTTP request, a port scan) is told apart from a bad peer.
    static let helloMagic: [UInt8] = Array("TRAILP".utf8)
    public static let nonceByteCount = 32
    /// Key rotations a HELLO may carry.
    public static let rotationCountMax = 64
    /// Frames up to this size are always accepted; HELLO may raise it.
    public static let frameBytesMinimum: UInt32 = 1 << 20
    static let prefixCountMax = 1024
    static let fetchCountMax = 4096
    static let presenceEntryCountMax = 100_000

    enum Kind: UInt8 {
        case hello = 1, proof, want, ready, segment, credit, ack, fetch, fetched, error, presence, prune, graft, direct
    }

    var kind: Kind {
        switch self {
        case .hello: .hello
        case .proof: .proof
        case .want: .want
        case .ready: .ready
        case .segment: .segment
        case .credit: .credit
        case .ack: .ack
        case .fetch: .fetch
        case .fetched: .fetched
        case .error: .error
        case .presence: .presence
        case .prune: .prune
        case .graft: .graft
        case .direct: .direct
        }
    }

    public var name: String { Self.name(of: kind) }

    /// What a PROOF signs: a domain tag, the nonce the other side sent, then
    /// the signer's and the verifier's identity keys. A fresh nonce per
    /// connection makes an old proof useless on a new one.
    public static func proofMessage(nonce: [UInt8], signer: PublicKey, verifier: PublicKey) -> [UInt8] {
        Array("trail.peer.v1".utf8) + nonce + signer.bytes + verifier.bytes
    }

    // MARK: Encoding

    /// The frame's bytes after the length prefix: type, then fields.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(capacity: 64)
        writer.write(kind.rawValue)
        switch self {
        case .hello(let hello):
            writer.write(contentsOf: Self.helloMagic)
            writer.write(hello.protocolVersion)
            hello.relay.write(into: &writer)
            hello.origin.write(into: &writer)
            writer.write(hello.incarnation)
            writer.write(contentsOf: hello.nonce)
            writer.write(hello.frameBytesMax)
            writer.write(UInt16(hello.prefixes.count))
            for prefix in hello.prefixes { Self.writeShortText(prefix, into: &writer) }
            if !hello.rotations.isEmpty {
                writer.write(UInt8(hello.rotations.count))
                for rotation in hello.rotations { writer.write(contentsOf: rotation.bytes) }
            }
        case .proof(let signature):
            writer.write(contentsOf: signature.bytes)
        case .prune(let namespace, let origins):
            Self.writeShortText(namespace.name, into: &writer)
            Self.write(origins, into: &writer)
        case .graft(let namespace, let origins, let vector):
            Self.writeShortText(namespace.name, into: &writer)
            Self.write(origins, into: &writer)
            Self.write(vector, into: &writer)
        case .direct(let origins):
            Self.write(origins, into: &writer)
        case .want(let namespace, let vector), .ack(let namespace, let vector):
            Self.writeShortText(namespace.name, into: &writer)
            Self.write(vector, into: &writer)
        case .ready:
            break
        case .segment(let bytes):
            writer.write(contentsOf: bytes)
        case .credit(let count):
            writer.write(count)
        case .fetch(let ids):
            writer.write(UInt16(ids.count))
            for id in ids { id.write(into: &writer) }
        case .fetched(let records):
            writer.write(UInt16(records.count))
            for record in records {
                record.origin.write(into: &writer)
                writer.write(record.originSeq)
                writer.write(UInt32(record.event.encodedByteCount))
                record.event.encode(into: &writer)
            }
        case .error(let error):
            writer.write(error.code.rawValue)
            let message = Array(error.message.utf8.prefix(4096))
            writer.write(UInt16(message.count))
            writer.write(contentsOf: message)
        case .presence(let snapshot):
            snapshot.origin.write(into: &writer)
            writer.write(snapshot.version)
            writer.write(snapshot.leaseMilliseconds)
            writer.write(UInt32(snapshot.entries.count))
            for entry in snapshot.entries {
                Self.writeShortText(entry.namespace.name, into: &writer)
                Self.writeShortText(entry.participant, into: &writer)
                writer.write(entry.joinedMilliseconds)
            }
        }
        return writer.bytes
    }

    private static func writeShortText(_ text: String, into writer: inout ByteWriter) {
        let bytes = Array(text.utf8.prefix(255))
        writer.write(UInt8(bytes.count))
        writer.write(contentsOf: bytes)
    }

    private static func readNamespace(_ reader: inout ByteReader<[UInt8]>) throws(DecodeError) -> Namespace {
        let at = reader.offset
        let name = try readShortText(&reader, "namespace")
        do { return try Namespace(name) } catch {
            throw reader.error("namespace", .invalid(error.description), at: at)
        }
    }

    /// Origins of PRUNE, GRAFT and DIRECT: a count, then each in ascending order.
    private static func write(_ origins: [RelayID], into writer: inout ByteWriter) {
        writer.write(UInt16(origins.count))
        for origin in origins.sorted() { origin.write(into: &writer) }
    }

    private static func readOrigins(_ reader: inout ByteReader<[UInt8]>, mayBeEmpty: Bool = false) throws(DecodeError) -> [RelayID] {
        let at = reader.offset
        let count = Int(try reader.readUInt16("origin count"))
        guard count >= 1 || mayBeEmpty else { throw reader.error("origin count", .invalid("is 0; PRUNE and GRAFT name at least one origin"), at: at) }
        var origins = [RelayID]()
        for index in 0..<count {
            let at = reader.offset
            let origin = try reader.readPublicKey("origin \(index)")
            if let previous = origins.last, !(previous < origin) {
                throw reader.error("origin \(index)", .invalid("is not above the previous origin: origins must be ascending"), at: at)
            }
            origins.append(origin)
        }
        return origins
    }

    private static func write(_ vector: VersionVector, into writer: inout ByteWriter) {
        let origins = vector.origins
        writer.write(UInt16(origins.count))
        for origin in origins {
            origin.write(into: &writer)
            writer.write(vector[origin])
        }
    }

    // MARK: Decoding

    /// Decodes a frame's bytes (after the length prefix). Never traps.
    public init(decoding bytes: [UInt8], limits: EventLimits = .default) throws(DecodeError) {
        var reader = ByteReader(bytes, context: "frame")
        let typeByte = try reader.readUInt8("type")
        guard let kind = Kind(rawValue: typeByte) else {
            throw reader.error("type", .invalid("\(typeByte) is not a frame type"), at: 0)
        }
        reader = ByteReader(bytes, offset: 1, context: "\(Self.name(of: kind)) frame")
        switch kind {
        case .hello:
            let magic = try reader.readBytes(Self.helloMagic.count, "magic")
            guard magic.elementsEqual(Self.helloMagic) else {
                throw reader.error("magic", .invalid("is not \"TRAILP\": not a Trail peer"), at: 1)
            }
            let version = try reader.readUInt16("protocol version")
            let relay = try reader.readPublicKey("relay key")
            let origin = try reader.readPublicKey("origin")
            let incarnation = try reader.readUInt32("incarnation")
            let nonce = Array(try reader.readBytes(Self.nonceByteCount, "nonce"))
            let frameBytesMax = try reader.readUInt32("frame size limit")
            let countOffset = reader.offset
            let count = Int(try reader.readUInt16("prefix count"))
            guard count <= Self.prefixCountMax else {
                throw reader.error("prefix count", .tooLarge(value: count, limit: Self.prefixCountMax), at: countOffset)
            }
            var prefixes = [String]()
            for index in 0..<count { prefixes.append(try Self.readShortText(&reader, "prefix \(index)")) }
            var rotations = [KeyRotation]()
            if reader.remaining > 0 {  // absent when the relay never rotated its key
                let rotationCountOffset = reader.offset
                let rotationCount = Int(try reader.readUInt8("rotation count"))
                guard rotationCount >= 1, rotationCount <= Self.rotationCountMax else {
                    throw reader.error("rotation count", .tooLarge(value: rotationCount, limit: Self.rotationCountMax), at: rotationCountOffset)
                }
                for index in 0..<rotationCount {
                    let offset = reader.offset
                    let bytes = try reader.readBytes(KeyRotation.byteCount, "rotation \(index)")
                    guard let rotation = try? KeyRotation(bytes: bytes) else {
                        throw reader.error("rotation \(index)", .invalid("is not a key rotation"), at: offset)
                    }
                    rotations.append(rotation)
                }
            }
            self = .hello(Hello(protocolVersion: version, relay: relay, origin: origin, incarnation: incarnation,
                                nonce: nonce, frameBytesMax: frameBytesMax, prefixes: prefixes, rotations: rotations))
        case .proof:
            self = .proof(try reader.readSignature("signature"))
        case .prune, .graft:
            let namespace = try Self.readNamespace(&reader)
            let origins = try Self.readOrigins(&reader)
            self = kind == .prune ? .prune(namespace, origins) : .graft(namespace, origins, try Self.readVector(&reader))
        case .direct:
            self = .direct(try Self.readOrigins(&reader, mayBeEmpty: true))
        case .want, .ack:
            let namespace = try Self.readNamespace(&reader)
            let vector = try Self.readVector(&reader)
            self = kind == .want ? .want(namespace, vector) : .ack(namespace, vector)
        case .ready:
            self = .ready
        case .segment:
            self = .segment(Array(try reader.readBytes(reader.remaining, "segment")))
        case .credit:
            self = .credit(try reader.readUInt32("count"))
        case .fetch:
            let at = reader.offset
            let count = Int(try reader.readUInt16("id count"))
            guard count <= Self.fetchCountMax else {
                throw reader.error("id count", .tooLarge(value: count, limit: Self.fetchCountMax), at: at)
            }
            var ids = [EventID]()
            for index in 0..<count { ids.append(EventID(bytes: try reader.readBytes(EventID.byteCount, "id \(index)"))) }
            self = .fetch(ids)
        case .fetched:
            let count = Int(try reader.readUInt16("record count"))
            var records = [Segment.Record]()
            for index in 0..<count {
                let origin = try reader.readPublicKey("record \(index) origin")
                let seqOffset = reader.offset
                let originSeq = try reader.readUInt64("record \(index) originSeq")
                guard originSeq >= 1 else { throw reader.error("record \(index) originSeq", .invalid("is 0"), at: seqOffset) }
                let length = Int(try reader.readUInt32("record \(index) length"))
                let eventOffset = reader.offset
                let eventBytes = Array(try reader.readBytes(length, "record \(index) event"))
                do {
                    records.append(Segment.Record(origin: origin, originSeq: originSeq, event: try Event(decoding: eventBytes, limits: limits)))
                } catch {
                    throw reader.error("record \(index) event", .invalid(error.description), at: eventOffset)
                }
            }
            self = .fetched(records)
        case .error:
            let raw = try reader.readUInt16("code")
            let length = Int(try reader.readUInt16("message length"))
            let message = String(decoding: try reader.readBytes(length, "message"), as: UTF8.self)
            self = .error(ProtocolError(ProtocolError.Code(rawValue: raw) ?? .unknown, message))
        case .presence:
            let origin = try reader.readPublicKey("origin")
            let version = try reader.readUInt64("version")
            let lease = try reader.readUInt32("lease")
            let countOffset = reader.offset
            let count = Int(try reader.readUInt32("entry count"))
            guard count <= Self.presenceEntryCountMax else {
                throw reader.error("entry count", .tooLarge(value: count, limit: Self.presenceEntryCountMax), at: countOffset)
            }
            var entries = [PresenceBoard.Entry]()
            for index in 0..<count {
                let at = reader.offset
                let name = try Self.readShortText(&reader, "entry \(index) namespace")
                let namespace: Namespace
                do { namespace = try Namespace(name) } catch {
                    throw reader.error("entry \(index) namespace", .invalid(error.description), at: at)
                }
                let participant = try Self.readShortText(&reader, "entry \(index) participant")
                let joined = try reader.readUInt64("entry \(index) joined")
                entries.append(PresenceBoard.Entry(namespace: namespace, participant: participant, joinedMilliseconds: joined))
            }
            self = .presence(PresenceBoard.Snapshot(origin: origin, version: version, leaseMilliseconds: lease, entries: entries))
        }
        try reader.expectEnd()
    }

    private static func name(of kind: Kind) -> String {
        switch kind {
        case .hello: "HELLO"
        case .proof: "PROOF"
        case .want: "WANT"
        case .ready: "READY"
        case .segment: "SEGMENT"
        case .credit: "CREDIT"
        case .ack: "ACK"
        case .fetch: "FETCH"
        case .fetched: "FETCHED"
        case .error: "ERROR"
        case .presence: "PRESENCE"
        case .prune: "PRUNE"
        case .graft: "GRAFT"
        case .direct: "DIRECT"
        }
    }

    private static func readShortText(_ reader: inout ByteReader<[UInt8]>, _ field: String) throws(DecodeError) -> String {
        let length = Int(try reader.readUInt8("\(field) length"))
        let at = reader.offset
        let bytes = try reader.readBytes(length, field)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw reader.error(field, .invalid("is not valid UTF-8"), at: at)
        }
        return text
    }

    private static func readVector(_ reader: inout ByteReader<[UInt8]>) throws(DecodeError) -> VersionVector {
        let count = Int(try reader.readUInt16("origin count"))
        var entries = [RelayID: UInt64]()
        var previous: PublicKey?
        for index in 0..<count {
            let at = reader.offset
            let origin = try reader.readPublicKey("origin \(index)")
            if let previous, !(previous < origin) {
                throw reader.error("origin \(index)", .invalid("is not above the previous origin: origins must be ascending"), at: at)
            }
            previous = origin
            let seqOffset = reader.offset
            let seq = try reader.readUInt64("origin \(index) originSeq")
            guard seq >= 1 else { throw reader.error("origin \(index) originSeq", .invalid("is 0; entries start at 1"), at: seqOffset) }
            entries[origin] = seq
        }
        return VersionVector(entries)
    }
}

/// Why a link closes: sent in an ERROR frame, logged by both sides.
public struct ProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: UInt16, Sendable {
        case unknown = 0
        case unsupportedVersion = 1
        case notAllowed = 2
        case badProof = 3
        case malformedFrame = 4
        case oversizedFrame = 5
        case outOfTurn = 6
        case badSegment = 7
        case invalidEvent = 8
        case staleIncarnation = 9
        case notHeld = 10
        case duplicateLink = 11
        case shuttingDown = 12
        case internalError = 13
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code) (\(code.rawValue)): \(message)" }
}
