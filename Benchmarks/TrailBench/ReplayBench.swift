import Foundation
import Logging
import TrailCore
import TrailReplay
import TrailStore

/// One namespace of `total` events appended in batches to a fresh store at `directory`.
func buildLog(_ directory: String, namespace: Namespace, total: Int, signedBy keys: [SigningKey] = []) async throws {
    var logger = Logger(label: "trail.bench")
    logger.logLevel = .error
    let store = try Store(directory: directory, configuration: StoreConfiguration(shardCount: shardCount, logger: logger))
    var written = 0
    while written < total {
        let batch = try (0..<min(1000, total - written)).map { offset -> Event in
            let index = written + offset
            let key = keys.isEmpty ? nil : keys[index % keys.count]
            let event = try Event(namespace: namespace, author: key?.publicKey,
                                  timestamp: HybridTimestamp(physicalMilliseconds: 1_700_000_000_000 + UInt64(index), logical: 0),
                                  type: "bench", payload: payload())
            return key.map { event.signed(by: $0) } ?? event
        }
        _ = try await store.append(contentsOf: batch)
        written += batch.count
    }
    store.close()
}

/// The store's own replay: every page of the namespace through `Store.read`.
func storeReplaySeconds(_ directory: String, namespace: Namespace) async throws -> (Double, Int) {
    let store = try Store(directory: directory, mode: .secondary)
    defer { store.close() }
    var read = 0
    let elapsed = try await seconds { read = try readEveryPage(store, namespace) }
    return (elapsed, read)
}

/// Reads the namespace's whole log page by page; returns how many events.
func readEveryPage(_ store: Store, _ namespace: Namespace) throws -> Int {
    var read = 0
    var cursor: Cursor?
    while true {
        let page = try store.read(namespace, after: cursor, limit: 10_000)
        read += page.events.count
        cursor = page.cursor
        if page.isAtEnd { return read }
    }
}

/// `trail verify` of a data directory, in this process.
func verifySeconds(_ directory: String) async throws -> Double {
    let source = try DirectorySource(directory: directory)
    var sound = false
    let elapsed = try await seconds { sound = try await Verifier(source: source).run().isSound }
    await source.close()
    precondition(sound, "the benchmark log does not verify")
    return elapsed
}

@MainActor func replayBenchmarks() async throws {
    if wanted("verify") {
        let total = quick ? 100_000 : 1_000_000
        let directory = scratch + "/verify"
        let namespace = try Namespace("verify/unsigned")
        try await buildLog(directory, namespace: namespace, total: total)
        // Alternating, best of two each: the first reader after the writes pays for compactions.
        var replayBest = Double.infinity, verifyBest = Double.infinity
        for _ in 0..<2 {
            let (replay, read) = try await storeReplaySeconds(directory, namespace: namespace)
            precondition(read == total)
            replayBest = min(replayBest, replay)
            verifyBest = min(verifyBest, try await verifySeconds(directory))
        }
        report(Row(name: "verify \(total / 1000)k unsigned events", trail: Double(total) / verifyBest,
                   baseline: Double(total) / replayBest, baselineName: "store replay", unit: "ev/s", goal: "≥ 0.50"))
    }

    if wanted("verify-signed") {
        let total = quick ? 20_000 : 200_000
        let directory = scratch + "/verify-signed"
        let keys = try (0..<16).map { try SigningKey(seed: [UInt8](repeating: UInt8($0 + 1), count: 32)) }
        try await buildLog(directory, namespace: try Namespace("verify/signed"), total: total, signedBy: keys)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let openSSL = openSSLVerifyRate(count: quick ? 2_000 : 20_000) * Double(cores)
        let elapsed = try await verifySeconds(directory)
        report(Row(name: "verify \(total / 1000)k signed events", trail: Double(total) / elapsed,
                   baseline: openSSL, baselineName: "OpenSSL verify × \(cores) cores", unit: "ev/s", goal: "≥ 0.70"))
    }

    if wanted("transfer") {
        let total = quick ? 100_000 : 1_000_000
        let namespace = try Namespace("transfer/ns-0")  // makeEvents names it
        let events = try makeEvents(total, namespaces: 1, prefix: "transfer")
        let pair = try await RelayPair("transfer")
        try await appendInBatches(events, to: pair.source)
        let catchUpSeconds = try await timed {
            try await pair.link()
            try await pair.caughtUp(namespace)
        }
        await pair.close()
        let exports = scratch + "/transfer-segments"
        let source = try DirectorySource(directory: scratch + "/transfer-source")
        var exported: UInt64 = 0
        let exportSeconds = try await timed {
            exported = try await Exporter(source: source).run(prefix: "", format: .segments, to: exports).events
        }
        await source.close()
        precondition(exported == UInt64(total))
        var logger = Logger(label: "trail.bench")
        logger.logLevel = .error
        let target = try Store(directory: scratch + "/transfer-import", configuration: StoreConfiguration(shardCount: shardCount, logger: logger))
        var imported = Importer.Summary()
        let importSeconds = try await timed {
            imported = try await Importer(source: try SegmentSource(paths: [exports]), into: target).run()
        }
        target.close()
        precondition(imported.appended == UInt64(total))
        let catchUp = Double(total) / catchUpSeconds
        report(Row(name: "export \(total / 1000)k events to segments", trail: Double(total) / exportSeconds,
                   baseline: catchUp, baselineName: "replication catch-up", unit: "ev/s", goal: "report"))
        report(Row(name: "import \(total / 1000)k events from segments", trail: Double(total) / importSeconds,
                   baseline: catchUp, baselineName: "replication catch-up", unit: "ev/s", goal: "report"))
    }
}
