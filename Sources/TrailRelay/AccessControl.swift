import Hummingbird
import TrailAPI
import TrailCore

/// Bearer tokens from the configuration, each scoped to namespace prefixes
/// and to reading, writing or both. With no tokens the API is open.
struct AccessControl: Sendable {
    enum Need: String, Sendable { case read, write }

    /// Tokens by the SHA-256 of their secret: a lookup never compares secrets
    /// byte by byte, so its time says nothing about how much of a guess matched.
    let tokens: [EventID: AccessToken]
    /// Tokens held by Ed25519 keys, and the sessions their holders opened.
    let sessions: KeySessions

    init(tokens: [AccessToken], relay: PublicKey) {
        var byDigest = [EventID: AccessToken]()
        for token in tokens where token.key == nil { byDigest[EventID(bytes: SHA256.hash(Array(token.secret.utf8)))] = token }
        self.tokens = byDigest
        sessions = KeySessions(tokens: tokens, relay: relay)
    }

    var isOpen: Bool { tokens.isEmpty && sessions.tokens.isEmpty }

    /// The secret a request presents: `Authorization: Bearer …`, or
    /// `access_token=` in the query (RFC 6750 §2.3) for WebSocket clients
    /// that cannot set headers.
    static func presented(_ headers: HTTPFields, query: String?) -> String? {
        if let header = headers.firstValue(.authorization) {
            let parts = header.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0].lowercased() == "bearer" { return String(parts[1]) }
            return nil
        }
        return query
    }

    /// Throws 401 without a known token, 403 when the token does not reach
    /// `namespace` (or, with nil, any namespace) for `need`.
    func authorize(_ secret: String?, _ need: Need, _ namespace: Namespace?) throws(APIError) -> AccessToken? {
        guard !isOpen else { return nil }
        guard let secret else {
            throw APIError(.unauthorized, "unauthorized", field: "Authorization", "this relay needs a bearer token (Authorization: Bearer <token>)")
        }
        guard let token = tokens[EventID(bytes: SHA256.hash(Array(secret.utf8)))] ?? sessions.token(forSecret: secret) else {
            throw APIError(.unauthorized, "unauthorized", field: "Authorization", "the bearer token is not one this relay knows (or its session expired)")
        }
        let allowed = need == .read ? token.canRead : token.canWrite
        guard allowed else {
            throw APIError(.forbidden, "forbidden", field: "Authorization", "token \"\(token.name)\" may not \(need.rawValue)")
        }
        if let namespace, !token.prefixes.contains(where: { namespace.name.hasPrefix($0) }) {
            throw APIError(
                .forbidden, "forbidden", field: "namespace",
                "token \"\(token.name)\" does not reach namespace \"\(namespace)\" (it reaches \(token.prefixes.map { "\"\($0)\"" }.joined(separator: ", ")))")
        }
        return token
    }
}
