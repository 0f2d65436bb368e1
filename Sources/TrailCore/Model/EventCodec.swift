/// The canonical binary encoding of an event, version 1. `Docs/FORMAT.md`
/// specifies it byte by byte; the layout constants here are frozen.
enum EventCodec {
    static let version: UInt8 = 1
    static let authorNone: UInt8 = 0
    static let authorEd25519: UInt8 = 1
    static let signatureNone: UInt8 = 0
    static let signatureEd25519: UInt8 = 1

    static func encodeBody(
        namespace: Namespace, author: PublicKey?, timestamp: HybridTimestamp,
        parents: [EventID], type: String, payload: [UInt8]
    ) -> [UInt8] {
        var writer = ByteWriter(
            capacity: 1 + 1 + namespace.name.utf8.count + 1 + 32 + 8 + 2 + 32 * parents.count
                + 1 + type.utf8.count + 4 + payload.count + 65)
        encodeBody(namespace: namespace, author: author, timestamp: timestamp, parents: parents, type: type,
                   payload: payload, into: &writer)
        return writer.bytes
    }

    static func encodeBody(
        namespace: Namespace, author: PublicKey?, timestamp: HybridTimestamp,
        parents: [EventID], type: String, payload: [UInt8], into writer: inout ByteWriter
    ) {
        let namespaceBytes = namespace.name.utf8
        let typeBytes = type.utf8
        writer.write(version)
        writer.write(UInt8(namespaceBytes.count))
        writer.write(contentsOf: namespaceBytes)
        if let author {
            writer.write(authorEd25519)
            author.write(into: &writer)
        } else {
            writer.write(authorNone)
        }
        writer.write(timestamp.rawValue)
        writer.write(UInt16(parents.count))
        for parent in parents { parent.write(into: &writer) }
        writer.write(UInt8(typeBytes.count))
        writer.write(contentsOf: typeBytes)
        writer.write(UInt32(payload.count))
        writer.write(contentsOf: payload)
    }

    static func encodeSignature(_ signature: Signature?, into writer: inout ByteWriter) {
        if let signature {
            writer.write(signatureEd25519)
            writer.write(contentsOf: signature.bytes)
        } else {
            writer.write(signatureNone)
        }
    }

    // Specialized for the two containers events are decoded from: the compiler
    // left this generic, and the generic version was a tenth of replay's time
    // in runtime metadata lookups alone.
    @_specialize(where Bytes == UnsafeRawBufferPointer)
    @_specialize(where Bytes == [UInt8])
    static func decode<Bytes: RandomAccessCollection<UInt8>>(
        _ bytes: Bytes, from start: Int, limits: EventLimits, storedID: EventID?, storedNamespace: Namespace?, typeHint: String? = nil
    ) throws(DecodeError) -> Event where Bytes.Index == Int {
        var reader = ByteReader(bytes, offset: start, context: "event")
        let version = try reader.readUInt8("version")
        guard version == Self.version else { throw reader.error("version", .unsupportedVersion(version), at: start) }

        let namespaceLength = Int(try reader.readUInt8("namespace length"))
        let namespaceStart = reader.offset
        let namespaceBytes = try reader.readBytes(namespaceLength, "namespace")
        let namespace: Namespace
        if let storedNamespace, namespaceBytes.elementsEqual(storedNamespace.name.utf8) {
            namespace = storedNamespace
        } else {
            guard let namespaceText = String(validUTF8: namespaceBytes) else {
                throw reader.error("namespace", .invalid("is not valid UTF-8"), at: namespaceStart)
            }
            do { namespace = try Namespace(namespaceText) } catch {
                throw reader.error("namespace", .invalid(error.description), at: namespaceStart)
            }
        }

        let authorKind = try reader.readUInt8("author kind")
        let author: PublicKey?
        switch authorKind {
        case authorNone: author = nil
        case authorEd25519: author = try reader.readPublicKey("author")
        default: throw reader.error("author kind", .invalid("is \(authorKind); expected 0 (none) or 1 (Ed25519)"), at: reader.offset - 1)
        }

        let timestamp = HybridTimestamp(rawValue: try reader.readUInt64("timestamp"))

        let parentCountOffset = reader.offset
        let parentCount = Int(try reader.readUInt16("parent count"))
        guard parentCount <= EventLimits.parentCountMax else {
            throw reader.error("parent count", .tooLarge(value: parentCount, limit: EventLimits.parentCountMax), at: parentCountOffset)
        }
        var parents = [EventID]()
        parents.reserveCapacity(parentCount)
        for index in 0..<parentCount {
            let start = reader.offset
            let parent = EventID(bytes: try reader.readBytes(EventID.byteCount, "parent \(index)"))
            if let previous = parents.last, !(previous < parent) {
                throw reader.error("parent \(index)", .invalid("is not above the previous parent: parents must be ascending and distinct"), at: start)
            }
            parents.append(parent)
        }

        let typeLength = Int(try reader.readUInt8("type length"))
        let typeStart = reader.offset
        let typeBytes = try reader.readBytes(typeLength, "type")
        let type: String
        if let typeHint, typeBytes.elementsEqual(typeHint.utf8) {
            type = typeHint  // the previous event's type, checked when it was decoded
        } else {
            guard let text = String(validUTF8: typeBytes) else {
                throw reader.error("type", .invalid("is not valid UTF-8"), at: typeStart)
            }
            do { try Event.validate(type: text) } catch {
                throw reader.error("type", .invalid(error.description), at: typeStart)
            }
            type = text
        }

        let payloadLengthOffset = reader.offset
        let payloadLength = Int(try reader.readUInt32("payload length"))
        guard payloadLength <= limits.payloadBytesMax else {
            throw reader.error("payload length", .tooLarge(value: payloadLength, limit: limits.payloadBytesMax), at: payloadLengthOffset)
        }
        let payload = Array(try reader.readBytes(payloadLength, "payload"))
        let bodyEnd = reader.offset

        let signatureKind = try reader.readUInt8("signature kind")
        let signature: Signature?
        switch signatureKind {
        case signatureNone: signature = nil
        case signatureEd25519: signature = try reader.readSignature("signature")
        default: throw reader.error("signature kind", .invalid("is \(signatureKind); expected 0 (none) or 1 (Ed25519)"), at: reader.offset - 1)
        }
        try reader.expectEnd()

        let id = storedID ?? EventID(bytes: bytes[start..<bodyEnd].withContiguousStorageIfAvailable {
            SHA256.hash(buffer: UnsafeRawBufferPointer($0))
        } ?? SHA256.hash(Array(bytes[start..<bodyEnd])))
        return Event(
            namespace: namespace, author: author, timestamp: timestamp, parents: parents, type: type,
            payload: payload, signature: signature, id: id)
    }
}
