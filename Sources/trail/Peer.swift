import ArgumentParser
import Dispatch
import Foundation
import Logging
import TrailCore
import TrailRelay
import TrailReplication
import TrailStore

/// Replicates a data directory with other relays until SIGINT or SIGTERM.
struct Peer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replicate this data directory with peer relays until interrupted.",
        discussion: """
            Listens for peers on --listen and keeps a link to every --connect address,
            reconnecting with backoff. Peers must prove a key named by --allow (see
            `trail identity` on each relay), unless --allow-any is given.

              trail identity --data a                       # prints a's relay key
              trail peer --data a --listen 127.0.0.1:7401 --allow <b's key>
              trail peer --data b --listen 127.0.0.1:7402 --connect 127.0.0.1:7401 --allow <a's key>
            """)

    @OptionGroup var store: StoreOptions

    @Option(help: "Address to accept peers on, HOST:PORT (port 0 picks a free one).")
    var listen: String?

    @Option(name: .customLong("connect"), help: "A peer to keep a link to, HOST:PORT (repeatable).")
    var peers: [String] = []

    @Option(name: .customLong("allow"), help: "A peer relay key (64 hex digits) allowed to link (repeatable).")
    var allowed: [String] = []

    @Flag(help: "Accept any relay that proves its key (closed test networks only).")
    var allowAny = false

    @Option(name: .customLong("prefix"), help: "A namespace prefix this relay holds (repeatable; default: every namespace).")
    var prefixes: [String] = []

    func validate() throws {
        if listen == nil && peers.isEmpty { throw ValidationError("give --listen, --connect, or both: otherwise there is nobody to replicate with") }
        if let listen { _ = try parseAddress(listen, option: "--listen") }
        for peer in peers { _ = try parseAddress(peer, option: "--connect") }
        for key in allowed { _ = try parseKey(key) }
        if allowed.isEmpty && !allowAny { throw ValidationError("name the peers allowed to link with --allow KEY (or pass --allow-any on a closed test network)") }
    }

    func run() async throws {
        let opened = try store.open()
        var logger = Logger(label: "trail.peer")
        logger.logLevel = store.verbose ? .debug : .info
        let configuration = ReplicationConfiguration(
            allowedPeers: Set(try allowed.map(parseKey)), allowAnyPeer: allowAny, prefixes: prefixes, logger: logger)
        let replicator = Replicator(store: opened, configuration: configuration)
        let stop = signalStream()
        if let listen {
            let (host, port) = try parseAddress(listen, option: "--listen")
            let bound: Int
            do { bound = try await replicator.listen(host: host, port: port) } catch {
                opened.close()
                throw CLIError("cannot listen on \(listen): \(error)")
            }
            emit("relay \(opened.relayID.hex) \(opened.incarnation) listening on \(host):\(bound)")
        }
        for peer in peers {
            let (host, port) = try parseAddress(peer, option: "--connect")
            replicator.connect(host: host, port: port)
        }
        for await signal in stop {
            logger.info("stopping", metadata: ["signal": "\(signal)"])
            break
        }
        for link in replicator.links { emit("link \(link)") }
        await replicator.shutdown()
        opened.close()
    }
}

/// Prints a data directory's relay key and incarnation, creating the directory if absent.
struct Identity: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print this relay's key (what peers put on their allowlist) and its incarnation.",
        discussion: """
            --rotate replaces the key (stop the relay first): the old key signs a statement
            handing over to the new one, kept in relay.rotations and shown to peers, whose
            allowlists naming the old key then accept the new one (Docs/SECURITY.md).
            """)

    @OptionGroup var store: StoreOptions
    @Flag(help: "Replace this relay's key with a new one (the relay must be stopped).")
    var rotate = false

    func run() async throws {
        if rotate {
            let rotation = try Store.rotateIdentity(directory: store.path, configuration: store.configuration())
            emit("rotated relay key \(rotation.previous.hex)")
            emit("             to \(rotation.next.hex)")
            emit("peers that allow the old key accept the new one; put the new key on their allowlists")
        }
        let opened = try store.open()
        defer { opened.close() }
        emit("relay \(opened.relayID.hex)")
        emit("\(opened.incarnation)")
        for rotation in opened.rotations { emit("previous key \(rotation.previous.hex)") }
    }
}

func parseAddress(_ text: String, option: String) throws -> (String, Int) {
    do {
        let address = try RelayConfiguration.Address(parsing: text)
        return (address.host, address.port)
    } catch {
        throw ValidationError("bad \(option) address: \(error.reason)")
    }
}

func parseKey(_ text: String) throws -> PublicKey {
    do { return try PublicKey(hex: text) } catch { throw ValidationError("bad --allow key \"\(text)\": \(error)") }
}

/// The signal sources live as long as the process; only `signalStream` sets this, once.
nonisolated(unsafe) private var signalSources: [any DispatchSourceSignal] = []

/// SIGINT and SIGTERM as an async sequence (their default action is turned off).
func signalStream() -> AsyncStream<Int32> {
    let (stream, continuation) = AsyncStream<Int32>.makeStream()
    signalSources = [SIGINT, SIGTERM].map { number -> any DispatchSourceSignal in
        signal(number, SIG_IGN)
        let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
        source.setEventHandler { continuation.yield(number) }
        source.resume()
        return source
    }
    return stream
}
