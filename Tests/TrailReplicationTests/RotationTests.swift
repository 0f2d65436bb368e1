import Foundation
import Testing
import TrailCore
import TrailReplication
import TrailStore

/// Relay key rotation: a relay replaces its key (`Store.rotateIdentity`,
/// `trail identity --rotate`) and peers whose allowlists name the old key
/// accept the new one through the signed rotation; the old key is retired.
@Suite(.serialized) struct RotationTests {
    @Test func aRotatedRelayIsAcceptedThroughItsRotationAndKeepsReplicating() async throws {
        let directory = TemporaryDirectory("rotating")
        var b = try await TestRelay("b", directory: directory)
        try await b.write("doc/r", count: 5, tag: "before")
        let oldKey = b.store.relayID
        let origin = b.store.originID
        await b.stop()

        let rotation = try Store.rotateIdentity(directory: directory.path)
        #expect(rotation.previous == oldKey && rotation.isValid)
        b = try await TestRelay("b", directory: directory)
        #expect(b.store.relayID == rotation.next)
        #expect(b.store.rotations == [rotation])
        #expect(b.store.originID == origin, "events keep their origin across a rotation")

        // A allows only the old key; the rotation carries it to the new one.
        let a = try await TestRelay("a", allowed: [oldKey], allowAny: false)
        b.link(to: a)
        try await b.write("doc/r", count: 5, tag: "after")
        try await a.write("doc/r", count: 3, tag: "from a")
        #expect(try await converge([a, b], namespaces: ["doc/r"], timeout: .seconds(30)))
        #expect(try a.ids("doc/r").count == 13)
        #expect(try a.store.check(Namespace("doc/r")).isEmpty)
        await b.stop()
        await a.stop()
    }

    @Test func aForgedRotationIsRefusedAndARetiredKeyToo() async throws {
        let old = try SigningKey(seed: [UInt8](repeating: 0x61, count: 32))
        let new = try SigningKey(seed: [UInt8](repeating: 0x62, count: 32))
        let thief = try SigningKey(seed: [UInt8](repeating: 0x63, count: 32))
        let relay = try await TestRelay("guarding", allowed: [old.publicKey], allowAny: false)

        // A rotation to the thief's key that the old key never signed.
        let forged = KeyRotation(previous: old.publicKey, next: thief.publicKey, signature: thief.sign(KeyRotation.message(previous: old.publicKey, next: thief.publicKey)))
        let intruder = try await HostilePeer(port: relay.port)
        try await intruder.send(.hello(Frame.Hello(
            relay: thief.publicKey, origin: thief.publicKey, incarnation: 1,
            nonce: [UInt8](repeating: 1, count: 32), frameBytesMax: 1 << 20, prefixes: [], rotations: [forged])))
        let refusal = try #require(errorCode(in: try await intruder.receiveUntilClosed()))
        #expect(refusal.code == .badProof && refusal.message.contains("not signed"))
        await intruder.close()

        // The genuine rotation is accepted...
        let genuine = try await HostilePeer(port: relay.port)
        #expect(try await genuine.handshake(as: new, rotations: [KeyRotation(from: old, to: new.publicKey)]) != nil)
        await genuine.close()
        // ...and from then on the old key is retired.
        let stale = try await HostilePeer(port: relay.port)
        try await stale.send(.hello(Frame.Hello(
            relay: old.publicKey, origin: old.publicKey, incarnation: 1,
            nonce: [UInt8](repeating: 1, count: 32), frameBytesMax: 1 << 20, prefixes: [])))
        let retired = try #require(errorCode(in: try await stale.receiveUntilClosed()))
        #expect(retired.code == .notAllowed && retired.message.contains("retired"))
        await stale.close()
        await relay.stop()
    }
}
