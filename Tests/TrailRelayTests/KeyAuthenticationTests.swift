import AsyncHTTPClient
import Foundation
import NIOCore
import Testing
import TrailAPI
import TrailClient
import TrailCore
import TrailTestSupport

/// Ed25519 challenge authentication: a token named by a key instead of a
/// secret; its holder signs a challenge and gets a session token with the
/// token's reach. Wrong keys, wrong signatures and reused challenges are 401.
@Suite struct KeyAuthenticationTests {
    let agent = try! SigningKey(seed: [UInt8](repeating: 0x71, count: 32))
    let stranger = try! SigningKey(seed: [UInt8](repeating: 0x72, count: 32))

    func relay() async throws -> (ServeProcess, TemporaryDirectory) {
        let config = TemporaryDirectory("config")
        try FileManager.default.createDirectory(atPath: config.path, withIntermediateDirectories: true)
        let file = config.path + "/trail.json"
        try """
            {"tokens": [{"name": "keyed agent", "key": "\(agent.publicKey.hex)", "prefixes": ["auction/"], "access": "read-write"},
                        {"name": "admin", "secret": "admin-secret-0123456789"}]}
            """.write(toFile: file, atomically: true, encoding: .utf8)
        return (try await ServeProcess([], environment: ["TRAIL_CONFIG": file]), config)
    }

    @Test func aKeyHolderAuthenticatesByChallengeAndGetsItsTokensReach() async throws {
        let (relay, config) = try await relay()
        defer { Task { await relay.stop(); _ = config } }
        let client = TrailClient(relays: [relay.url], signingKey: agent)
        let namespace = try Namespace("auction/keyed")
        let placed = try await client.append(type: "bid", payload: "40", to: namespace)
        #expect(placed.position == 1)
        #expect(try await client.read(namespace, limit: 10).events.count == 1)
        // The session has the token's reach: not beyond auction/.
        await #expect(throws: TrailClientError.self) { _ = try await client.append(type: "bid", payload: "1", to: try Namespace("other/x")) }
        // Without authenticating, nothing.
        #expect(try await http("GET", relay.url + "/v1/events/auction/keyed").0 == 401)
    }

    @Test func badKeysSignaturesAndReusedChallengesAreRefused() async throws {
        let (relay, config) = try await relay()
        defer { Task { await relay.stop(); _ = config } }
        func challenge(_ key: SigningKey) async throws -> (Int, String) {
            try await http("POST", relay.url + "/v1/auth/challenge", body: #"{"key": "\#(key.publicKey.hex)"}"#)
        }
        let (unknown, unknownText) = try await challenge(stranger)
        #expect(unknown == 401 && unknownText.contains("\"field\":\"key\""), "\(unknownText)")
        #expect(try await http("POST", relay.url + "/v1/auth/challenge", body: #"{"key": "zz"}"#).0 == 400)

        let (status, text) = try await challenge(agent)
        #expect(status == 200)
        let issued = try JSONDecoder().decode(ChallengeOutput.self, from: Data(text.utf8))
        let relayKey = try PublicKey(hex: issued.relay)
        let bytes = try #require(Hex.decode(issued.challenge))
        func session(_ signature: Signature) async throws -> (Int, String) {
            let body = try JSONEncoder().encode(SessionRequest(key: agent.publicKey.hex, challenge: issued.challenge, signature: Hex.encode(signature.bytes)))
            return try await http("POST", relay.url + "/v1/auth/session", body: String(decoding: body, as: UTF8.self))
        }
        // Signed by the wrong key: refused, and the challenge is spent.
        let (forged, forgedText) = try await session(stranger.sign(ClientAuthentication.message(relay: relayKey, challenge: bytes)))
        #expect(forged == 401 && forgedText.contains("signature"), "\(forgedText)")
        let (reused, reusedText) = try await session(agent.sign(ClientAuthentication.message(relay: relayKey, challenge: bytes)))
        #expect(reused == 401 && reusedText.contains("challenge"), "\(reusedText)")

        // A fresh challenge, rightly signed: a session token that reads auction/.
        let fresh = try JSONDecoder().decode(ChallengeOutput.self, from: Data(try await challenge(agent).1.utf8))
        let freshBytes = try #require(Hex.decode(fresh.challenge))
        let body = try JSONEncoder().encode(SessionRequest(
            key: agent.publicKey.hex, challenge: fresh.challenge,
            signature: Hex.encode(agent.sign(ClientAuthentication.message(relay: relayKey, challenge: freshBytes)).bytes)))
        let (opened, openedText) = try await http("POST", relay.url + "/v1/auth/session", body: String(decoding: body, as: UTF8.self))
        #expect(opened == 201, "\(openedText)")
        let output = try JSONDecoder().decode(SessionOutput.self, from: Data(openedText.utf8))
        #expect(output.name == "keyed agent" && output.expiresIn == 3600)
        #expect(try await http("GET", relay.url + "/v1/namespaces", token: output.token).0 == 200)
        #expect(try await http("POST", relay.url + "/v1/events/other/x", body: #"{"type":"a"}"#, token: output.token).0 == 403)
    }
}
