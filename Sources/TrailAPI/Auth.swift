public import TrailCore

/// Ed25519 challenge authentication: a client whose key is configured on a
/// token asks for a challenge, signs it, and gets a session token that it
/// presents as a bearer token until it expires (Docs/API.md, Authentication).
public enum ClientAuthentication {
    public static let domain = Array("trail.auth.v1".utf8)
    public static let challengeByteCount = 32

    /// What the client signs: "trail.auth.v1" ‖ the relay's key (32) ‖ the challenge (32).
    public static func message(relay: PublicKey, challenge: [UInt8]) -> [UInt8] {
        domain + relay.bytes + challenge
    }
}

/// `POST /v1/auth/challenge` body.
public struct ChallengeRequest: Codable, Sendable {
    /// The client's Ed25519 public key, 64 hex digits.
    public var key: String
    public init(key: String) { self.key = key }
}

public struct ChallengeOutput: Codable, Sendable {
    /// 32 random bytes, 64 hex digits: sign them within `expiresIn` seconds.
    public var challenge: String
    /// The relay's key, which the signature covers too.
    public var relay: String
    public var expiresIn: Int

    public init(challenge: String, relay: String, expiresIn: Int) {
        self.challenge = challenge
        self.relay = relay
        self.expiresIn = expiresIn
    }

    enum CodingKeys: String, CodingKey {
        case challenge, relay
        case expiresIn = "expires_in"
    }
}

/// `POST /v1/auth/session` body.
public struct SessionRequest: Codable, Sendable {
    public var key: String
    public var challenge: String
    /// Ed25519 signature (128 hex digits) over `ClientAuthentication.message`.
    public var signature: String

    public init(key: String, challenge: String, signature: String) {
        self.key = key
        self.challenge = challenge
        self.signature = signature
    }
}

public struct SessionOutput: Codable, Sendable {
    /// A bearer token for `Authorization: Bearer …`, valid for `expiresIn` seconds.
    public var token: String
    public var expiresIn: Int
    /// The configured token whose reach the session has.
    public var name: String

    public init(token: String, expiresIn: Int, name: String) {
        self.token = token
        self.expiresIn = expiresIn
        self.name = name
    }

    enum CodingKeys: String, CodingKey {
        case token, name
        case expiresIn = "expires_in"
    }
}
