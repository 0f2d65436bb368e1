import Foundation
import Histogram
import Logging
import TrailCore
import TrailReplication
import TrailStore

/// Two relays in this process, linked over loopback TCP.
struct RelayPair {
    let source: Store
    let sink: Store
    let sourceReplicator: Replicator
    let sinkReplicator: Replicator

    init(_ name: String) async throws {
        var logger = Logger(label: "trail.bench")
        logger.logLevel = .error
        var storeConfiguration = StoreConfiguration(durability: .buffered, shardCount: shardCount)
        storeConfiguration.logger = logger
        source = try Store(directory: scratch + "/\(name)-source", configuration: storeConfiguration)
        sink = try Store(directory: scratch + "/\(name)-sink", configuration: storeConfiguration)
        let configuration = ReplicationConfiguration(allowAnyPeer: true, logger: logger)
        sourceReplicator = Replicator(store: source, configuration: configuration)
        sinkReplicator = Replicator(store: sink, configuration: configuration)
    }

    func link() async throws {
        let port = try await sourceReplicator.listen(host: "127.0.0.1", port: 0)
        sinkReplicator.connect(host: "127.0.0.1", port: port)
    }

    /// Waits until the sink holds what the source holds in `namespace`.
    func caughtUp(_ namespace: Namespace) async throws {
        let target = source.vector(of: namespace)
        while sink.vector(of: namespace) != target { try await Task.sleep(for: .milliseconds(2)) }
    }

    var wireBytesReceived: UInt64 { sinkReplicator.links.reduce(0) { $0 + $1.bytesReceived } }

    func close() async {
        await sinkReplicator.shutdown()
        await sourceReplicator.shutdown()
        source.close()
        sink.close()
    }
}

/// Relays in this process, each listening on loopback; `link` connects two.
struct RelayGroup {
    let stores: [Store]
    let replicators: [Replicator]
    let ports: [Int]

    init(_ name: String, count: Int, routing: Bool = false) async throws {
        var logger = Logger(label: "trail.bench")
        logger.logLevel = .error
        var storeConfiguration = StoreConfiguration(durability: .buffered, shardCount: shardCount)
        storeConfiguration.logger = logger
        var configuration = ReplicationConfiguration(allowAnyPeer: true, logger: logger)
        configuration.reconnectDelayMax = .milliseconds(250)
        configuration.routing = routing
        var stores = [Store](), replicators = [Replicator](), ports = [Int]()
        for index in 0..<count {
            let store = try Store(directory: scratch + "/\(name)-\(index)", configuration: storeConfiguration)
            let replicator = Replicator(store: store, configuration: configuration)
            ports.append(try await replicator.listen(host: "127.0.0.1", port: 0))
            stores.append(store)
            replicators.append(replicator)
        }
        (self.stores, self.replicators, self.ports) = (stores, replicators, ports)
    }

    func link(_ from: Int, _ to: Int) { replicators[from].connect(host: "127.0.0.1", port: ports[to]) }

    /// Waits until the relays numbered `members` hold equal vectors in `namespace`.
    func converged(_ namespace: Namespace, _ members: [Int]) async throws {
        while Set(members.map { stores[$0].vector(of: namespace) }).count > 1 { try await Task.sleep(for: .milliseconds(2)) }
    }

    func close() async {
        for replicator in replicators { await replicator.shutdown() }
        for store in stores { store.close() }
    }
}

/// `count` events of `namespace`, each following the one before (a document's edits).
func chain(_ namespace: Namespace, count: Int, tag: String) throws -> [Event] {
    var previous: EventID?
    return try (0..<count).map { index in
        let event = try Event(namespace: namespace, timestamp: HybridTimestamp(physicalMilliseconds: 1_700_000_000_000 + UInt64(index), logical: 0),
                              parents: previous.map { [$0] } ?? [], type: "edit", payload: Array("\(tag) \(index) ".utf8) + payload(200))
        previous = event.id
        return event
    }
}

func appendInBatches(_ events: [Event], to store: Store) async throws {
    var index = 0
    while index < events.count {
        _ = try await store.append(contentsOf: Array(events[index..<min(index + 100, events.count)]))
        index += 100
    }
}

/// `seconds` on the main actor, where the replication benchmarks run.
@MainActor func timed(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

@MainActor func replicationBenchmarks() async throws {
    if wanted("catchup") {
        let total = quick ? 100_000 : 1_000_000
        let namespace = try Namespace("catchup/ns-0")  // makeEvents names it
        let events = try makeEvents(total, namespaces: 1, prefix: "catchup")
        let pair = try await RelayPair("catchup")
        let appendSeconds = try await timed { try await appendInBatches(events, to: pair.source) }
        let catchUpSeconds = try await timed {
            try await pair.link()
            try await pair.caughtUp(namespace)
        }
        report(Row(name: "catch-up of \(total / 1000)k unsigned 256 B events", trail: Double(total) / catchUpSeconds,
                   baseline: Double(total) / appendSeconds, baselineName: "source batch append", unit: "ev/s", goal: "≥ 0.50"))
        let perEvent = Double(pair.wireBytesReceived) / Double(total)
        report(Row(name: "wire bytes per event, random 256 B payload", trail: perEvent, baseline: Double(256 + EventID.byteCount),
                   baselineName: "payload + id", unit: "B   ", goal: "≤ 1.10"))
        await pair.close()
    }

    if wanted("wire") {
        let total = quick ? 20_000 : 100_000
        let namespace = try Namespace("wire/json")
        let kinds = ["bid", "ask", "award", "ack", "progress"]
        let events = try (0..<total).map { index -> Event in
            let nonce = payloadSource.generator.next()
            let json = "{\"id\":\"\(String(nonce, radix: 16))\",\"agent\":\"agent-\(index % 50)\",\"kind\":\"\(kinds[index % kinds.count])\",\"task\":\"task-\(index / 100)\",\"stake\":\(index % 997),\"note\":\"round \(index % 13) of the auction\",\"at\":\(1_700_000_000_000 + index * 7)}"
            return try Event(namespace: namespace, timestamp: HybridTimestamp(physicalMilliseconds: 1_700_000_000_000 + UInt64(index), logical: 0),
                             type: "auction.bid", payload: Array(json.utf8))
        }
        let jsonBytes = events.reduce(0) { $0 + $1.payload.count }
        let pair = try await RelayPair("wire")
        try await appendInBatches(events, to: pair.source)
        try await pair.link()
        try await pair.caughtUp(namespace)
        report(Row(name: "wire bytes per event, JSON-like payload", trail: Double(pair.wireBytesReceived) / Double(total),
                   baseline: Double(jsonBytes) / Double(total), baselineName: "JSON bytes", unit: "B   ", goal: "≤ 0.50"))
        await pair.close()
    }

    if wanted("signed") {
        let total = quick ? 10_000 : 100_000
        let namespace = try Namespace("signed/ns")
        let keys = try (0..<16).map { try SigningKey(seed: [UInt8](repeating: UInt8($0 + 1), count: 32)) }
        let events = try (0..<total).map { index -> Event in
            let key = keys[index % keys.count]
            return try Event(namespace: namespace, author: key.publicKey,
                             timestamp: HybridTimestamp(physicalMilliseconds: 1_700_000_000_000 + UInt64(index), logical: 0),
                             type: "vouch", payload: payload()).signed(by: key)
        }
        // OpenSSL's own verify rate on one core, times the cores the relay may use.
        let sample = Array(events.prefix(5_000))
        let verifySeconds = await timed { for event in sample { precondition(event.signatureStatus == .valid) } }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let pair = try await RelayPair("signed")
        try await appendInBatches(events, to: pair.source)
        let catchUpSeconds = try await timed {
            try await pair.link()
            try await pair.caughtUp(namespace)
        }
        report(Row(name: "signed catch-up of \(total / 1000)k events", trail: Double(total) / catchUpSeconds,
                   baseline: Double(sample.count) / verifySeconds * Double(cores), baselineName: "Ed25519 verify × \(cores) cores",
                   unit: "ev/s", goal: "≥ 0.70"))
        await pair.close()
    }

    if wanted("partition") {
        // Five relays cut into {0, 1} and {2, 3, 4}, each side a full mesh;
        // each side writes its half of the backlog as one causal chain. Then
        // the six links across the cut open and the clock runs until all
        // five vectors are equal; without routing, then with it. Baseline:
        // one relay pulling one side's half over one link.
        let perSide = quick ? 10_000 : 50_000
        let namespace = try Namespace("partition/doc")
        let left = try chain(namespace, count: perSide, tag: "left")
        let right = try chain(namespace, count: perSide, tag: "right")
        let pair = try await RelayPair("partition-pair")
        try await appendInBatches(left, to: pair.source)
        let pairSeconds = try await timed {
            try await pair.link()
            try await pair.caughtUp(namespace)
        }
        await pair.close()
        for routing in [false, true] {
            let federation = try await RelayGroup("partition-\(routing)", count: 5, routing: routing)
            let (sideA, sideB) = ([0, 1], [2, 3, 4])
            federation.link(0, 1)
            federation.link(2, 3); federation.link(2, 4); federation.link(3, 4)
            async let wroteLeft: Void = appendInBatches(left, to: federation.stores[0])
            async let wroteRight: Void = appendInBatches(right, to: federation.stores[3])
            _ = try await (wroteLeft, wroteRight)
            try await federation.converged(namespace, sideA)
            try await federation.converged(namespace, sideB)
            let healSeconds = try await timed {
                for a in sideA { for b in sideB { federation.link(a, b) } }
                try await federation.converged(namespace, [0, 1, 2, 3, 4])
            }
            let received = federation.replicators.reduce(UInt64(0)) { $0 + $1.links.reduce(0) { $0 + $1.eventsReceived } }
            if ProcessInfo.processInfo.environment["TRAIL_BENCH_LINKS"] != nil {
                for (index, replicator) in federation.replicators.enumerated() {
                    for link in replicator.links { print("relay \(index): \(link)") }
                }
            }
            await federation.close()
            let mode = routing ? "routing" : "no routing"
            print(String(format: "partition heal (%@): %d events written apart converged on 5 relays in %.2f s (goal ≤ 2 s for 100k); %llu events received over all links, %d needed (%d within the sides before the heal); one relay pulling %d over one link: %.2f s",
                         mode, 2 * perSide, healSeconds, received, 8 * perSide, 3 * perSide, perSide, pairSeconds))
            report(Row(name: "partition heal, 5 relays, \(2 * perSide / 1000)k, \(mode)", trail: Double(2 * perSide) / healSeconds,
                       baseline: Double(perSide) / pairSeconds, baselineName: "1 link catch-up, one side", unit: "ev/s", goal: "report"))
        }
    }

    if wanted("push") {
        let rate = 10_000
        let duration = quick ? 2 : 10
        let namespace = try Namespace("push/ns")
        let pair = try await RelayPair("push")
        try await pair.link()
        // A first event so the link and the namespace exist before timing.
        _ = try await pair.source.append(try Event(namespace: namespace, timestamp: pair.source.now(), type: "warm", payload: []))
        try await pair.caughtUp(namespace)
        let clock = ContinuousClock()
        let origin = clock.now
        func nanos() -> UInt64 { UInt64((clock.now - origin).components.attoseconds / 1_000_000_000 + (clock.now - origin).components.seconds * 1_000_000_000) }
        let total = rate * duration
        let receiver = Task {
            var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
            var received = 0
            for try await stored in pair.sink.subscribe(namespace, after: .position(relay: pair.sink.relayID.fingerprint, position: 1)) {
                let sent = stored.event.payload.prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
                _ = histogram.record(nanos() - sent)
                received += 1
                if received == total { break }
            }
            return histogram
        }
        // Appends paced at `rate`, one event at a time, as agents would.
        var sentCount = 0
        let start = clock.now
        while sentCount < total {
            let due = start + .nanoseconds(Int64(sentCount) * 1_000_000_000 / Int64(rate))
            if clock.now < due { try await Task.sleep(until: due, clock: clock) }
            var stamp = ByteWriter()
            stamp.write(nanos())
            _ = try await pair.source.append(try Event(namespace: namespace, timestamp: pair.source.now(), type: "tick", payload: stamp.bytes + payload(56)))
            sentCount += 1
        }
        let histogram = try await receiver.value
        let p50 = Double(histogram.valueAtPercentile(50)) / 1e6
        let p99 = Double(histogram.valueAtPercentile(99)) / 1e6
        print(String(format: "live push A→B at %d ev/s for %d s: p50 %.2f ms, p99 %.2f ms, max %.2f ms (goal p99 ≤ 10 ms)",
                     rate, duration, p50, p99, Double(histogram.max) / 1e6))
        await pair.close()
    }
}
