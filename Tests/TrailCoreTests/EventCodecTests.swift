import Testing
@testable import TrailCore

private func sampleEvent(parents: [EventID] = [], payload: [UInt8] = Array("hello".utf8)) throws -> Event {
    try Event(
        namespace: Namespace("auction/task-7"), timestamp: HybridTimestamp(physicalMilliseconds: 1_700_000_000_000, logical: 3),
        parents: parents, type: "bid", payload: payload)
}

@Suite struct EventCodecTests {
    @Test func encodingRoundTripsAndKeepsTheID() throws {
        let key = try SigningKey(seed: [UInt8](repeating: 7, count: 32))
        let parent = EventID(bytes: [UInt8](repeating: 0xAB, count: 32))
        let unsigned = try Event(
            namespace: Namespace("doc/design-42"), author: key.publicKey,
            timestamp: HybridTimestamp(physicalMilliseconds: 5, logical: 1), parents: [parent],
            type: "edit", payload: [1, 2, 3])
        let signed = unsigned.signed(by: key)
        let decoded = try Event(decoding: signed.encoded)
        #expect(decoded == signed)
        #expect(decoded.id == unsigned.id)
        #expect(decoded.signatureStatus == .valid)
    }

    /// The bytes are the format in Docs/FORMAT.md; another language reproduces this exact id.
    @Test func canonicalBytesMatchTheDocumentedLayout() throws {
        let event = try Event(
            namespace: Namespace("a/b"), timestamp: HybridTimestamp(rawValue: 0x0102_0304_0506_0708),
            type: "t", payload: [0xFF])
        let expected: [UInt8] = [
            0x01,  // version
            0x03, 0x61, 0x2F, 0x62,  // namespace "a/b"
            0x00,  // no author
            0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,  // timestamp
            0x00, 0x00,  // no parents
            0x01, 0x74,  // type "t"
            0x00, 0x00, 0x00, 0x01, 0xFF,  // payload
        ]
        #expect(event.body == expected)
        #expect(event.encoded == expected + [0x00])
        #expect(event.id.hex == Hex.encode(SHA256.hash(expected)))
        // Computed independently with Python's hashlib over the bytes above.
        #expect(event.id.hex == "bf524174f013ee737f09b57dfc3278847f10572eda5f5ed174a24decf1cbd874")
    }

    /// Replay reuses the previous event's type when the bytes are the same; a
    /// type that differs from the hint is still checked in full.
    @Test func storedDecodingReusesOnlyAnEqualType() throws {
        let event = try sampleEvent()
        let encoded = event.encoded
        try encoded.withUnsafeBytes { bytes in
            let hinted = try Event(stored: bytes, offset: 0, id: event.id, namespace: event.namespace, typeHint: "bid")
            #expect(hinted == event)
            let other = try Event(stored: bytes, offset: 0, id: event.id, namespace: event.namespace, typeHint: "ask")
            #expect(other == event)
        }
        // "bid" → "b\u{1}d": a control character, refused although the hint is "bid".
        var bad = encoded
        let typeAt = 1 + 1 + event.namespace.name.utf8.count + 1 + 8 + 2 + 1
        #expect(Array(bad[typeAt..<typeAt + 3]) == Array("bid".utf8))
        bad[typeAt + 1] = 0x01
        bad.withUnsafeBytes { bytes in
            #expect(throws: DecodeError.self) {
                try Event(stored: bytes, offset: 0, id: event.id, namespace: event.namespace, typeHint: "bid")
            }
            // The same through a run of untrusted events: the previous one's type is no pass.
            #expect(throws: DecodeError.self) { try Event(decoding: bytes, after: event) }
        }
        try encoded.withUnsafeBytes { bytes in
            let next = try Event(decoding: bytes, after: event)
            #expect(next == event && next.id == event.id)
        }
    }

    @Test func parentsAreCanonicalSoTheSameFactsGiveTheSameID() throws {
        let a = EventID(bytes: [UInt8](repeating: 1, count: 32))
        let b = EventID(bytes: [UInt8](repeating: 2, count: 32))
        #expect(try sampleEvent(parents: [b, a, b]).id == sampleEvent(parents: [a, b]).id)
        #expect(try sampleEvent(parents: [a]).id != sampleEvent(parents: [b]).id)
    }

    @Test func tamperedSignatureOrPayloadIsDetected() throws {
        let key = try SigningKey(seed: [UInt8](repeating: 9, count: 32))
        let event = try Event(namespace: Namespace("rep/votes"), author: key.publicKey, timestamp: .zero, type: "vouch", payload: [1])
            .signed(by: key)
        var bytes = event.encoded
        bytes[bytes.count - 1] ^= 0x01
        #expect(try Event(decoding: bytes).signatureStatus == .invalid)
        var payload = event.encoded
        let payloadIndex = event.body.count - 1
        payload[payloadIndex] ^= 0x01
        let altered = try Event(decoding: payload)
        #expect(altered.id != event.id)
        #expect(altered.signatureStatus == .invalid)
    }

    struct BadInput: Sendable, CustomTestStringConvertible {
        let name: String
        let mutate: @Sendable ([UInt8]) -> [UInt8]
        let field: String
        var testDescription: String { name }
    }

    /// Table of damaged inputs: each is refused with an error naming the field.
    static let badInputs: [BadInput] = [
        BadInput(name: "empty", mutate: { _ in [] }, field: "version"),
        BadInput(name: "version 2", mutate: { var b = $0; b[0] = 2; return b }, field: "version"),
        BadInput(name: "namespace length past end", mutate: { var b = $0; b[1] = 250; return b }, field: "namespace"),
        BadInput(name: "empty namespace", mutate: { var b = $0; b[1] = 0; return b }, field: "namespace"),
        BadInput(name: "author kind 5", mutate: { var b = $0; b[2 + 14] = 5; return b }, field: "author kind"),
        BadInput(name: "truncated in timestamp", mutate: { Array($0.prefix(20)) }, field: "timestamp"),
        BadInput(name: "cut before signature kind", mutate: { Array($0.dropLast()) }, field: "signature kind"),
        BadInput(name: "trailing byte", mutate: { $0 + [0] }, field: "end"),
        BadInput(name: "signature kind 9", mutate: { var b = $0; b[b.count - 1] = 9; return b }, field: "signature kind"),
        BadInput(name: "payload length huge", mutate: { bytes in
            var b = bytes
            let at = b.count - 1 - 5 - 4
            b[at] = 0x7F
            return b
        }, field: "payload length"),
    ]

    @Test(arguments: badInputs)
    func damagedBytesGiveATypedErrorNamingTheField(_ input: BadInput) throws {
        let good = try sampleEvent().encoded
        #expect(good.count > 20)
        do {
            _ = try Event(decoding: input.mutate(good))
            Issue.record("decoded damaged input \(input.name)")
        } catch {
            #expect(error.field == input.field, "\(error)")
        }
    }

    @Test func unsortedParentsAreRefused() throws {
        let a = EventID(bytes: [UInt8](repeating: 1, count: 32))
        let b = EventID(bytes: [UInt8](repeating: 2, count: 32))
        let event = try sampleEvent(parents: [a, b])
        var bytes = event.encoded
        // Swap the two parents in place.
        let start = 1 + 1 + 14 + 1 + 8 + 2
        let first = Array(bytes[start..<start + 32])
        bytes.replaceSubrange(start..<start + 32, with: bytes[start + 32..<start + 64])
        bytes.replaceSubrange(start + 32..<start + 64, with: first)
        #expect(throws: DecodeError.self) { try Event(decoding: bytes) }
    }

    @Test func payloadLimitIsEnforcedAtBothEdges() throws {
        let limits = EventLimits(payloadBytesMax: 16)
        _ = try Event(namespace: Namespace("x"), timestamp: .zero, type: "t", payload: [UInt8](repeating: 0, count: 16), limits: limits)
        #expect(throws: ModelError.payloadTooLarge(bytes: 17, limit: 16)) {
            try Event(namespace: Namespace("x"), timestamp: .zero, type: "t", payload: [UInt8](repeating: 0, count: 17), limits: limits)
        }
        let big = try Event(namespace: Namespace("x"), timestamp: .zero, type: "t", payload: [UInt8](repeating: 0, count: 17))
        #expect(throws: DecodeError.self) { try Event(decoding: big.encoded, limits: limits) }
    }

    @Test func randomBytesNeverCrashTheDecoder() {
        var generator = SystemRandomNumberGenerator()
        for length in 0..<400 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            _ = try? Event(decoding: bytes)
        }
        // Valid prefix, random tail: every truncation point of a real event.
        let good = (try? sampleEvent().encoded) ?? []
        for cut in 0..<good.count { #expect(throws: DecodeError.self) { try Event(decoding: Array(good.prefix(cut))) } }
    }
}
