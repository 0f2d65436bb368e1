import COpenSSL
import Foundation
import NIOCore
import NIOPosix
import TrailCore
import TrailStore

// Trail's benchmarks. Each prints Trail's figure, a baseline measured in the
// same run on the same machine, and the ratio. Run in release:
//   swift build -c release --product trail-bench && .build/release/trail-bench [all|append|synced|replay|crypto|rss|catchup|wire|signed|partition|push|verify|verify-signed|transfer|http|bulk|fanout|scale] [--quick]
// The relay benchmarks (http, bulk, fanout) run the release `trail` beside it: build `--product trail` too.

let arguments = CommandLine.arguments.dropFirst()
let quick = arguments.contains("--quick")
/// Skips the baselines: for profiling Trail alone.
let trailOnly = arguments.contains("--trail-only")
let shardCount = Int(ProcessInfo.processInfo.environment["TRAIL_BENCH_SHARDS"] ?? "") ?? StoreConfiguration().shardCount
let selected = Set(arguments.filter { !$0.hasPrefix("--") })
let benchmarkNames: Set = [
    "all", "append", "synced", "replay", "crypto", "rss", "rss-raw", "catchup", "wire", "signed", "partition", "push",
    "verify", "verify-signed", "transfer", "http", "bulk", "fanout", "scale", "scale-agents", "compare",
]
let flags: Set = ["--quick", "--trail-only", "--write-docs"]
// An unknown name or flag (`--help` among them) prints the list rather than running every benchmark.
if let unknown = arguments.first(where: { $0.hasPrefix("--") ? !flags.contains($0) : !benchmarkNames.contains($0) }) {
    let names = benchmarkNames.subtracting(["rss-raw", "scale-agents"]).sorted().joined(separator: "|")
    FileHandle.standardError.write(Data("""
        \(unknown == "--help" || unknown == "-h" ? "" : "trail-bench: unknown argument \(unknown)\n")\
        usage: trail-bench [\(names)]... [--quick] [--trail-only] [--write-docs]
          no name runs every benchmark but compare; each prints Trail's figure beside a baseline from the same run

        """.utf8))
    exit(unknown == "--help" || unknown == "-h" ? 0 : 64)
}
func wanted(_ name: String) -> Bool {
    // `compare` runs other servers: only when asked for by name.
    (selected.isEmpty || selected.contains("all") || selected.contains(name)) && !(selected == ["compare"])
}

// The scale run's 2000 agent tasks (appends, subscriptions) run on the event
// loops that do their I/O, as `trail serve`'s do: on the cooperative pool,
// each WebSocket message and response hopped threads, and this process's own
// wake-ups ran hundreds of milliseconds late, which the run measured as delivery.
if selected == ["scale"] || selected == ["scale-agents"] { NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor() }

let scratch = NSTemporaryDirectory() + "trail-bench-\(getpid())"
try? FileManager.default.removeItem(atPath: scratch)
try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: scratch) }

struct Row {
    let name: String
    let trail: Double
    let baseline: Double
    let baselineName: String
    let unit: String
    let goal: String
    var ratio: Double { trail / baseline }
}
var rows = [Row]()

@MainActor func report(_ row: Row) {
    rows.append(row)
    let line = String(format: "%-44@ trail %12.0f %@   %@ %12.0f   ratio %.2f   goal %@\n",
                      row.name as NSString, row.trail, row.unit as NSString, row.baselineName as NSString, row.baseline, row.ratio, row.goal as NSString)
    FileHandle.standardOutput.write(Data(line.utf8))
}

func seconds(_ body: () async throws -> Void) async rethrows -> Double {
    let start = ContinuousClock.now
    try await body()
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

/// Random payload bytes from a fast generator seeded by the system's: the
/// system generator makes one getrandom call per draw, which would dominate.
final class PayloadSource: @unchecked Sendable {
    // Only the benchmark's main flow draws from it.
    var generator = SplitMix64(seed: UInt64.random(in: 1...UInt64.max))
}
let payloadSource = PayloadSource()
func payload(_ count: Int = 256) -> [UInt8] {
    var bytes = [UInt8]()
    bytes.reserveCapacity(count + 8)
    while bytes.count < count { withUnsafeBytes(of: payloadSource.generator.next()) { bytes.append(contentsOf: $0) } }
    return Array(bytes.prefix(count))
}

/// Unsigned events of 256-byte random payloads, built before timing starts.
func makeEvents(_ count: Int, namespaces: Int, prefix: String) throws -> [Event] {
    let names = try (0..<namespaces).map { try Namespace("\(prefix)/ns-\($0)") }
    return try (0..<count).map { index in
        try Event(namespace: names[index % namespaces], timestamp: HybridTimestamp(physicalMilliseconds: 1_700_000_000_000 + UInt64(index), logical: 0),
                  type: "bench", payload: payload())
    }
}

func rawKey(_ namespace: Int, _ position: Int) -> [UInt8] {
    var writer = ByteWriter(capacity: 14)
    writer.write(UInt16(namespace % 4))
    writer.write(UInt32(namespace))
    writer.write(UInt64(position))
    return writer.bytes
}

// MARK: 1. Batch append

if wanted("append") {
    let total = quick ? 50_000 : 500_000
    // Two rounds, Trail and raw alternating, each into a fresh directory, and
    // the best of each kept: the raw rate alone ranged 430–620 k ev/s between
    // single runs on this machine, so one run of each gave a ratio off by a
    // quarter either way.
    let rounds = trailOnly ? 1 : 2
    for namespaces in (ProcessInfo.processInfo.environment["TRAIL_BENCH_NAMESPACES"].map { [Int($0)!] } ?? [1, 1000]) {
        let events = try makeEvents(total, namespaces: namespaces, prefix: "batch")
        let values = trailOnly ? [] : events.map(\.encoded)
        var (trailBest, rawBest) = (Double.infinity, Double.infinity)
        for round in 0..<rounds {
            let store = try Store(directory: scratch + "/append-\(namespaces)-\(round)", configuration: StoreConfiguration(durability: .buffered, shardCount: shardCount))
            trailBest = min(trailBest, try await seconds {
                var index = 0
                while index < events.count {
                    _ = try await store.append(contentsOf: Array(events[index..<min(index + 100, events.count)]))
                    index += 100
                }
            })
            store.close()
            try? FileManager.default.removeItem(atPath: scratch + "/append-\(namespaces)-\(round)")
            if trailOnly { break }
            let raw = RawRocksDB(path: scratch + "/raw-append-\(namespaces)-\(round)", sync: false)
            rawBest = min(rawBest, await seconds {
                var index = 0
                while index < values.count {
                    let end = min(index + 100, values.count)
                    raw.write(keys: (index..<end).map { rawKey($0 % namespaces, $0) }, values: Array(values[index..<end]))
                    index = end
                }
            })
            raw.close()
            try? FileManager.default.removeItem(atPath: scratch + "/raw-append-\(namespaces)-\(round)")
        }
        if trailOnly { print("trail \(Double(total) / trailBest) ev/s"); continue }
        report(Row(name: "batch append ×100, \(namespaces) namespace\(namespaces == 1 ? "" : "s"), buffered",
                   trail: Double(total) / trailBest, baseline: Double(total) / rawBest,
                   baselineName: "raw batch", unit: "ev/s", goal: "≥ 0.50"))
    }
}

// MARK: 2. Single appends from 64 tasks, synced

if wanted("synced") {
    let total = quick ? 6_400 : 64_000
    let events = try makeEvents(total, namespaces: 16, prefix: "synced")
    let store = try Store(directory: scratch + "/synced", configuration: StoreConfiguration(durability: .synced, shardCount: shardCount))
    let trailSeconds = try await seconds {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for task in 0..<64 {
                group.addTask {
                    var index = task
                    while index < events.count {
                        _ = try await store.append(events[index])
                        index += 64
                    }
                }
            }
            try await group.waitForAll()
        }
    }
    store.close()
    let raw = RawRocksDB(path: scratch + "/raw-synced", sync: true)
    let values = events.map(\.encoded)
    let rawSeconds = await seconds {
        var index = 0
        while index < values.count {
            let end = min(index + 64, values.count)
            raw.write(keys: (index..<end).map { rawKey($0 % 16, $0) }, values: Array(values[index..<end]))
            index = end
        }
    }
    raw.close()
    report(Row(name: "single appends, 64 tasks, synced", trail: Double(total) / trailSeconds,
               baseline: Double(total) / rawSeconds, baselineName: "raw synced ×64", unit: "ev/s", goal: "≥ 0.50"))
}

// MARK: 3. Full replay

if wanted("replay") {
    let total = quick ? 100_000 : 1_000_000
    let directory = scratch + "/replay"
    let namespace = try Namespace("replay/one")
    var store = try Store(directory: directory)
    var written = 0
    while written < total {
        let batch = try (0..<min(1000, total - written)).map { index in
            try Event(namespace: namespace, timestamp: HybridTimestamp(physicalMilliseconds: 1_700_000_000_000 + UInt64(written + index), logical: 0),
                      type: "bench", payload: payload())
        }
        _ = try await store.append(contentsOf: batch)
        written += batch.count
    }
    store.close()
    do {
        let raw = RawRocksDB(path: directory + "/rocksdb", families: ["default", "namespaces", "log", "ids", "origins", "state", "pending"], sync: false)
        raw.compact(family: 2)
        raw.close()
    }
    // The log compacted first, then two rounds, raw and Trail alternating on the
    // same files, best of each: otherwise the first reader after the writes pays
    // for the compactions still running, whichever it is.
    var trailBest = Double.infinity
    var rawBest = Double.infinity
    for _ in 0..<2 {
        let raw = RawRocksDB(path: directory + "/rocksdb", families: ["default", "namespaces", "log", "ids", "origins", "state", "pending"], sync: false)
        var rawCount = 0
        rawBest = min(rawBest, await seconds { rawCount = raw.scan(family: 2).count })
        raw.close()
        precondition(rawCount == total, "raw scan read \(rawCount) of \(total)")

        store = try Store(directory: directory)
        var read = 0
        trailBest = min(trailBest, try await seconds { read = try readEveryPage(store, namespace) })
        store.close()
        precondition(read == total, "replay read \(read) of \(total)")
    }
    report(Row(name: "replay \(total / 1000)k events (decoded)", trail: Double(total) / trailBest,
               baseline: Double(total) / rawBest, baselineName: "raw iterator", unit: "ev/s", goal: "≥ 0.40"))
}

// MARK: 4. Hashing, signing, verifying

if wanted("crypto") {
    let count = quick ? 2_000 : 20_000
    let key = try SigningKey(seed: payload(32))
    let namespace = try Namespace("rep/vouches")
    let payloads = (0..<count).map { _ in payload() }
    var events = [Event]()
    let buildSeconds = try await seconds {
        events = try payloads.enumerated().map { index, bytes in
            try Event(namespace: namespace, author: key.publicKey, timestamp: HybridTimestamp(rawValue: UInt64(index)), type: "vouch", payload: bytes)
        }
    }
    let bodies = events.map(\.body)
    let rawHashSeconds = await seconds {
        for body in bodies { _ = SHA256.hash(body) }
    }
    report(Row(name: "event id (encode + SHA-256), 256 B", trail: Double(count) / buildSeconds,
               baseline: Double(count) / rawHashSeconds, baselineName: "OpenSSL SHA-256", unit: "ev/s", goal: "report"))

    var signed = [Event]()
    let signSeconds = await seconds { signed = events.map { $0.signed(by: key) } }
    // OpenSSL's own Ed25519 rate: a fresh EVP_PKEY and context per signature over the same message size.
    let message = [UInt8](repeating: 7, count: Event.signatureDomain.count + 32)
    let seed = payload(32)
    let rawSignSeconds = await seconds {
        let pkey = seed.withUnsafeBufferPointer { EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, nil, $0.baseAddress, 32) }
        var signature = [UInt8](repeating: 0, count: 64)
        for _ in 0..<count {
            let context = EVP_MD_CTX_new()
            var length = 64
            _ = EVP_DigestSignInit(context, nil, nil, nil, pkey)
            _ = EVP_DigestSign(context, &signature, &length, message, message.count)
            EVP_MD_CTX_free(context)
        }
        EVP_PKEY_free(pkey)
    }
    report(Row(name: "sign event (Ed25519)", trail: Double(count) / signSeconds, baseline: Double(count) / rawSignSeconds,
               baselineName: "OpenSSL Ed25519 sign", unit: "ev/s", goal: "report"))

    var valid = 0
    let verifySeconds = await seconds { valid = signed.filter { $0.signatureStatus == .valid }.count }
    precondition(valid == count)
    let rawVerifySeconds = Double(count) / openSSLVerifyRate(count: count)
    report(Row(name: "verify event (Ed25519)", trail: Double(count) / verifySeconds, baseline: Double(count) / rawVerifySeconds,
               baselineName: "OpenSSL Ed25519 verify", unit: "ev/s", goal: "report"))

    // Appending signed events: the store verifies each signature before it queues the event.
    let store = try Store(directory: scratch + "/signed")
    let appendSeconds = try await seconds {
        var index = 0
        while index < signed.count {
            _ = try await store.append(contentsOf: Array(signed[index..<min(index + 100, signed.count)]))
            index += 100
        }
    }
    store.close()
    report(Row(name: "append signed ×100 (verify + store)", trail: Double(count) / appendSeconds, baseline: Double(count) / rawVerifySeconds,
               baselineName: "OpenSSL Ed25519 verify", unit: "ev/s", goal: "report"))
}

/// OpenSSL's own Ed25519 verify rate on one core (per second): a fresh
/// EVP_PKEY and context per signature, over an event's signed message size.
func openSSLVerifyRate(count: Int) -> Double {
    let message = [UInt8](repeating: 7, count: Event.signatureDomain.count + 32)
    let key = try! SigningKey(seed: payload(32))
    let rawSignature = key.sign(message)
    let publicBytes = key.publicKey.bytes
    let start = ContinuousClock.now
    for _ in 0..<count {
        let pkey = publicBytes.withUnsafeBufferPointer { EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nil, $0.baseAddress, 32) }
        let context = EVP_MD_CTX_new()
        precondition(EVP_DigestVerifyInit(context, nil, nil, nil, pkey) == 1)
        precondition(EVP_DigestVerify(context, rawSignature.bytes, 64, message, message.count) == 1)
        EVP_MD_CTX_free(context)
        EVP_PKEY_free(pkey)
    }
    let elapsed = ContinuousClock.now - start
    return Double(count) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
}

// MARK: 5. Peak RSS after 10M appends

func peakResidentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
    }
    return 0
}

/// Resets the peak that `peakResidentBytes` reads (Linux: "5" to /proc/self/clear_refs),
/// so that benchmarks run before in the same process do not count.
func resetPeakResidentBytes() {
    try? "5".write(toFile: "/proc/self/clear_refs", atomically: false, encoding: .utf8)
}


/// Writes `total` 256-byte records over 100 namespaces through raw RocksDB and prints its peak RSS:
/// run as a child process so that nothing Trail allocated counts against it.
if selected.contains("rss-raw") {
    let total = quick ? 1_000_000 : 10_000_000
    let shared = payload()
    let raw = RawRocksDB(path: scratch + "/raw-rss", sync: false)
    var written = 0
    let rawSeconds = await seconds {
        while written < total {
            var keys = [[UInt8]]()
            var values = [[UInt8]]()
            for index in written..<min(written + 100, total) {
                var bytes = shared
                bytes[index % 256] ^= UInt8(truncatingIfNeeded: index)
                keys.append(rawKey(index % 100, index))
                values.append(bytes)
            }
            raw.write(keys: keys, values: values)
            written += keys.count
        }
    }
    raw.close()
    print("raw-rss \(peakResidentBytes()) \(Double(total) / rawSeconds)")
    // exit() skips the top-level defer that removes the scratch directory (10M events: 700 MB).
    try? FileManager.default.removeItem(atPath: scratch)
    exit(0)
}

if wanted("rss") {
    let total = quick ? 1_000_000 : 10_000_000
    let namespaces = try (0..<100).map { try Namespace("rss/ns-\($0)") }
    let shared = payload()
    resetPeakResidentBytes()
    let store = try Store(directory: scratch + "/rss")
    var written = 0
    let trailSeconds = try await seconds {
        while written < total {
            var batch = [Event]()
            batch.reserveCapacity(100)
            for index in written..<min(written + 100, total) {
                var bytes = shared
                bytes[index % 256] ^= UInt8(truncatingIfNeeded: index)
                batch.append(try Event(namespace: namespaces[index % 100], timestamp: HybridTimestamp(rawValue: UInt64(index)), type: "bench", payload: bytes))
            }
            _ = try await store.append(contentsOf: batch)
            written += batch.count
        }
    }
    let trailPeak = peakResidentBytes()
    let trailDisk = store.diskByteCount
    store.close()
    try? FileManager.default.removeItem(atPath: scratch + "/rss")
    // The baseline in a fresh process of its own.
    let child = Process()
    child.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
    child.arguments = ["rss-raw"] + (quick ? ["--quick"] : [])
    let pipe = Pipe()
    child.standardOutput = pipe
    try child.run()
    let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    child.waitUntilExit()
    let fields = output.split(separator: "\n").first { $0.hasPrefix("raw-rss ") }?.split(separator: " ") ?? []
    let rawPeak = fields.count == 3 ? Double(fields[1]) ?? 0 : 0
    let rawRate = fields.count == 3 ? Double(fields[2]) ?? 0 : 0
    report(Row(name: "peak RSS after \(total / 1_000_000)M appends (MiB)", trail: Double(trailPeak) / 1048576, baseline: rawPeak / 1048576,
               baselineName: "raw RocksDB", unit: "MiB ", goal: "≤ 256 MiB"))
    print(String(format: "  (trail wrote %.0f ev/s, raw %.0f ev/s; trail SST bytes %llu)", Double(total) / trailSeconds, rawRate, trailDisk))
}

do { try await compareBenchmarks() } catch {
    FileHandle.standardError.write(Data("trail-bench compare: \(error)\n".utf8))
    exit(1)
}
try await replicationBenchmarks()
try await replayBenchmarks()
try await scaleBenchmark()
try await scaleAgents()
try await relayBenchmarks()

print("\n| benchmark | Trail | baseline | ratio | goal |\n|---|---:|---:|---:|---|")
for row in rows {
    print(String(format: "| %@ | %.0f %@ | %@: %.0f | %.2f | %@ |", row.name as NSString, row.trail, row.unit as NSString,
                 row.baselineName as NSString, row.baseline, row.ratio, row.goal as NSString))
}
