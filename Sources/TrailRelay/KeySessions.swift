import Foundation
import TrailAPI
import TrailCore

/// Challenges issued to configured keys and the sessions they were redeemed
/// for, in memory: a restart ends every session (clients authenticate again).
/// Both tables are bounded; expired entries are dropped as new ones come.
final class KeySessions: Sendable {
    static let challengeLifetime: Duration = .seconds(60)
    static let sessionLifetime: Duration = .seconds(3600)
    static let challengeCountMax = 10_000
    static let sessionCountMax = 100_000

    private struct Challenge {
        let key: PublicKey
        let expires: ContinuousClock.Instant
    }
    private struct Session {
        let token: AccessToken
        let expires: ContinuousClock.Instant
    }

    /// Tokens held by keys, by key.
    let tokens: [PublicKey: AccessToken]
    let relay: PublicKey
    private let challenges = Locked<[[UInt8]: Challenge]>([:])
    /// Sessions by the SHA-256 of their bearer secret, as `AccessControl` keeps secrets.
    private let sessions = Locked<[EventID: Session]>([:])

    init(tokens: [AccessToken], relay: PublicKey) {
        var byKey = [PublicKey: AccessToken]()
        for token in tokens { if let key = token.key { byKey[key] = token } }
        self.tokens = byKey
        self.relay = relay
    }

    func challenge(for keyText: String, now: ContinuousClock.Instant = .now) throws(APIError) -> ChallengeOutput {
        let key = try Self.key(keyText)
        guard tokens[key] != nil else {
            throw APIError(.unauthorized, "unauthorized", field: "key", "key \(key.hex.prefix(16)) is not one this relay's tokens name")
        }
        var random = SystemRandomNumberGenerator()
        let bytes = (0..<ClientAuthentication.challengeByteCount).map { _ in UInt8.random(in: 0...255, using: &random) }
        try challenges.withLock { challenges throws(APIError) in
            if challenges.count >= Self.challengeCountMax { challenges = challenges.filter { $0.value.expires > now } }
            guard challenges.count < Self.challengeCountMax else {
                throw APIError(.serviceUnavailable, "overloaded", "\(Self.challengeCountMax) challenges are outstanding; retry shortly")
            }
            challenges[bytes] = Challenge(key: key, expires: now + Self.challengeLifetime)
        }
        return ChallengeOutput(challenge: Hex.encode(bytes), relay: relay.hex, expiresIn: Int(Self.challengeLifetime.components.seconds))
    }

    /// Checks the signature over a challenge issued to the key and not yet
    /// used, and opens a session with the key's token.
    func redeem(_ request: SessionRequest, now: ContinuousClock.Instant = .now) throws(APIError) -> SessionOutput {
        let key = try Self.key(request.key)
        guard let challenge = Hex.decode(request.challenge), challenge.count == ClientAuthentication.challengeByteCount else {
            throw APIError(.badRequest, "bad_field", field: "challenge", "expected the 64 hexadecimal digits of a challenge")
        }
        guard let signatureBytes = Hex.decode(request.signature), let signature = try? Signature(bytes: signatureBytes) else {
            throw APIError(.badRequest, "bad_field", field: "signature", "expected an Ed25519 signature, 128 hexadecimal digits")
        }
        // One use only, whatever the outcome: a failed attempt cannot be retried against the same challenge.
        let issued = challenges.withLock { $0.removeValue(forKey: challenge) }
        guard let issued, issued.key == key, issued.expires > now else {
            throw APIError(.unauthorized, "unauthorized", field: "challenge", "the challenge was not issued to this key, was used, or expired: ask for a new one")
        }
        guard key.verify(signature, message: ClientAuthentication.message(relay: relay, challenge: challenge)) else {
            throw APIError(.unauthorized, "unauthorized", field: "signature",
                           "the signature does not verify against key \(key.hex.prefix(16)) over \"trail.auth.v1\", the relay's key and the challenge")
        }
        guard let token = tokens[key] else {
            throw APIError(.unauthorized, "unauthorized", field: "key", "key \(key.hex.prefix(16)) is not one this relay's tokens name")
        }
        var random = SystemRandomNumberGenerator()
        let secret = "s." + Hex.encode((0..<32).map { _ in UInt8.random(in: 0...255, using: &random) })
        try sessions.withLock { sessions throws(APIError) in
            if sessions.count >= Self.sessionCountMax { sessions = sessions.filter { $0.value.expires > now } }
            guard sessions.count < Self.sessionCountMax else {
                throw APIError(.serviceUnavailable, "overloaded", "\(Self.sessionCountMax) sessions are open; retry later")
            }
            sessions[Self.digest(secret)] = Session(token: token, expires: now + Self.sessionLifetime)
        }
        return SessionOutput(token: secret, expiresIn: Int(Self.sessionLifetime.components.seconds), name: token.name)
    }

    /// The token of a live session, or nil.
    func token(forSecret secret: String, now: ContinuousClock.Instant = .now) -> AccessToken? {
        guard secret.hasPrefix("s.") else { return nil }
        return sessions.withLock { sessions in
            let digest = Self.digest(secret)
            guard let session = sessions[digest] else { return nil }
            guard session.expires > now else {
                sessions[digest] = nil
                return nil
            }
            return session.token
        }
    }

    static func digest(_ secret: String) -> EventID { EventID(bytes: SHA256.hash(Array(secret.utf8))) }

    static func key(_ text: String) throws(APIError) -> PublicKey {
        guard let key = try? PublicKey(hex: text) else {
            throw APIError(.badRequest, "bad_field", field: "key", "expected an Ed25519 public key, 64 hexadecimal digits")
        }
        return key
    }
}
