import Foundation
public import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import HummingbirdWebSocket
import NIOSSL
public import Logging
import NIOCore
public import ServiceLifecycle
public import TrailCore
public import TrailReplication
public import TrailStore

/// A relay: the store, the client API (HTTP and WebSocket), the peer links,
/// presence and metrics, as one `Service`. `trail serve` runs one; a relay
/// author can run one inside their own `ServiceGroup`.
///
/// Shutting down (the service group's graceful shutdown: SIGTERM or SIGINT
/// under `trail serve`) marks the relay not ready, stops accepting, ends
/// every subscription with a `going away` close, waits for requests in
/// flight, stops the peer links, then flushes and closes the store.
public final class Relay: Service, Sendable {
    public let configuration: RelayConfiguration
    public let store: Store
    public let replicator: Replicator
    let presence: Presence
    let fanouts: Fanouts
    let metrics: RelayMetrics
    let access: AccessControl
    let logger: Logger
    let state = Locked(RunState())
    /// Namespaces whose policy retention has been applied since start.
    let retentionApplied = Locked(Set<Namespace>())
    /// Per-client append budgets (`append_rate`).
    let rateLimiter = RateLimiter()

    struct RunState {
        var ready = false
        var httpPort: Int?
        var peerPort: Int?
    }

    let onListening: @Sendable (Relay) async -> Void
    /// The certificate and key the client API (and the peer listener) present, if any.
    let serverTLS: TLSConfiguration?

    /// The client API's scheme: https with a certificate, http without.
    public var scheme: String { serverTLS == nil ? "http" : "https" }

    static func serverTLS(_ configuration: RelayConfiguration) throws -> TLSConfiguration? {
        guard let certificate = configuration.tlsCertificate, let key = configuration.tlsKey else { return nil }
        do {
            let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
            let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
            return TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(privateKey))
        } catch {
            throw ConfigurationError(source: "configuration", key: "tls_certificate, tls_key", reason: "cannot load \(certificate) and \(key): \(error)")
        }
    }

    /// Opens the store in the configured data directory (creating it).
    /// `onListening` is called once the client API and peer listener are bound.
    public init(
        configuration: RelayConfiguration, logger: Logger, onListening: @escaping @Sendable (Relay) async -> Void = { _ in }
    ) throws {
        self.configuration = configuration
        self.onListening = onListening
        self.logger = logger
        var storeConfiguration = StoreConfiguration(durability: configuration.durability)
        storeConfiguration.limits = EventLimits(payloadBytesMax: configuration.payloadBytesMax)
        storeConfiguration.diskReserveBytes = configuration.diskReserveBytes
        storeConfiguration.logger = logger
        serverTLS = try Self.serverTLS(configuration)
        var replication = ReplicationConfiguration(
            allowedPeers: Set(configuration.allowedPeers), allowAnyPeer: configuration.allowAnyPeer,
            prefixes: configuration.prefixes, limits: storeConfiguration.limits, logger: logger)
        replication.routing = configuration.peerRouting
        if configuration.peerTLS, let serverTLS, let roots = configuration.tlsTrustRoots {
            var client = TLSConfiguration.makeClientConfiguration()
            client.trustRoots = .file(roots)
            // The chain must lead to the trust roots; the peer's identity is its
            // Ed25519 key, proved inside the TLS session, so host names are not checked.
            client.certificateVerification = .noHostnameVerification
            replication.tls = PeerTLS(server: try NIOSSLContext(configuration: serverTLS), client: try NIOSSLContext(configuration: client))
        }
        store = try Store(directory: configuration.dataDirectory, configuration: storeConfiguration)
        replicator = Replicator(store: store, configuration: replication)
        presence = Presence(board: replicator.presence)
        fanouts = Fanouts(store: store, pageSize: configuration.pageEventCountMax)
        metrics = RelayMetrics()
        access = AccessControl(tokens: configuration.tokens, relay: store.relayID)
    }

    /// True from when the client API accepts requests until shutdown begins.
    public var isReady: Bool { state.withLock { $0.ready } }
    /// The client API's port once it is listening (useful with port 0).
    public var httpPort: Int? { state.withLock { $0.httpPort } }
    /// The peer listener's port once it is listening.
    public var peerPort: Int? { state.withLock { $0.peerPort } }

    /// Runs until graceful shutdown, then closes the store.
    public func run() async throws {
        if let peerListen = configuration.peerListen {
            let port = try await replicator.listen(host: peerListen.host, port: peerListen.port)
            state.withLock { $0.peerPort = port }
        }
        for peer in configuration.peers { replicator.connect(host: peer.host, port: peer.port) }
        if configuration.tokens.isEmpty && !Self.isLoopback(configuration.listen.host) {
            logger.warning(
                "the client API is open to anyone who can reach it: no tokens are configured",
                metadata: ["listen": "\(configuration.listen)"])
        }
        let router = makeRouter()
        let plain = HTTPServerBuilder.http1WebSocketUpgrade(
            webSocketRouter: router,
            configuration: .init(ws: .init(maxFrameSize: 1 << 20, autoPing: .enabled(timePeriod: .seconds(30)))))
        let application = Application(
            responder: RelayResponder(relay: self, router: router.buildResponder(), errors: errorMiddleware),
            server: try serverTLS.map { try HTTPServerBuilder.tls(plain, tlsConfiguration: $0) } ?? plain,
            configuration: ApplicationConfiguration(
                address: .hostname(configuration.listen.host, port: configuration.listen.port),
                serverName: "trail",
                backlog: 1024,
                availableConnectionsDelegate: MaximumAvailableConnections(configuration.connectionCountMax)),
            onServerRunning: { [self] channel in
                state.withLock {
                    $0.httpPort = channel.localAddress?.port
                    $0.ready = true
                }
                await onListening(self)
            },
            logger: logger)
        // A service group shuts its services down last to first: the client
        // API stops before the links and the store behind it.
        var groupConfiguration = ServiceGroupConfiguration(
            services: [
                .init(service: Closer(relay: self)), .init(service: PresenceSweeper(board: replicator.presence)),
                .init(service: MemoryTrimmer(trims: metrics.memoryTrims)),
                .init(service: application),
            ],
            logger: logger)
        // Past the grace, what still runs (a request stuck on a peer) is cancelled; the store closes anyway.
        groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownGrace
        let group = ServiceGroup(configuration: groupConfiguration)
        do {
            try await withGracefulShutdownHandler {
                try await group.run()
            } onGracefulShutdown: { [self] in
                state.withLock { $0.ready = false }
                logger.info("shutting down: no new requests; subscriptions end")
            }
        } catch {
            await close()
            throw error
        }
    }

    /// Stops the links and closes the store; safe to call more than once.
    func close() async {
        state.withLock { $0.ready = false }
        await replicator.shutdown()
        store.close()
    }

    /// Waits for shutdown, then closes what the client API stood on.
    struct Closer: Service {
        let relay: Relay
        func run() async throws {
            try? await gracefulShutdown()
            await relay.close()
            relay.logger.info("store closed")
        }
    }

    /// Drops other relays' participants whose lease ran out, four times a lease.
    struct PresenceSweeper: Service {
        let board: PresenceBoard
        func run() async throws {
            try? await cancelWhenGracefulShutdown {
                while !Task.isCancelled {
                    try await Task.sleep(for: board.lease / 4)
                    board.expire()
                }
            }
        }
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
