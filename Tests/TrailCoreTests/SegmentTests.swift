import Testing
@testable import TrailCore

private let origins = [
    try! PublicKey(bytes: [UInt8](repeating: 1, count: 32)),
    try! PublicKey(bytes: [UInt8](repeating: 2, count: 32)),
]

/// `count` events in `namespace` alternating between two origins, each from originSeq 1.
private func sampleRecords(_ count: Int, namespace: String = "doc/design-42", payload: (Int) -> [UInt8] = { Array("edit \($0)".utf8) }) throws -> [Segment.Record] {
    var next = [UInt64](repeating: 1, count: origins.count)
    var previous: EventID?
    return try (0..<count).map { index in
        let event = try Event(
            namespace: Namespace(namespace), timestamp: HybridTimestamp(physicalMilliseconds: 1_000 + UInt64(index), logical: 0),
            parents: previous.map { [$0] } ?? [], type: "edit", payload: payload(index))
        previous = event.id
        let slot = index % origins.count
        defer { next[slot] += 1 }
        return Segment.Record(origin: origins[slot], originSeq: next[slot], event: event)
    }
}

/// Recomputes the checksum after tampering, as a hostile encoder would.
private func resealed(_ bytes: [UInt8]) -> [UInt8] {
    let content = Array(bytes.dropLast(Segment.checksumByteCount))
    return content + SHA256.hash(content)
}

@Suite struct SegmentTests {
    @Test(arguments: [true, false])
    func roundTripsRecordsInOrder(compress: Bool) throws {
        let records = try sampleRecords(50)
        let segment = try Segment(namespace: Namespace("doc/design-42"), firstPosition: 7, records: records)
        let decoded = try Segment(decoding: segment.encoded(compress: compress))
        #expect(decoded == segment)
        #expect(decoded.records.map(\.event.id) == records.map(\.event.id))
        #expect(decoded.advances == VersionVector([origins[0]: 25, origins[1]: 25]))
        #expect(decoded.firstPosition == 7)
    }

    /// Found by `Tools/fuzz segment` (a build that reads past the checksum):
    /// 36 bytes — the magic, then as many as a checksum — trapped in the
    /// header reader, which starts after the version byte. Refused as truncated.
    @Test func fuzzFindingASegmentOfMagicAndChecksumOnlyIsRefused() throws {
        for count in 36...37 {
            let bytes = Segment.magic + [UInt8](repeating: 1, count: count - 4)
            #expect(throws: DecodeError.self) { try Segment(decoding: bytes) }
        }
    }

    @Test func anEmptySegmentRoundTrips() throws {
        let segment = try Segment(namespace: Namespace("a"), records: [])
        #expect(try Segment(decoding: segment.encoded()) == segment)
    }

    @Test func compressesRepetitivePayloads() throws {
        let json = { (index: Int) in Array("{\"agent\":\"agent-\(index % 10)\",\"kind\":\"bid\",\"stake\":\(index % 100),\"task\":\"task-7\"}".utf8) }
        let records = try sampleRecords(1000, payload: json)
        let encoded = try Segment(namespace: Namespace("doc/design-42"), records: records).encoded()
        let raw = records.reduce(0) { $0 + $1.event.encodedByteCount }
        #expect(encoded.count * 2 < raw)
    }

    @Test func refusesRecordsThatDoNotFormARun() throws {
        var records = try sampleRecords(4)
        records.swapAt(0, 2)  // origin 0's seq 2 before its seq 1
        #expect(throws: Segment.Invalid.self) { try Segment(namespace: Namespace("doc/design-42"), records: records) }
        let other = try sampleRecords(1, namespace: "doc/other")
        #expect(throws: Segment.Invalid.self) { try Segment(namespace: Namespace("doc/design-42"), records: other) }
    }

    /// Any single damaged byte is caught, by the checksum or (for the checksum itself) by its mismatch.
    @Test func detectsEveryFlippedByte() throws {
        let encoded = try Segment(namespace: Namespace("doc/design-42"), records: sampleRecords(5)).encoded()
        for offset in stride(from: 0, to: encoded.count, by: 3) {
            var damaged = encoded
            damaged[offset] ^= 0x40
            #expect(throws: DecodeError.self) { try Segment(decoding: damaged) }
        }
        for length in stride(from: 0, to: encoded.count, by: 7) {
            #expect(throws: DecodeError.self) { try Segment(decoding: Array(encoded.prefix(length))) }
        }
    }

    @Test func namesTheChecksumWhenTheBytesWereAltered() throws {
        var encoded = try Segment(namespace: Namespace("doc/design-42"), records: sampleRecords(5)).encoded()
        encoded[40] ^= 1
        let error = try #require(throws: DecodeError.self) { try Segment(decoding: encoded) }
        #expect(error.reason == .checksumMismatch)
        #expect(error.description.contains("checksum"))
    }

    /// A hostile peer can write a valid checksum over nonsense: every field is checked anyway.
    @Test func refusesResealedNonsense() throws {
        let segment = try Segment(namespace: Namespace("doc/design-42"), records: sampleRecords(4))
        let plain = segment.encoded(compress: false)
        let rangesStart = 4 + 1 + 1 + 1 + "doc/design-42".utf8.count + 8 + 4 + 2

        // A record count the ranges do not cover.
        var count = plain
        count[rangesStart - 3] ^= 0x01
        #expect(throws: DecodeError.self) { try Segment(decoding: resealed(count)) }

        // An origin range that claims one more originSeq than there are records.
        var range = plain
        range[rangesStart + 32 + 8 + 7] &+= 1
        #expect(throws: DecodeError.self) { try Segment(decoding: resealed(range)) }

        // A body length far above the limit.
        var huge = plain
        let bodyLength = rangesStart + 2 * 48
        huge.replaceSubrange(bodyLength..<bodyLength + 4, with: [0xFF, 0xFF, 0xFF, 0xFF])
        let error = try #require(throws: DecodeError.self) { try Segment(decoding: resealed(huge)) }
        #expect(error.field == "body length")

        // An event altered inside the body: it no longer decodes, or decodes to another event.
        var body = plain
        body[body.count - Segment.checksumByteCount - 2] ^= 0xFF
        let altered = try? Segment(decoding: resealed(body))
        #expect(altered?.records.last?.event.id != segment.records.last?.event.id)

        // Unknown flags.
        var flags = plain
        flags[5] = 0x80
        #expect(throws: DecodeError.self) { try Segment(decoding: resealed(flags)) }
    }

    @Test func refusesSomethingElse() throws {
        let error = try #require(throws: DecodeError.self) { try Segment(decoding: Array(repeating: 0x41, count: 100)) }
        #expect(error.description.contains("not a Trail segment"))
    }

    /// Random bytes with a valid checksum never crash the decoder.
    @Test func survivesRandomResealedInput() throws {
        var random = SplitMix64(seed: 42)
        let base = try Segment(namespace: Namespace("doc/design-42"), records: sampleRecords(6)).encoded(compress: false)
        for _ in 0..<2000 {
            var bytes = base
            for _ in 0..<Int(random.next() % 4 + 1) {
                let at = Int(random.next() % UInt64(bytes.count - Segment.checksumByteCount))
                bytes[at] = UInt8(truncatingIfNeeded: random.next())
            }
            _ = try? Segment(decoding: resealed(bytes))
        }
    }
}
