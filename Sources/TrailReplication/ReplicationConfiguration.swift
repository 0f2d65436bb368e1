public import Logging
public import NIOSSL
public import TrailCore

/// How a relay replicates: who may connect, what it holds, and the sizes
/// that bound memory on both ends of a link.
public struct ReplicationConfiguration: Sendable {
    /// Identity keys of the relays allowed to link with this one.
    public var allowedPeers: Set<PublicKey>
    /// Accept any relay that proves its key (tests and closed networks only).
    public var allowAnyPeer: Bool
    /// Namespace prefixes this relay holds; empty means every namespace.
    public var prefixes: [String]
    /// At most this many events per segment...
    public var segmentEventCountMax: Int
    /// ...and about this many bytes of events (a single larger event still travels alone).
    public var segmentByteTarget: Int
    /// Segments a peer may send before this relay grants more: the receive buffer is at most this many.
    public var creditWindow: UInt32
    /// The largest frame this relay accepts (announced in HELLO).
    public var frameBytesMax: UInt32
    public var handshakeTimeout: Duration
    /// How often a link asks its peer, with FETCH, for the parents this
    /// relay's pending events wait on (only while some are pending).
    public var fetchInterval: Duration = .seconds(1)
    /// How often a link sends routing notes to a peer that pruned origins,
    /// and checks whether an origin it pruned went quiet on the other path
    /// (then GRAFTs it): the longest an event waits when its faster path fails.
    public var routeInterval: Duration = .milliseconds(50)
    /// Whether this relay routes (PRUNE/GRAFT, Docs/PROTOCOL.md "Routing"):
    /// asks peers not to push origins another link carries. Off by default:
    /// it cuts a partition heal's transfer by 2.5 times, but slowed a
    /// saturated ten-relay mesh (Docs/PERFORMANCE.md). A relay always
    /// honours its peers' PRUNE and GRAFT, whatever this says.
    public var routing = false
    /// At most how often a link sends a routing note (an ACK of a namespace
    /// in which routing pruned origins, when its vector changed): bounds the
    /// notes of busy namespaces; a GRAFT may wait up to this long for the
    /// note that shows the peer holds more.
    public var noteInterval: Duration = .seconds(1)
    public var reconnectDelayMin: Duration
    public var reconnectDelayMax: Duration
    public var limits: EventLimits
    public var logger: Logger
    /// TLS on peer links: the listener's context (certificate and key) and the
    /// dialer's (the roots that verify the peer's certificate). Either may be
    /// nil (plain TCP). The Ed25519 handshake runs inside TLS either way.
    public var tls: PeerTLS?

    public init(
        allowedPeers: Set<PublicKey> = [],
        allowAnyPeer: Bool = false,
        prefixes: [String] = [],
        segmentEventCountMax: Int = 1024,
        segmentByteTarget: Int = 1 << 20,
        creditWindow: UInt32 = 8,
        frameBytesMax: UInt32 = 80 << 20,
        handshakeTimeout: Duration = .seconds(10),
        reconnectDelayMin: Duration = .milliseconds(50),
        reconnectDelayMax: Duration = .seconds(5),
        limits: EventLimits = .default,
        logger: Logger = Logger(label: "trail.replication")
    ) {
        self.allowedPeers = allowedPeers
        self.allowAnyPeer = allowAnyPeer
        self.prefixes = prefixes
        self.segmentEventCountMax = max(1, segmentEventCountMax)
        self.segmentByteTarget = max(1, segmentByteTarget)
        self.creditWindow = max(1, creditWindow)
        self.frameBytesMax = max(Frame.frameBytesMinimum, frameBytesMax)
        self.handshakeTimeout = handshakeTimeout
        self.reconnectDelayMin = reconnectDelayMin
        self.reconnectDelayMax = reconnectDelayMax
        self.limits = limits
        self.logger = logger
    }
}

/// Whether a namespace is within a list of prefixes (an empty list holds every namespace).
func holds(_ prefixes: [String], _ namespace: Namespace) -> Bool {
    prefixes.isEmpty || prefixes.contains { namespace.hasPrefix($0) }
}

/// The TLS contexts of peer links (swift-nio-ssl, BoringSSL).
public struct PeerTLS: Sendable {
    /// Presents this relay's certificate to relays that dial it.
    public var server: NIOSSLContext?
    /// Verifies the certificate of relays this relay dials.
    public var client: NIOSSLContext?
    public init(server: NIOSSLContext?, client: NIOSSLContext?) {
        self.server = server
        self.client = client
    }
}
