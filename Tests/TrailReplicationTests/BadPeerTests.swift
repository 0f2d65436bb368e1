import Foundation
import Testing
import TrailCore
import TrailReplication
import TrailStore

/// A relay meets peers that are wrong or hostile: each is refused with an
/// ERROR frame naming the reason, and the relay's data stays as it was.
@Suite(.serialized) struct BadPeerTests {
    let stranger = try! SigningKey(seed: [UInt8](repeating: 0x51, count: 32))
    let friend = try! SigningKey(seed: [UInt8](repeating: 0x52, count: 32))

    /// A relay holding 10 events in `doc/a`, allowing only `friend`.
    func guardedRelay() async throws -> TestRelay {
        let relay = try await TestRelay("guarded", allowed: [friend.publicKey], allowAny: false)
        try await relay.write("doc/a", count: 10, tag: "held")
        return relay
    }

    func expectUnchanged(_ relay: TestRelay, _ before: VersionVector) throws {
        #expect(relay.store.vector(of: try Namespace("doc/a")) == before)
        #expect(try relay.store.check(Namespace("doc/a")).isEmpty)
        #expect(try relay.ids("doc/a").count == 10)
    }

    @Test func aRelayNotOnTheAllowlistIsRefused() async throws {
        let relay = try await guardedRelay()
        let peer = try await HostilePeer(port: relay.port)
        try await peer.send(.hello(Frame.Hello(
            relay: stranger.publicKey, origin: stranger.publicKey, incarnation: 1,
            nonce: [UInt8](repeating: 1, count: 32), frameBytesMax: 1 << 20, prefixes: [])))
        let error = try #require(errorCode(in: try await peer.receiveUntilClosed()))
        #expect(error.code == .notAllowed)
        #expect(error.message.contains(stranger.publicKey.hex))
        await peer.close()
        await relay.stop()
    }

    @Test func aProofForAnotherNonceIsRefused() async throws {
        let relay = try await guardedRelay()
        let peer = try await HostilePeer(port: relay.port)
        // A replayed proof: signed over a nonce from some earlier connection.
        _ = try await peer.handshake(as: friend, signNonce: [UInt8](repeating: 7, count: 32))
        let error = try #require(errorCode(in: try await peer.receiveUntilClosed()))
        #expect(error.code == .badProof)
        await peer.close()
        await relay.stop()
    }

    @Test func somethingThatIsNotATrailPeerIsRefused() async throws {
        let relay = try await guardedRelay()
        let before = relay.store.vector(of: try Namespace("doc/a"))
        let http = try await HostilePeer(port: relay.port)
        try await http.write(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        let error = try #require(errorCode(in: try await http.receiveUntilClosed()))
        #expect(error.code == .oversizedFrame)
        await http.close()

        let unknownType = try await HostilePeer(port: relay.port)
        try await unknownType.write([0, 0, 0, 3, 0x99, 1, 2])
        let malformed = try #require(errorCode(in: try await unknownType.receiveUntilClosed()))
        #expect(malformed.code == .malformedFrame)
        #expect(malformed.message.contains("153 is not a frame type"))
        await unknownType.close()

        let truncated = try await HostilePeer(port: relay.port)
        try await truncated.write([0, 0, 1, 0, 1, 2, 3])
        await truncated.close()
        try expectUnchanged(relay, before)
        await relay.stop()
    }

    /// A connection that never finishes the handshake is closed after the handshake timeout.
    @Test func aSilentPeerIsCutOffAfterTheHandshakeTimeout() async throws {
        let relay = try await TestRelay("impatient", allowed: [friend.publicKey], allowAny: false) {
            $0.handshakeTimeout = .milliseconds(300)
        }
        let silent = try await HostilePeer(port: relay.port)
        let start = ContinuousClock.now
        _ = try await silent.receiveUntilClosed()
        let waited = ContinuousClock.now - start
        #expect(waited >= .milliseconds(250) && waited < .seconds(5), "closed after \(waited)")
        await silent.close()
        await relay.stop()
    }

    @Test func framesOutOfTurnEndTheLink() async throws {
        let relay = try await guardedRelay()
        let before = relay.store.vector(of: try Namespace("doc/a"))
        let peer = try await HostilePeer(port: relay.port)
        let hello = try #require(try await peer.handshake(as: friend))
        try await peer.send(.hello(hello))
        let error = try #require(errorCode(in: try await peer.receiveUntilClosed()))
        #expect(error.code == .outOfTurn)
        #expect(error.message.contains("HELLO after the handshake"))

        // Segments beyond the credit the relay granted.
        let flooder = try await HostilePeer(port: relay.port)
        try await flooder.handshake(as: friend)
        let segment = try Segment(namespace: Namespace("doc/a"), records: []).encoded()
        for _ in 0..<20 { try await flooder.send(.segment(segment)) }
        let flood = try #require(errorCode(in: try await flooder.receiveUntilClosed()))
        #expect(flood.code == .outOfTurn)
        try expectUnchanged(relay, before)
        await relay.stop()
    }

    @Test func aDamagedSegmentIsRefused() async throws {
        let relay = try await guardedRelay()
        let before = relay.store.vector(of: try Namespace("doc/a"))
        let event = try Event(namespace: Namespace("doc/a"), timestamp: relay.store.now(), type: "note", payload: [1, 2, 3])
        var bytes = try Segment(namespace: Namespace("doc/a"), records: [
            Segment.Record(origin: friend.publicKey, originSeq: 1, event: event)]).encoded()
        bytes[bytes.count / 2] ^= 0x10
        let peer = try await HostilePeer(port: relay.port)
        try await peer.handshake(as: friend)
        try await peer.send(.ready)
        try await peer.send(.segment(bytes))
        let error = try #require(errorCode(in: try await peer.receiveUntilClosed()))
        #expect(error.code == .badSegment)
        #expect(error.message.contains("checksum"))
        try expectUnchanged(relay, before)
        await relay.stop()
    }

    @Test func aForgedSignatureIsRefused() async throws {
        let relay = try await guardedRelay()
        let before = relay.store.vector(of: try Namespace("doc/a"))
        let author = try SigningKey(seed: [UInt8](repeating: 0x61, count: 32))
        let forger = try SigningKey(seed: [UInt8](repeating: 0x62, count: 32))
        let unsigned = try Event(namespace: Namespace("doc/a"), author: author.publicKey, timestamp: relay.store.now(),
                                 type: "vouch", payload: [1])
        // The author's event bytes with a signature made by another key.
        var encoded = unsigned.encoded
        encoded.removeLast()
        encoded += [1] + forger.sign(unsigned.signedMessage).bytes
        let forged = try Event(decoding: encoded)
        #expect(forged.signatureStatus == .invalid)
        let segment = try Segment(namespace: Namespace("doc/a"), records: [
            Segment.Record(origin: friend.publicKey, originSeq: 1, event: forged)]).encoded()
        let peer = try await HostilePeer(port: relay.port)
        try await peer.handshake(as: friend)
        try await peer.send(.ready)
        try await peer.send(.segment(segment))
        let error = try #require(errorCode(in: try await peer.receiveUntilClosed()))
        #expect(error.code == .invalidEvent)
        #expect(error.message.contains("signature"))
        try expectUnchanged(relay, before)
        #expect(relay.store.vector(of: try Namespace("doc/a"))[friend.publicKey] == 0)
        await relay.stop()
    }

    /// After all that, a good peer still links and converges.
    @Test func theRelayStillServesGoodPeers() async throws {
        let relay = try await guardedRelay()
        let garbage = try await HostilePeer(port: relay.port)
        try await garbage.write([UInt8](repeating: 0xFF, count: 64))
        _ = try await garbage.receiveUntilClosed()
        let good = try await TestRelay("good", allowAny: true)
        // The guarded relay allows only `friend`: a fresh relay needs its own key allowed.
        let allowing = try await TestRelay("allowing", allowed: [good.store.relayID], allowAny: false)
        try await allowing.write("doc/a", count: 5, tag: "x")
        good.link(to: allowing)
        #expect(try await converge([good, allowing], namespaces: ["doc/a"]))
        for relay in [relay, good, allowing] { await relay.stop() }
    }
}
