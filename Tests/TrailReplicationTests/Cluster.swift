import Foundation
import Logging
import Testing
import TrailCore
import TrailReplication
import TrailStore
@_exported import TrailTestSupport

/// One relay of a test federation: a store in its own directory and a
/// replicator listening on a loopback port.
final class TestRelay: Sendable {
    let name: String
    let directory: TemporaryDirectory
    let store: Store
    let replicator: Replicator
    let port: Int

    init(_ name: String, directory: TemporaryDirectory? = nil, allowed: Set<PublicKey> = [], allowAny: Bool = true,
         prefixes: [String] = [], configure: (inout ReplicationConfiguration) -> Void = { _ in }) async throws {
        self.name = name
        self.directory = directory ?? TemporaryDirectory(name)
        var logger = Logger(label: "trail.test.\(name)")
        logger.logLevel = ProcessInfo.processInfo.environment["TRAIL_TEST_LOG"] == nil ? .critical : .debug
        var storeConfiguration = StoreConfiguration()
        storeConfiguration.logger = logger
        store = try Store(directory: self.directory.path, configuration: storeConfiguration)
        var configuration = ReplicationConfiguration(
            allowedPeers: allowed, allowAnyPeer: allowAny, prefixes: prefixes,
            reconnectDelayMin: .milliseconds(20), reconnectDelayMax: .milliseconds(500), logger: logger)
        configure(&configuration)
        replicator = Replicator(store: store, configuration: configuration)
        port = try await replicator.listen(host: "127.0.0.1", port: 0)
    }

    func link(to other: TestRelay) { replicator.connect(host: "127.0.0.1", port: other.port) }

    func stop() async {
        await replicator.shutdown()
        store.close()
    }

    /// Appends `count` events to `namespace`, each following the log's current last event.
    func write(_ namespace: String, count: Int, tag: String) async throws {
        for index in 0..<count {
            let head = try store.read(Namespace(namespace), after: nil, limit: 1).lastPosition
            var parents = [EventID]()
            if head > 0 {
                let page = try store.read(Namespace(namespace), after: .position(relay: store.relayID.fingerprint, position: head - 1), limit: 1)
                parents = page.events.map(\.id)
            }
            let event = try Event(
                namespace: Namespace(namespace), timestamp: store.now(), parents: parents,
                type: "note", payload: Array("\(tag) \(index)".utf8))
            _ = try await store.append(event)
        }
    }

    func ids(_ namespace: String) throws -> Set<EventID> {
        var ids = Set<EventID>()
        var cursor: Cursor?
        while true {
            let page = try store.read(Namespace(namespace), after: cursor, limit: 1000)
            ids.formUnion(page.events.map(\.id))
            cursor = page.cursor
            if page.isAtEnd { return ids }
        }
    }
}

enum Topology: String, CaseIterable, Sendable {
    case chain, ring, star, mesh

    /// Directed dial edges (i dials j) over n relays.
    func edges(_ n: Int) -> [(Int, Int)] {
        switch self {
        case .chain: (0..<n - 1).map { ($0, $0 + 1) }
        case .ring: (0..<n).map { ($0, ($0 + 1) % n) }
        case .star: (1..<n).map { ($0, 0) }
        case .mesh: (0..<n).flatMap { i in (i + 1..<n).map { (i, $0) } }
        }
    }
}

/// Waits, bounded by `timeout`, until every relay holds the same vector for
/// each namespace and none is pending. Returns whether they converged.
func converge(_ relays: [TestRelay], namespaces: [String], timeout: Duration = .seconds(60)) async throws -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    while clock.now < deadline {
        var equal = true
        for namespace in namespaces {
            let vectors = relays.map { $0.store.vector(of: try! Namespace(namespace)) }
            if Set(vectors).count != 1 { equal = false }
        }
        if equal { return true }
        try await Task.sleep(for: .milliseconds(20))
    }
    return false
}
