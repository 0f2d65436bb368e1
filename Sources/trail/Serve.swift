import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import TrailRelay
import TrailStore

/// Runs a relay: the store, the client API, the peer links, until SIGTERM or SIGINT.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a relay: the client API (HTTP and WebSocket), peer replication and metrics.",
        discussion: """
            With no settings it serves ./trail-data on http://127.0.0.1:7400, open to
            loopback clients, with no peers. Settings come from a JSON file (--config or
            $TRAIL_CONFIG), then environment variables (TRAIL_LISTEN…), then these flags,
            each overriding the one before. Docs/OPERATIONS.md lists every setting.

              trail serve
              trail serve --data /var/lib/trail --listen 0.0.0.0:7400 --config /etc/trail.json
              trail serve --data b --listen 127.0.0.1:7410 --peer-listen 127.0.0.1:7411 \\
                          --connect 127.0.0.1:7401 --allow <relay a's key>
            """)

    @Option(help: "A JSON configuration file (default: $TRAIL_CONFIG).")
    var config: String?
    @Option(help: "Data directory (default ./trail-data).")
    var data: String?
    @Option(help: "Client API address, HOST:PORT (default 127.0.0.1:7400; port 0 picks one).")
    var listen: String?
    @Option(help: "Peer listener address, HOST:PORT (default: none).")
    var peerListen: String?
    @Option(name: .customLong("connect"), help: "A peer relay to keep a link to, HOST:PORT (repeatable).")
    var peers: [String] = []
    @Option(name: .customLong("allow"), help: "A peer relay key allowed to link (repeatable).")
    var allowPeers: [String] = []
    @Flag(help: "Accept any peer that proves its key (closed test networks only).")
    var allowAny = false
    @Option(name: .customLong("prefix"), help: "A namespace prefix this relay holds and replicates (repeatable; default: all).")
    var prefixes: [String] = []
    @Option(help: "When appends are acknowledged: buffered or synced (default buffered).")
    var durability: String?
    @Option(help: "Refuse appends (507 disk_full) while the disk has less free space than this many MiB (default 128; 0: never).")
    var diskReserveMb: String?
    @Option(help: "trace, debug, info, notice, warning, error or critical (default info).")
    var logLevel: String?
    @Option(help: "text (default) or json: one JSON object per log line, for collectors.")
    var logFormat: String?
    @Option(help: "PEM certificate chain: serve the client API over HTTPS (with --tls-key).")
    var tlsCertificate: String?
    @Option(help: "PEM private key of --tls-certificate.")
    var tlsKey: String?
    @Option(help: "PEM certificates that verify peers this relay dials (with --peer-tls).")
    var tlsTrustRoots: String?
    @Flag(help: "TLS on peer links (needs --tls-certificate, --tls-key, --tls-trust-roots).")
    var peerTLS = false
    @Flag(help: "Route peer links: ask peers not to push what another link brings (PRUNE/GRAFT; Docs/PROTOCOL.md).")
    var peerRouting = false

    func run() async throws {
        Relay.runTasksOnEventLoops()
        var flags = [String: [String]]()
        if let data { flags["data"] = [data] }
        if let listen { flags["listen"] = [listen] }
        if let peerListen { flags["peer_listen"] = [peerListen] }
        if !peers.isEmpty { flags["peers"] = peers }
        if !allowPeers.isEmpty { flags["allow_peers"] = allowPeers }
        if allowAny { flags["allow_any_peer"] = ["true"] }
        if !prefixes.isEmpty { flags["prefixes"] = prefixes }
        if let durability { flags["durability"] = [durability] }
        if let logLevel { flags["log_level"] = [logLevel] }
        if let diskReserveMb { flags["disk_reserve_mb"] = [diskReserveMb] }
        if let logFormat { flags["log_format"] = [logFormat] }
        if let tlsCertificate { flags["tls_certificate"] = [tlsCertificate] }
        if let tlsKey { flags["tls_key"] = [tlsKey] }
        if let tlsTrustRoots { flags["tls_trust_roots"] = [tlsTrustRoots] }
        if peerTLS { flags["peer_tls"] = ["true"] }
        if peerRouting { flags["peer_routing"] = ["true"] }
        let environment = ProcessInfo.processInfo.environment
        let configuration: RelayConfiguration
        do {
            configuration = try RelayConfiguration.load(
                file: config ?? environment[RelayConfiguration.fileVariable], environment: environment, flags: flags)
        } catch {
            throw CLIError("bad configuration: \(error)")
        }
        if (configuration.peerListen != nil || !configuration.peers.isEmpty),
           configuration.allowedPeers.isEmpty, !configuration.allowAnyPeer {
            throw CLIError("bad configuration: allow_peers: name the peer relays allowed to link (--allow KEY), or set allow_any_peer on a closed test network")
        }
        let format: LineLogHandler.Format = configuration.logFormat == "json" ? .json : .text
        var logger = Logger(label: "trail.serve", factory: { LineLogHandler(label: $0, format: format) })
        logger.logLevel = configuration.logLevel
        let relay: Relay
        do {
            relay = try Relay(configuration: configuration, logger: logger) { relay in
                let peers = relay.peerPort.map { " peers on \(configuration.peerListen!.host):\($0)" } ?? ""
                let address = RelayConfiguration.Address(host: configuration.listen.host, port: relay.httpPort ?? configuration.listen.port)
                emit("trail serve: relay \(relay.store.relayID.hex) \(relay.store.incarnation) data \(configuration.dataDirectory) listening on \(relay.scheme)://\(address)\(peers)")
            }
        } catch {
            throw CLIError("cannot open data directory \(configuration.dataDirectory): \(error)")
        }
        let group = ServiceGroup(
            configuration: .init(services: [relay], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        do { try await group.run() } catch {
            throw CLIError("relay stopped: \(error)")
        }
        emit("trail serve: stopped")
    }
}
