import Logging
import ArgumentParser
import Foundation
import TrailClient
import TrailCore
import TrailStore

/// A local federation: N `trail serve` processes on loopback.
struct Cluster: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a local federation of relays on loopback: up, status, partition, heal, down.",
        discussion: """
            trail cluster up 3                      # relay-1…relay-3, a full mesh, in ./trail-cluster
            trail cluster up 5 --topology ring      # each relay peers with its two neighbours
            trail cluster partition 1,2 3           # relays 1 and 2 cut off from relay 3
            trail cluster heal                      # every link allowed again
            trail cluster down                      # SIGTERM each relay (--purge removes the data)
            """,
        subcommands: [ClusterUp.self, ClusterStatus.self, ClusterPartition.self, ClusterHeal.self, ClusterDown.self])
}

struct ClusterOptions: ParsableArguments {
    @Option(name: .customLong("dir"), help: "The cluster's folder: data directories, logs and cluster.json.")
    var directory = "trail-cluster"

    var manifestPath: String { directory + "/cluster.json" }

    func load() throws -> ClusterManifest {
        guard let data = FileManager.default.contents(atPath: manifestPath) else {
            throw CLIError("no cluster in \(directory) (no cluster.json): start one with `trail cluster up N`")
        }
        do { return try JSONDecoder().decode(ClusterManifest.self, from: data) } catch {
            throw CLIError("\(manifestPath) is not a cluster manifest: \(error)")
        }
    }
}

/// What `cluster up` started, for the other subcommands (and for scripts).
struct ClusterManifest: Codable {
    struct Relay: Codable {
        var name: String
        var pid: Int32
        var data: String
        var url: String
        var peer: String
        var key: String
        var log: String

        /// The recorded pid is still this relay (not a process that reused the number).
        var isRunning: Bool {
            guard kill(pid, 0) == 0, let command = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8) else { return false }
            return command.contains("serve") && command.contains(data)
        }
    }

    var topology: String
    var relays: [Relay]

    /// Stops every running relay: SIGTERM, then SIGKILL to those still up after 10 s.
    func stopAll() async {
        for relay in relays where relay.isRunning { kill(relay.pid, SIGTERM) }
        let deadline = Date().addingTimeInterval(10)
        for relay in relays {
            while relay.isRunning, Date() < deadline { try? await Task.sleep(for: .milliseconds(50)) }
            if relay.isRunning { kill(relay.pid, SIGKILL) }
        }
    }

    /// Relays named by `1,relay-2,…` (an index from 1 or a name).
    func select(_ list: String) throws -> [Relay] {
        try list.split(separator: ",").map { item in
            let text = item.trimmingCharacters(in: .whitespaces)
            if let index = Int(text), relays.indices.contains(index - 1) { return relays[index - 1] }
            if let relay = relays.first(where: { $0.name == text }) { return relay }
            throw ValidationError("no relay \"\(text)\" in the cluster (relays: 1…\(relays.count) or \(relays.map(\.name).joined(separator: ", ")))")
        }
    }
}

enum Topology: String, ExpressibleByArgument, CaseIterable {
    case mesh, ring, star

    /// Which relays relay `index` (0-based) links with.
    func neighbours(of index: Int, count: Int) -> [Int] {
        switch self {
        case .mesh: return (0..<count).filter { $0 != index }
        case .ring: return count < 2 ? [] : Array(Set([(index + 1) % count, (index + count - 1) % count]).subtracting([index])).sorted()
        case .star: return index == 0 ? Array(1..<count) : [0]
        }
    }
}

struct ClusterUp: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "up", abstract: "Start N relays, peered by the topology, and print their URLs.")

    @Argument(help: "How many relays.")
    var count: Int

    @Option(help: "mesh (every pair), ring (neighbours), or star (relay 1 in the middle).")
    var topology: Topology = .mesh

    @Option(help: "Client API ports start here (relay i: PORT+i-1); peer ports start at PORT+100.")
    var basePort = 7400

    @Option(help: "Durability of every relay: buffered or synced.")
    var durability: Durability = .buffered

    @OptionGroup var cluster: ClusterOptions

    func validate() throws {
        guard (1...64).contains(count) else { throw ValidationError("the count is \(count); a local cluster has 1…64 relays") }
        guard (1024...65_000).contains(basePort) else { throw ValidationError("--base-port is \(basePort); it must be within 1024…65000") }
    }

    func run() async throws {
        if let existing = try? cluster.load(), existing.relays.contains(where: \.isRunning) {
            throw CLIError("a cluster is already running in \(cluster.directory): `trail cluster down` first")
        }
        try FileManager.default.createDirectory(atPath: cluster.directory, withIntermediateDirectories: true)
        let root = URL(fileURLWithPath: cluster.directory).standardizedFileURL.path
        // Each relay's identity first: every relay's allowlist names its neighbours.
        var keys = [String]()
        for index in 0..<count {
            let data = "\(root)/relay-\(index + 1)"
            let store: Store
            do { store = try Store(directory: data, configuration: StoreConfiguration(logger: quietLogger())) } catch {
                throw CLIError("cannot open \(data): \(error)")
            }
            keys.append(store.relayID.hex)
            store.close()
        }
        let binary = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        var manifest = ClusterManifest(topology: topology.rawValue, relays: [])
        for index in 0..<count {
            let name = "relay-\(index + 1)"
            let api = basePort + index, peer = basePort + 100 + index
            let neighbours = topology.neighbours(of: index, count: count)
            var arguments = ["serve", "--data", "\(root)/\(name)", "--listen", "127.0.0.1:\(api)", "--peer-listen", "127.0.0.1:\(peer)",
                             "--durability", durability.rawValue]
            // Each pair links once: the higher-numbered relay dials.
            for other in neighbours where other < index { arguments += ["--connect", "127.0.0.1:\(basePort + 100 + other)"] }
            for other in neighbours { arguments += ["--allow", keys[other]] }
            let log = "\(root)/\(name).log"
            FileManager.default.createFile(atPath: log, contents: nil)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = arguments
            process.standardOutput = FileHandle(forWritingAtPath: log)
            process.standardError = process.standardOutput
            process.standardInput = FileHandle.nullDevice
            do { try process.run() } catch {
                await manifest.stopAll()
                throw CLIError("cannot start \(name): \(error)")
            }
            manifest.relays.append(.init(name: name, pid: process.processIdentifier, data: "\(root)/\(name)",
                                         url: "http://127.0.0.1:\(api)", peer: "127.0.0.1:\(peer)", key: keys[index], log: log))
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(manifest).write(to: URL(fileURLWithPath: cluster.manifestPath))
        // Up when each has printed its listening line (or failed: its log says why).
        let deadline = Date().addingTimeInterval(30)
        for relay in manifest.relays {
            while true {
                let text = (try? String(contentsOfFile: relay.log, encoding: .utf8)) ?? ""
                if text.contains("listening on") { break }
                guard relay.isRunning, Date() < deadline else {
                    // A cluster that did not come up leaves nothing running.
                    await manifest.stopAll()
                    try? FileManager.default.removeItem(atPath: cluster.manifestPath)
                    throw CLIError("\(relay.name) did not start, so the cluster was stopped; its log (\(relay.log)) says:\n\(text.split(separator: "\n").suffix(5).joined(separator: "\n"))")
                }
                try await Task.sleep(for: .milliseconds(50))
            }
        }
        print("cluster of \(count) relays up (\(topology.rawValue)) in \(cluster.directory):")
        for relay in manifest.relays {
            print("  \(relay.name)  \(relay.url)  peers on \(relay.peer)  relay \(relay.key.prefix(16))  pid \(relay.pid)")
        }
        print("stop with: trail cluster down --dir \(cluster.directory)")
    }
}

struct ClusterStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show each relay: running, links up, blocked peers.")

    @OptionGroup var cluster: ClusterOptions

    func run() async throws {
        let manifest = try cluster.load()
        let client = TrailClient(relays: manifest.relays.map(\.url), requestTimeout: .seconds(3))
        for relay in manifest.relays {
            guard relay.isRunning else {
                print("  \(relay.name)  \(relay.url)  stopped")
                continue
            }
            let names = Dictionary(uniqueKeysWithValues: manifest.relays.map { ($0.key, $0.name) })
            do {
                let status = try await client.statusOf(relay.url)
                let blocked = try await client.blockedPeers(on: relay.url)
                let peers = status.peers.map { names[$0.relay] ?? String($0.relay.prefix(8)) }.sorted()
                print("  \(relay.name)  \(relay.url)  running  links: \(peers.isEmpty ? "none" : peers.joined(separator: ","))"
                    + (blocked.isEmpty ? "" : "  blocked: \(blocked.map { names[$0.hex] ?? String($0.hex.prefix(8)) }.sorted().joined(separator: ","))"))
            } catch {
                print("  \(relay.name)  \(relay.url)  not answering: \(error)")
            }
        }
    }
}

struct ClusterPartition: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "partition", abstract: "Cut every link between two groups of relays (by number or name), until `heal`.")

    @Argument(help: "One side, e.g. 1,2")
    var sideA: String

    @Argument(help: "The other side, e.g. 3")
    var sideB: String

    @OptionGroup var cluster: ClusterOptions

    func run() async throws {
        let manifest = try cluster.load()
        let a = try manifest.select(sideA), b = try manifest.select(sideB)
        guard Set(a.map(\.name)).isDisjoint(with: b.map(\.name)) else { throw ValidationError("a relay cannot be on both sides") }
        let client = TrailClient(relays: manifest.relays.map(\.url), requestTimeout: .seconds(5))
        for (side, other) in [(a, b), (b, a)] {
            for relay in side {
                let current = try await client.blockedPeers(on: relay.url)
                let add = try other.map { try PublicKey(hex: $0.key) }
                try await client.setBlockedPeers(Array(Set(current + add)), on: relay.url)
            }
        }
        print("partitioned \(a.map(\.name).joined(separator: ",")) | \(b.map(\.name).joined(separator: ","))")
    }
}

struct ClusterHeal: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "heal", abstract: "Allow every link again; relays redial within seconds and catch up.")

    @OptionGroup var cluster: ClusterOptions

    func run() async throws {
        let manifest = try cluster.load()
        let client = TrailClient(relays: manifest.relays.map(\.url), requestTimeout: .seconds(5))
        for relay in manifest.relays where relay.isRunning {
            try await client.setBlockedPeers([], on: relay.url)
        }
        print("healed: every link allowed")
    }
}

struct ClusterDown: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "down", abstract: "Stop every relay of the cluster (SIGTERM, then SIGKILL after 10 s).")

    @OptionGroup var cluster: ClusterOptions

    @Flag(help: "Also remove the cluster's folder (data directories and logs).")
    var purge = false

    func run() async throws {
        try await cluster.load().stopAll()
        if purge { try? FileManager.default.removeItem(atPath: cluster.directory) } else { try? FileManager.default.removeItem(atPath: cluster.manifestPath) }
        print("cluster in \(cluster.directory) stopped" + (purge ? " and removed" : "; data kept"))
    }
}

func quietLogger() -> Logger {
    var logger = Logger(label: "trail")
    logger.logLevel = .warning
    return logger
}
