import Testing
@testable import TrailCore

@Suite struct NamespaceTests {
    @Test(arguments: ["a", "doc/design-42", "auction/task-7/bids", String(repeating: "n", count: 255), "ünïcode/名前"])
    func validNamesAreAccepted(_ name: String) throws {
        #expect(try Namespace(name).name == name)
    }

    @Test(arguments: ["", "/lead", "trail/", "a//b", "tab\there", String(repeating: "n", count: 256)])
    func invalidNamesAreRefusedWithAReason(_ name: String) {
        #expect(throws: ModelError.self) { try Namespace(name) }
    }

    @Test func prefixMatchesWholeSegments() throws {
        let namespace = try Namespace("auction/task-7")
        #expect(namespace.hasPrefix("auction"))
        #expect(namespace.hasPrefix("auction/"))
        #expect(namespace.hasPrefix("auction/task-7"))
        #expect(!namespace.hasPrefix("auction/task"))
        #expect(!namespace.hasPrefix("auc"))
    }
}

@Suite struct HybridClockTests {
    @Test func readingsAlwaysIncreaseEvenWhenPhysicalTimeStandsStillOrGoesBack() {
        var clock = HybridClock()
        var previous = HybridTimestamp.zero
        for physical: UInt64 in [100, 100, 100, 99, 50, 101, 101] {
            let reading = clock.now(physicalMilliseconds: physical)
            #expect(reading > previous)
            previous = reading
        }
        #expect(previous.physicalMilliseconds == 101)
    }

    @Test func observingARemoteReadingMovesPastIt() throws {
        var clock = HybridClock()
        let remote = HybridTimestamp(physicalMilliseconds: 5_000, logical: 7)
        let reading = try clock.observe(remote, physicalMilliseconds: 4_990)
        #expect(reading > remote)
        #expect(clock.now(physicalMilliseconds: 4_991) > reading)
    }

    @Test func aRemoteClockTooFarAheadIsRefused() {
        var clock = HybridClock(driftMillisecondsMax: 1_000)
        #expect(throws: ClockError.self) {
            try clock.observe(HybridTimestamp(physicalMilliseconds: 10_001, logical: 0), physicalMilliseconds: 9_000)
        }
        #expect(clock.last == .zero)
    }

    @Test func logicalOverflowBorrowsTheNextMillisecond() {
        var clock = HybridClock(last: HybridTimestamp(physicalMilliseconds: 10, logical: .max))
        let reading = clock.now(physicalMilliseconds: 10)
        #expect(reading == HybridTimestamp(physicalMilliseconds: 11, logical: 0))
    }
}

@Suite struct VersionVectorTests {
    let a = try! RelayID(bytes: [UInt8](repeating: 1, count: 32))
    let b = try! RelayID(bytes: [UInt8](repeating: 2, count: 32))

    @Test func compareMergeAndDifference() {
        let x = VersionVector([a: 3, b: 1])
        let y = VersionVector([a: 2, b: 4])
        #expect(x.compare(y) == .concurrent)
        #expect(x.compare(x) == .equal)
        let merged = x.merging(y)
        #expect(merged == VersionVector([a: 3, b: 4]))
        #expect(x.compare(merged) == .before)
        #expect(merged.compare(x) == .after)
        #expect(merged.difference(x) == [b: 2...4])
        #expect(x.difference(merged).isEmpty)
        #expect(VersionVector([a: 0]) == VersionVector())
    }

    @Test func cursorTextRoundTripsBothForms() throws {
        let fast = Cursor.position(relay: a.fingerprint, position: 12_345)
        #expect(try Cursor(text: fast.text) == fast)
        let portable = Cursor.vector(VersionVector([a: 3, b: 900_000]))
        #expect(try Cursor(text: portable.text) == portable)
        #expect(fast.text.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        #expect(fast.text.count < 40)
    }

    @Test func alteredOrCutCursorTextIsRefused() throws {
        let text = Cursor.vector(VersionVector([a: 3, b: 9])).text
        var altered = Array(text)
        altered[5] = altered[5] == "A" ? "B" : "A"
        #expect(throws: DecodeError.self) { try Cursor(text: String(altered)) }
        for cut in 0..<text.count {
            #expect(throws: DecodeError.self) { try Cursor(text: String(text.prefix(cut))) }
        }
        #expect(throws: DecodeError.self) { try Cursor(text: "not a cursor!") }
        #expect(throws: DecodeError.self) { try Cursor(text: String(repeating: "A", count: 300_000)) }
    }
}

@Suite struct CryptoTests {
    @Test func sha256MatchesTheStandardVector() {
        #expect(Hex.encode(SHA256.hash(Array("abc".utf8))) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    /// RFC 8032 test 1: the empty message under the published key.
    @Test func ed25519MatchesRFC8032() throws {
        let key = try SigningKey(seed: Hex.decode("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")!)
        #expect(key.publicKey.hex == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        let signature = key.sign([UInt8]())
        #expect(Hex.encode(signature.bytes) == "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b")
        #expect(key.publicKey.verify(signature, message: [UInt8]()))
        #expect(!key.publicKey.verify(signature, message: [0]))
    }

    @Test func base64URLRoundTripsEveryLength() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 37 + 11) }
            #expect(Base64URL.decode(Base64URL.encode(bytes)) == bytes)
        }
        #expect(Base64URL.decode("ab=") == nil)
        #expect(Base64URL.decode("a") == nil)
    }
}

@Suite struct UTF8TextTests {
    @Test(arguments: ["", "bench/one", "ünïcode/名前", "emoji 🚀 end"])
    func validTextDecodesToItself(_ text: String) {
        #expect(String(validUTF8: Array(text.utf8)) == text)
        #expect(String(validUTF8: Array(text.utf8)[...]) == text)
    }

    @Test(arguments: [[0xFF], [0x61, 0xC3], [0xC3, 0x28], [0xE2, 0x82], [0xED, 0xA0, 0x80], [0x61, 0x80, 0x62]] as [[UInt8]])
    func invalidBytesAreRefused(_ bytes: [UInt8]) {
        #expect(String(validUTF8: bytes) == nil)
    }
}
