import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
public import TrailCore
public import TrailStore

/// Replicates a store with peer relays over TCP: listens for peers, keeps
/// links to the peers it is told of (reconnecting with backoff), and on every
/// link streams what the other side lacks, both ways, until stopped.
///
/// ```swift
/// let replicator = Replicator(store: store, configuration: ReplicationConfiguration(allowedPeers: [peerKey]))
/// let port = try await replicator.listen(host: "127.0.0.1", port: 7401)
/// replicator.connect(host: "127.0.0.1", port: 7402)
/// // ... later
/// await replicator.shutdown()
/// ```
public final class Replicator: Sendable {
    public let store: Store
    public let configuration: ReplicationConfiguration
    /// Participants across the federation: set this relay's own, read everyone's.
    public let presence: PresenceBoard
    let registry: LinkRegistry
    /// Which link carries which origin's events (PRUNE/GRAFT routing).
    let routes: RouteBoard?
    private let tasks = Locked<[Task<Void, Never>]>([])
    private let listener = Locked<(any Channel)?>(nil)
    private let stopped = Locked(false)
    var logger: Logger { configuration.logger }

    public init(store: Store, configuration: ReplicationConfiguration) {
        self.store = store
        self.configuration = configuration
        registry = LinkRegistry(me: store.identity.publicKey)
        routes = configuration.routing ? RouteBoard() : nil
        presence = PresenceBoard(me: store.identity.publicKey)
    }

    /// The links up now.
    public var links: [LinkStatus] { registry.all.compactMap { $0.status.withLock { $0 } } }

    // MARK: Listening

    /// Binds the peer listener and accepts links in the background. Returns the bound port.
    @discardableResult
    public func listen(host: String, port: Int) async throws -> Int {
        let frameBytesMax = configuration.frameBytesMax
        let limits = configuration.limits
        let tls = configuration.tls?.server
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .bind(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    return try Self.framed(channel, frameBytesMax: frameBytesMax, limits: limits)
                }
            }
        let bound = server.channel.localAddress?.port ?? port
        listener.withLock { $0 = server.channel }
        logger.info("peer listener up", metadata: ["address": "\(host):\(bound)", "relay": "\(store.relayID.hex.prefix(16))"])
        spawn {
            try? await server.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await child in inbound {
                        group.addTask { await self.serve(child, dialed: false) }
                    }
                }
            }
        }
        return bound
    }

    // MARK: Dialing

    /// Keeps a link to the relay at `host:port` until shutdown: reconnects
    /// after any failure, waiting from `reconnectDelayMin` doubling to
    /// `reconnectDelayMax` (with jitter), and back to the minimum after a link that came up.
    public func connect(host: String, port: Int) {
        spawn {
            var delay = self.configuration.reconnectDelayMin
            while !Task.isCancelled {
                var cameUp = false
                do {
                    let channel = try await self.dial(host: host, port: port)
                    cameUp = await self.serve(channel, dialed: true)
                } catch {
                    self.logger.debug("peer dial failed", metadata: ["address": "\(host):\(port)", "reason": "\(error)"])
                }
                if cameUp { delay = self.configuration.reconnectDelayMin }
                let jitter = Double.random(in: 0.8...1.2)
                try? await Task.sleep(for: delay * jitter)
                delay = min(delay * 2, self.configuration.reconnectDelayMax)
            }
        }
    }

    func dial(host: String, port: Int) async throws -> NIOAsyncChannel<Frame, Frame> {
        let frameBytesMax = configuration.frameBytesMax
        let limits = configuration.limits
        let tls = configuration.tls?.client
        // A name is checked against the certificate; an address literal is not a name.
        let serverName = host.contains(where: { $0.isLetter }) && !host.contains(":") ? host : nil
        return try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(5))
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    }
                    return try Self.framed(channel, frameBytesMax: frameBytesMax, limits: limits)
                }
            }
    }

    static func framed(_ channel: any Channel, frameBytesMax: UInt32, limits: EventLimits) throws -> NIOAsyncChannel<Frame, Frame> {
        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(FrameDecoder(frameBytesMax: frameBytesMax, limits: limits)))
        try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(FrameEncoder()))
        return try NIOAsyncChannel<Frame, Frame>(wrappingChannelSynchronously: channel)
    }

    /// Runs a link on a connection until it ends. True when the handshake succeeded.
    @discardableResult
    func serve(_ channel: NIOAsyncChannel<Frame, Frame>, dialed: Bool) async -> Bool {
        let address = channel.channel.remoteAddress.map { "\($0.ipAddress ?? "?"):\($0.port ?? 0)" } ?? "?"
        let underlying = channel.channel
        let link = PeerLink(store: store, configuration: configuration, address: address, dialed: dialed,
                            registry: registry, closeTransport: { underlying.close(promise: nil) },
                            onStaleIncarnation: { [self] origin, reason in await rotate(ifOrigin: origin, reason: reason) },
                            presence: presence, routes: routes)
        do {
            try await channel.executeThenClose { inbound, outbound in
                await link.run(inbound, ChannelSender(writer: outbound))
            }
        } catch {
            logger.debug("peer connection closed with an error", metadata: ["address": "\(address)", "reason": "\(error)"])
        }
        return link.status.withLock { $0 != nil }
    }

    private let rotating = Locked(false)

    /// Starts a new incarnation, once, when a peer's WANT shows that the one
    /// announced as `origin` lost events; then drops every link so that each
    /// reconnects announcing the new origin and pulls back what was lost.
    func rotate(ifOrigin origin: RelayID, reason: String) async {
        let go = rotating.withLock { busy in
            guard !busy, store.originID == origin else { return false }
            busy = true
            return true
        }
        guard go else { return }
        defer { rotating.withLock { $0 = false } }
        do {
            try await store.startNewIncarnation(reason: reason)
        } catch {
            logger.error("could not start a new incarnation", metadata: ["error": "\(error)"])
        }
        for link in registry.all { link.closeTransport() }
    }

    // MARK: Partitions

    /// Peers this relay refuses links with, as an operator's partition: their
    /// links close now, and their handshakes (either direction) are refused
    /// until they leave the set. Dialing goes on with backoff, so a link
    /// comes back within `reconnectDelayMax` of being unblocked.
    public var blockedPeers: Set<RelayID> {
        get { registry.blocked.withLock { $0 } }
        set {
            registry.blocked.withLock { $0 = newValue }
            for link in registry.all {
                if let peer = link.status.withLock({ $0?.peer }), newValue.contains(peer) { link.closeTransport() }
            }
            logger.notice("blocked peers set", metadata: ["peers": "\(newValue.map { String($0.hex.prefix(16)) }.sorted())"])
        }
    }

    // MARK: Lifecycle

    private func spawn(_ body: @escaping @Sendable () async -> Void) {
        let task = Task { await body() }
        let late = stopped.withLock { $0 }
        tasks.withLock { $0.append(task) }
        if late { task.cancel() }
    }

    /// Closes the listener and every link, and waits for them to end.
    public func shutdown() async {
        stopped.withLock { $0 = true }
        let channel = listener.withLock { $0 }
        try? await channel?.close()
        let all = tasks.withLock { $0 }
        all.forEach { $0.cancel() }
        for link in registry.all { link.closeTransport() }
        for task in all { await task.value }
    }
}

/// A link's sending side on a NIO channel.
struct ChannelSender: FrameSender {
    let writer: NIOAsyncChannelOutboundWriter<Frame>
    func send(_ frame: Frame) async throws { try await writer.write(frame) }
    func send(contentsOf frames: [Frame]) async throws {
        guard !frames.isEmpty else { return }
        try await writer.write(contentsOf: frames)
    }
}
