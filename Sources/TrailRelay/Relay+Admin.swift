import Foundation
import Hummingbird
import TrailAPI
import TrailCore

extension Relay {
    /// Operator routes: need a token that may write every namespace (prefix
    /// ""), or an open relay.
    func authorizeAdmin(_ request: Request) throws(APIError) {
        if let token = try access.authorize(Self.secret(request), .write, nil), !token.prefixes.contains("") {
            throw APIError(.forbidden, "forbidden", field: "Authorization", "token \"\(token.name)\" is not an operator token (it must reach every namespace)")
        }
    }

    func blockedPeers() -> BlockedPeersBody {
        BlockedPeersBody(relays: replicator.blockedPeers.map(\.hex).sorted())
    }

    /// Replaces the set of blocked peers: their links drop now and are refused until unblocked.
    func setBlockedPeers(_ request: Request) async throws -> BlockedPeersBody {
        var request = request
        try authorizeAdmin(request)
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: 1 << 20) } catch {
            throw APIError(.contentTooLarge, "too_large", field: "body", "the body exceeds 1 MiB")
        }
        let input = try body.readableBytesView.withUnsafeBytes { bytes throws(InputError) in try BlockedPeersBody.parse(bytes) }
        var keys = Set<RelayID>()
        for (index, text) in input.relays.enumerated() {
            guard let key = try? PublicKey(hex: text) else {
                throw APIError(.badRequest, "invalid_relay", field: "relays[\(index)]", "\"\(text)\" is not a relay key (64 hex digits)")
            }
            keys.insert(key)
        }
        replicator.blockedPeers = keys
        return blockedPeers()
    }
}
