public import Foundation
public import TrailCore

/// What one link has done, for metrics, `trail` status output and tests.
public struct LinkStatus: Sendable, CustomStringConvertible {
    public var peer: PublicKey
    public var peerOrigin: RelayID
    public var address: String
    /// Whether this relay opened the connection.
    public var dialed: Bool
    public var connectedAt: Date
    public var segmentsSent: UInt64 = 0
    public var segmentsReceived: UInt64 = 0
    public var eventsSent: UInt64 = 0
    public var eventsReceived: UInt64 = 0
    /// Frame bytes of segments, as on the wire.
    public var bytesSent: UInt64 = 0
    public var bytesReceived: UInt64 = 0
    /// Events from this peer that equivocate (another event at the same origin and originSeq).
    public var conflicts: UInt64 = 0
    /// Event ids asked of this peer with FETCH (parents this relay's pending events wait on).
    public var fetchesSent: Int = 0
    /// Events this peer sent in answer to FETCH.
    public var eventsFetched: UInt64 = 0
    /// PRUNEs this relay sent (origins it gets through other links first) and received; GRAFTs likewise.
    public var prunesSent: Int = 0
    public var prunesReceived: Int = 0
    public var graftsSent: Int = 0
    public var graftsReceived: Int = 0
    /// Per namespace, the vector the peer last acknowledged holding.
    public var acknowledged: [Namespace: VersionVector] = [:]
    /// The origins the peer takes from their own relays (its DIRECT): this link does not carry them.
    public var peerDirect: Set<RelayID> = []

    public var description: String {
        "\(dialed ? "to" : "from") \(address) relay \(peer.hex.prefix(16)): sent \(eventsSent) events in \(segmentsSent) segments (\(bytesSent) B), received \(eventsReceived) in \(segmentsReceived) (\(bytesReceived) B)\(conflicts > 0 ? ", \(conflicts) conflicts" : "")\(prunesSent + prunesReceived > 0 ? ", PRUNE \(prunesSent) sent \(prunesReceived) received, GRAFT \(graftsSent) sent \(graftsReceived) received" : "")"
    }

    /// Events this relay holds in `namespace` that the peer has not
    /// acknowledged, of the origins this link carries (not those the peer
    /// takes from their own relays: it does not acknowledge them here).
    public func lag(_ namespace: Namespace, local: VersionVector) -> UInt64 {
        let theirs = acknowledged[namespace] ?? VersionVector()
        return local.origins.reduce(0) { $0 + (local[$1] > theirs[$1] && !peerDirect.contains($1) ? local[$1] - theirs[$1] : 0) }
    }
}
