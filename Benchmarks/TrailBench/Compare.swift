import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Histogram
import TrailClient
import TrailCore
#if canImport(Glibc)
import Glibc
#endif

// Trail beside Redis Streams and NATS JetStream, the same workloads in one
// run on loopback (`trail-bench compare`, driven by `Tools/compare`):
//   1. 1M appends of 256-byte payloads to 1 namespace/stream/subject and to
//      1000, at comparable durability (Trail buffered ~ Redis AOF everysec ~
//      JetStream default; Trail synced ~ Redis AOF always);
//   2. replay of the whole log from the start;
//   3. fan-out: 100 subscribers, delivery latency p50/p99;
//   4. replication: a second Trail relay catching up vs a Redis replica;
//   5. server RSS and bytes on disk.
// Every client is driven the same way: 2 connections, each sending batches
// of 1000 and waiting for the 1000 answers (Trail: one binary bulk HTTP
// request; Redis: 1000 pipelined XADD; JetStream: 1000 pipelined PUB with
// an ack inbox). The client's own CPU time is printed beside each figure.

/// A Redis or NATS server child with its own port and data directory.
final class PeerServer: @unchecked Sendable {
    let process = Process()
    let port: Int
    let directory: String

    init(_ name: String, executable: String, arguments: (Int, String) -> [String]) throws {
        port = try freePort()
        directory = scratch + "/" + name
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments(port, directory)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        // A child inherits the spawning thread's signal mask, and this process
        // blocks signals (for its dispatch sources): unblocked while spawning,
        // so that the server's own SIGTERM handler runs.
        var empty = sigset_t(), saved = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, &saved)
        defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
        try process.run()
    }

    var residentBytes: Int { residentBytesOf(process.processIdentifier) }

    /// SIGTERM, then SIGKILL if it has not exited within 10 s.
    func stop() {
        process.terminate()
        for _ in 0..<200 where process.isRunning { usleep(50_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// The path of a program: on the PATH, or in /usr/sbin (where Debian puts nats-server).
func executable(_ name: String) -> String? {
    let path = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":").map(String.init)
    return (path + ["/usr/sbin", "/usr/local/sbin"]).map { $0 + "/" + name }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

/// Bytes of every file under `directory`.
func diskBytes(_ directory: String) -> UInt64 {
    var total: UInt64 = 0
    let enumerator = FileManager.default.enumerator(atPath: directory)
    while let path = enumerator?.nextObject() as? String {
        if let attributes = try? FileManager.default.attributesOfItem(atPath: directory + "/" + path),
           attributes[.type] as? FileAttributeType == .typeRegular {
            total += (attributes[.size] as? UInt64) ?? 0
        }
    }
    return total
}

/// This process's CPU seconds (user + system): what the load clients cost.
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
        + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
}

struct Measured {
    var seconds: Double
    var clientCPU: Double
}

@MainActor func measure(_ body: @MainActor () async throws -> Void) async rethrows -> Measured {
    let cpu = cpuSeconds()
    let start = ContinuousClock.now
    try await body()
    return Measured(seconds: (ContinuousClock.now - start).seconds, clientCPU: cpuSeconds() - cpu)
}

struct ComparisonRow {
    let system: String
    let durability: String
    let workload: String
    let value: Double
    let unit: String
    let higherIsBetter: Bool
    var clientCPU: Double? = nil
    var rss: Int? = nil
    var disk: UInt64? = nil
}

enum System: String, CaseIterable {
    case trail = "Trail"
    case redis = "Redis Streams"
    case jetstream = "NATS JetStream"
}

/// What each durability setting promises.
let promises: [(String, String)] = [
    ("Trail buffered", "WAL written before the answer: survives a process crash; power loss can lose the writes of the last moments"),
    ("Trail synced", "WAL fsynced before the answer: survives power loss"),
    ("Redis AOF everysec", "AOF written before the reply, fsynced every second: survives a process crash; power loss can lose about 1 s"),
    ("Redis AOF always", "AOF fsynced before the reply: survives power loss"),
    ("JetStream default", "file store written before the ack, fsynced every 2 min (sync_interval; nats-server 2.9 has no per-message fsync): survives a process crash; power loss can lose minutes"),
]

/// Connections each load client opens (TRAIL_COMPARE_CONNECTIONS, default 2).
let compareConnections = Int(ProcessInfo.processInfo.environment["TRAIL_COMPARE_CONNECTIONS"] ?? "") ?? 2

@MainActor func compareBenchmarks() async throws {
    guard selected.contains("compare") else { return }
    // --trail-only: Trail's rows alone, for profiling; no peers, no table written.
    guard let redisServer = executable("redis-server") ?? (trailOnly ? "" : nil),
          let natsServer = executable("nats-server") ?? (trailOnly ? "" : nil) else {
        throw BenchError("compare needs redis-server and nats-server on the PATH or in /usr/sbin (Tools/compare installs them)")
    }
    let total = quick ? 100_000 : 1_000_000
    let batch = 1000
    var table = [ComparisonRow]()
    func add(_ row: ComparisonRow) {
        table.append(row)
        var line = String(format: "%-16@ %-20@ %-34@ %12.0f %@", row.system as NSString, row.durability as NSString,
                          row.workload as NSString, row.value, row.unit as NSString)
        if let cpu = row.clientCPU { line += String(format: "   client CPU %.2f cores", cpu) }
        if let rss = row.rss { line += String(format: "   RSS %.0f MiB", Double(rss) / 1048576) }
        if let disk = row.disk { line += String(format: "   disk %.0f MiB", Double(disk) / 1048576) }
        print(line)
    }
    let pool = (0..<4096).map { _ in payload(256) }
    let count = total >= 1_000_000 ? "\(total / 1_000_000)M" : "\(total / 1000)k"

    for strict in [false, true] {
        // Trail
        do {
            let durability = strict ? "synced" : "buffered"
            let serve = try ServeChild("compare-trail-\(durability)", extra: [
                "--durability", durability, "--peer-listen", "127.0.0.1:0", "--allow-any"])
            let label = "Trail \(durability)"
            let one = try await measure { try await appendTrail(serve, total: total, batch: batch, namespaces: 1, pool: pool) }
            add(ComparisonRow(system: "Trail", durability: label, workload: "\(count) appends, 1 namespace", value: Double(total) / one.seconds,
                              unit: "ev/s", higherIsBetter: true, clientCPU: one.clientCPU / one.seconds))
            if !strict {
                if trailOnly { await printMemory(serve) }
                let replay = try await measure { try await replayTrail(serve, total: total) }
                add(ComparisonRow(system: "Trail", durability: label, workload: "replay \(count) from the start", value: Double(total) / replay.seconds,
                                  unit: "ev/s", higherIsBetter: true, clientCPU: replay.clientCPU / replay.seconds))
                let resting = await restingResidentBytes(serve)
                add(ComparisonRow(system: "Trail", durability: label, workload: "server after \(count) events", value: Double(resting) / 1048576,
                                  unit: "MiB RSS", higherIsBetter: false, rss: resting, disk: diskBytes(serve.directory)))
                if trailOnly { await printMemory(serve) }
                let caughtUp = try await replicateTrail(serve, total: total)
                add(ComparisonRow(system: "Trail", durability: label, workload: "replica catches up \(count)", value: caughtUp,
                                  unit: "s", higherIsBetter: false))
            }
            let many = try await measure { try await appendTrail(serve, total: total, batch: batch, namespaces: 1000, pool: pool) }
            add(ComparisonRow(system: "Trail", durability: label, workload: "\(count) appends, 1000 namespaces", value: Double(total) / many.seconds,
                              unit: "ev/s", higherIsBetter: true, clientCPU: many.clientCPU / many.seconds))
            serve.stop()
        }
        if trailOnly { continue }
        // Redis
        do {
            let fsync = strict ? "always" : "everysec"
            let redis = try PeerServer("compare-redis-\(fsync)", executable: redisServer) { port, directory in
                ["--port", "\(port)", "--bind", "127.0.0.1", "--dir", directory, "--appendonly", "yes", "--appendfsync", fsync,
                 "--save", "", "--protected-mode", "no", "--logfile", directory + "/redis.log"]
            }
            let label = "Redis AOF \(fsync)"
            let one = try await measure { try await appendRedis(redis.port, total: total, batch: batch, namespaces: 1, pool: pool) }
            add(ComparisonRow(system: "Redis Streams", durability: label, workload: "\(count) appends, 1 namespace", value: Double(total) / one.seconds,
                              unit: "ev/s", higherIsBetter: true, clientCPU: one.clientCPU / one.seconds))
            if !strict {
                let replay = try await measure { try await replayRedis(redis.port, total: total) }
                add(ComparisonRow(system: "Redis Streams", durability: label, workload: "replay \(count) from the start", value: Double(total) / replay.seconds,
                                  unit: "ev/s", higherIsBetter: true, clientCPU: replay.clientCPU / replay.seconds))
                let resting = await restingResidentBytes(redis)
                add(ComparisonRow(system: "Redis Streams", durability: label, workload: "server after \(count) events", value: Double(resting) / 1048576,
                                  unit: "MiB RSS", higherIsBetter: false, rss: resting, disk: diskBytes(redis.directory)))
                let caughtUp = try await replicateRedis(redis, total: total)
                add(ComparisonRow(system: "Redis Streams", durability: label, workload: "replica catches up \(count)", value: caughtUp,
                                  unit: "s", higherIsBetter: false))
            }
            let many = try await measure { try await appendRedis(redis.port, total: total, batch: batch, namespaces: 1000, pool: pool) }
            add(ComparisonRow(system: "Redis Streams", durability: label, workload: "\(count) appends, 1000 namespaces", value: Double(total) / many.seconds,
                              unit: "ev/s", higherIsBetter: true, clientCPU: many.clientCPU / many.seconds))
            redis.stop()
        }
        // JetStream: nats-server 2.9 cannot fsync per message, so it has no strict row.
        if !strict {
            let nats = try PeerServer("compare-nats", executable: natsServer) { port, directory in
                ["-js", "-a", "127.0.0.1", "-p", "\(port)", "-sd", directory, "-l", directory + "/nats.log"]
            }
            let label = "JetStream default"
            let setup = try NATSConnection(port: nats.port)
            _ = try setup.request("$JS.API.STREAM.CREATE.BENCH", #"{"name":"BENCH","subjects":["bench.>"],"storage":"file","num_replicas":1}"#)
            _ = try setup.request("$JS.API.STREAM.CREATE.MANY", #"{"name":"MANY","subjects":["many.>"],"storage":"file","num_replicas":1}"#)
            let one = try await measure { try await appendNATS(nats.port, subject: "bench", total: total, batch: batch, namespaces: 1, pool: pool) }
            add(ComparisonRow(system: "NATS JetStream", durability: label, workload: "\(count) appends, 1 namespace", value: Double(total) / one.seconds,
                              unit: "ev/s", higherIsBetter: true, clientCPU: one.clientCPU / one.seconds))
            let replay = try await measure { try await replayNATS(nats.port, total: total) }
            add(ComparisonRow(system: "NATS JetStream", durability: label, workload: "replay \(count) from the start", value: Double(total) / replay.seconds,
                              unit: "ev/s", higherIsBetter: true, clientCPU: replay.clientCPU / replay.seconds))
            let resting = await restingResidentBytes(nats)
            add(ComparisonRow(system: "NATS JetStream", durability: label, workload: "server after \(count) events", value: Double(resting) / 1048576,
                              unit: "MiB RSS", higherIsBetter: false, rss: resting, disk: diskBytes(nats.directory)))
            let many = try await measure { try await appendNATS(nats.port, subject: "many", total: total, batch: batch, namespaces: 1000, pool: pool) }
            add(ComparisonRow(system: "NATS JetStream", durability: label, workload: "\(count) appends, 1000 namespaces", value: Double(total) / many.seconds,
                              unit: "ev/s", higherIsBetter: true, clientCPU: many.clientCPU / many.seconds))
            nats.stop()
        }
    }

    // Fan-out: 100 subscribers, one writer at 1000 events/s.
    let subscribers = 100
    let rate = 1000
    let duration = quick ? 3 : 10
    do {
        let serve = try ServeChild("compare-fanout")
        let result = try await fanout(serve, subscribers: subscribers, rate: rate, duration: duration, namespace: "fan/compare")
        serve.stop()
        addFanout("Trail", "Trail buffered", result)
    }
    if trailOnly { return }
    do {
        let redis = try PeerServer("compare-fanout-redis", executable: redisServer) { port, directory in
            ["--port", "\(port)", "--bind", "127.0.0.1", "--dir", directory, "--appendonly", "yes", "--appendfsync", "everysec",
             "--save", "", "--protected-mode", "no", "--logfile", directory + "/redis.log"]
        }
        let result = try await fanoutRedis(redis.port, subscribers: subscribers, rate: rate, duration: duration)
        redis.stop()
        addFanout("Redis Streams", "Redis AOF everysec", result)
    }
    do {
        let nats = try PeerServer("compare-fanout-nats", executable: natsServer) { port, directory in
            ["-js", "-a", "127.0.0.1", "-p", "\(port)", "-sd", directory, "-l", directory + "/nats.log"]
        }
        let result = try await fanoutNATS(nats.port, subscribers: subscribers, rate: rate, duration: duration)
        nats.stop()
        addFanout("NATS JetStream", "JetStream default", result)
    }
    func addFanout(_ system: String, _ durability: String, _ result: FanoutResult) {
        let deliveries = subscribers * rate * duration
        add(ComparisonRow(system: system, durability: durability, workload: "fan-out to \(subscribers), p50", value: result.p50, unit: "ms", higherIsBetter: false))
        add(ComparisonRow(system: system, durability: durability, workload: "fan-out to \(subscribers), p99", value: result.p99, unit: "ms", higherIsBetter: false))
        if result.received < deliveries { print("  \(system): \(result.received) of \(deliveries) deliveries arrived") }
    }

    let markdown = comparisonMarkdown(table, total: total, subscribers: subscribers, rate: rate, duration: duration)
    print("\n" + markdown)
    if arguments.contains("--write-docs") { try writeAgainstPeers(markdown) }
}

// MARK: Appends

func appendTrail(_ serve: ServeChild, total: Int, batch: Int, namespaces: Int, pool: [[UInt8]]) async throws {
    let names = try (0..<namespaces).map { try Namespace(namespaces == 1 ? "bench/one" : "bench/many-\($0)") }
    let client = TrailClient(relays: [serve.url], requestTimeout: .seconds(60))
    let base: UInt64 = 1_700_000_000_000 + (namespaces == 1 ? 0 : 10_000_000)
    try await lanes(compareConnections) { lane in
        for first in stride(from: lane * batch, to: total, by: compareConnections * batch) {
            let events = try (first..<min(first + batch, total)).map { index in
                try Event(namespace: names[index % namespaces], timestamp: HybridTimestamp(physicalMilliseconds: base + UInt64(index), logical: 0),
                          type: "bench", payload: pool[index % pool.count])
            }
            let results = namespaces == 1
                ? try await client.append(contentsOf: events, to: names[0])
                : try await client.append(contentsOf: events)
            guard results.count == events.count, results.allSatisfy({ $0.outcome == "appended" }) else {
                throw BenchError("trail answered \(results.first?.outcome ?? "nothing") to a batch")
            }
        }
    }
    try await client.shutdown()
}

func appendRedis(_ port: Int, total: Int, batch: Int, namespaces: Int, pool: [[UInt8]]) async throws {
    let keys = (0..<namespaces).map { Array((namespaces == 1 ? "bench:one" : "bench:many-\($0)").utf8) }
    let star = Array("*".utf8), field = Array("p".utf8), xadd = Array("XADD".utf8)
    try await threads(compareConnections) { lane in
        let connection = try RedisConnection(port: port)
        var command = [UInt8]()
        command.reserveCapacity(batch * 320)
        for first in stride(from: lane * batch, to: total, by: compareConnections * batch) {
            command.removeAll(keepingCapacity: true)
            let end = min(first + batch, total)
            for index in first..<end {
                RedisConnection.append([xadd, keys[index % namespaces], star, field, pool[index % pool.count]], to: &command)
            }
            try connection.pipeline(command, count: end - first)
        }
    }
}

func appendNATS(_ port: Int, subject: String, total: Int, batch: Int, namespaces: Int, pool: [[UInt8]]) async throws {
    let subjects = (0..<namespaces).map { namespaces == 1 ? "\(subject).one" : "\(subject).many-\($0)" }
    try await threads(compareConnections) { lane in
        let connection = try NATSConnection(port: port)
        for first in stride(from: lane * batch, to: total, by: compareConnections * batch) {
            try connection.publishAcked((first..<min(first + batch, total)).map { (subjects[$0 % namespaces], pool[$0 % pool.count]) })
        }
    }
}

// MARK: Replay

func replayTrail(_ serve: ServeChild, total: Int) async throws {
    let client = TrailClient(relays: [serve.url], requestTimeout: .seconds(60))
    let namespace = try Namespace("bench/one")
    var read = 0
    for try await page in client.replay(namespace, pageSize: 10_000) { read += page.events.count }
    guard read == total else { throw BenchError("trail replay stopped at \(read) of \(total)") }
    try await client.shutdown()
}

func replayRedis(_ port: Int, total: Int) async throws {
    try await threads(1) { _ in
        let connection = try RedisConnection(port: port)
        var last = "-"
        var read = 0
        while read < total {
            guard case .array(let entries?) = try connection.call(["XRANGE", "bench:one", last, "+", "COUNT", "1000"]), !entries.isEmpty else {
                throw BenchError("redis replay stopped at \(read) of \(total)")
            }
            read += entries.count
            guard case .array(let entry?) = entries.last, let id = entry.first?.text else { throw BenchError("an XRANGE entry without an id") }
            last = "(" + id
        }
    }
}

func replayNATS(_ port: Int, total: Int) async throws {
    try await threads(1) { _ in
        let connection = try NATSConnection(port: port)
        let deliver = "replay.\(UInt32.random(in: 0...UInt32.max))"
        try connection.subscribe(deliver, sid: 7)
        _ = try connection.request("$JS.API.CONSUMER.CREATE.BENCH", """
            {"stream_name":"BENCH","config":{"deliver_subject":"\(deliver)","deliver_policy":"all","ack_policy":"none","replay_policy":"instant"}}
            """)
        var read = 0
        while read < total {
            let message = try connection.message()
            if message.sid == 7, !message.payload.isEmpty { read += 1 }
        }
    }
}

// MARK: Replication

/// Seconds from starting a second relay linked to `serve` until it holds every event.
func replicateTrail(_ serve: ServeChild, total: Int) async throws -> Double {
    guard let peerPort = serve.peerPort else { throw BenchError("the source relay has no peer listener") }
    let start = ContinuousClock.now
    let replica = try ServeChild("compare-trail-replica", extra: ["--connect", "127.0.0.1:\(peerPort)", "--allow-any"])
    defer { replica.stop() }
    let client = TrailClient(relays: [replica.url])
    defer { Task { try? await client.shutdown() } }
    let deadline = ContinuousClock.now + .seconds(300)
    while ContinuousClock.now < deadline {
        if let held = try await client.namespaces(prefix: "bench/one").first?.eventCount, held >= UInt64(total) {
            return (ContinuousClock.now - start).seconds
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    throw BenchError("the Trail replica did not catch up in 300 s")
}

/// Seconds from starting a Redis replica of `redis` until its stream holds every entry.
func replicateRedis(_ redis: PeerServer, total: Int) async throws -> Double {
    let redisServer = executable("redis-server") ?? "/usr/bin/redis-server"
    let start = ContinuousClock.now
    let replica = try PeerServer("compare-redis-replica", executable: redisServer) { port, directory in
        ["--port", "\(port)", "--bind", "127.0.0.1", "--dir", directory, "--appendonly", "yes", "--appendfsync", "everysec",
         "--save", "", "--protected-mode", "no", "--logfile", directory + "/redis.log", "--replicaof", "127.0.0.1", "\(redis.port)"]
    }
    defer { replica.stop() }
    let caughtUp = Locked<Double?>(nil)
    try await threads(1) { _ in
        let connection = try RedisConnection(port: replica.port)
        let deadline = Date().addingTimeInterval(300)
        while Date() < deadline {
            // A replica loading the master's snapshot answers LOADING: ask again.
            var command = [UInt8]()
            RedisConnection.append([Array("XLEN".utf8), Array("bench:one".utf8)], to: &command)
            try connection.socket.write(command)
            if case .integer(let length) = try connection.reply(), length >= total {
                caughtUp.withLock { $0 = (ContinuousClock.now - start).seconds }
                return
            }
            usleep(20_000)
        }
    }
    guard let seconds = caughtUp.withLock({ $0 }) else { throw BenchError("the Redis replica did not catch up in 300 s") }
    return seconds
}

// MARK: Fan-out

/// Redis: `subscribers` connections each blocking in XREAD on one stream,
/// read by one thread with poll(2) (as an event loop would: per-subscriber
/// threads would measure context switches, not Redis); one writer XADDs
/// `rate` entries a second whose value is the send time.
func fanoutRedis(_ port: Int, subscribers: Int, rate: Int, duration: Int) async throws -> FanoutResult {
    let total = rate * duration
    let result = Locked(FanoutResult(p50: 0, p99: 0, max: 0, received: 0))
    let ready = Locked(false)
    let readers = Task {
        try await threads(1) { _ in
            let connections = try (0..<subscribers).map { _ in try RedisConnection(port: port) }
            func xread(_ connection: RedisConnection, after last: [UInt8]) throws {
                var command = [UInt8]()
                RedisConnection.append([Array("XREAD".utf8), Array("BLOCK".utf8), Array("0".utf8), Array("STREAMS".utf8), Array("fan".utf8), last],
                                       to: &command)
                try connection.socket.write(command)
            }
            for connection in connections { try xread(connection, after: Array("$".utf8)) }
            ready.withLock { $0 = true }
            var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
            var received = 0
            try pollLoop(connections.map(\.socket), until: Date().addingTimeInterval(Double(duration) + 30),
                         done: { received >= subscribers * total }) { index, bytes in
                var consumed = 0
                while let end = skimRESP(bytes, consumed, { _ in }) {
                    let now = wallNanos()
                    var last: UnsafeRawBufferPointer?
                    _ = skimRESP(bytes, consumed) { value in
                        if let sent = sentTime(value) {
                            _ = histogram.record(now > sent ? now - sent : 0)
                            received += 1
                        } else if value.contains(UInt8(ascii: "-")) {
                            last = value
                        }
                    }
                    consumed = end
                    if let last { try xread(connections[index], after: Array(last)) }
                }
                return consumed
            }
            result.withLock { $0 = FanoutResult(histogram, received: received) }
        }
    }
    for _ in 0..<400 where !ready.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(25)) }
    try await Task.sleep(for: .milliseconds(300))
    try await threads(1) { _ in
        let writer = try RedisConnection(port: port)
        try paced(total, rate: rate) { _ = try writer.call(["XADD", "fan", "*", "p", "t\(wallNanos())"]) }
    }
    _ = try await readers.value
    return result.withLock { $0 }
}

/// JetStream: `subscribers` connections each subscribed to the subject a
/// stream captures, read by one thread with poll(2); one writer publishes
/// (and waits for JetStream's ack) `rate` messages a second carrying the send time.
func fanoutNATS(_ port: Int, subscribers: Int, rate: Int, duration: Int) async throws -> FanoutResult {
    let total = rate * duration
    let result = Locked(FanoutResult(p50: 0, p99: 0, max: 0, received: 0))
    let ready = Locked(false)
    let setup = try NATSConnection(port: port)
    _ = try setup.request("$JS.API.STREAM.CREATE.FAN", #"{"name":"FAN","subjects":["fan.>"],"storage":"file","num_replicas":1}"#)
    let readers = Task {
        try await threads(1) { _ in
            let connections = try (0..<subscribers).map { _ in try NATSConnection(port: port) }
            for connection in connections {
                try connection.subscribe("fan.ticks", sid: 3)
                // The subscription is in place once the PONG to this PING comes back.
                try connection.socket.write(Array("PING\r\n".utf8))
                while try connection.socket.line() != Array("PONG".utf8) {}
            }
            ready.withLock { $0 = true }
            var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
            var received = 0
            let msg = Array("MSG ".utf8), ping = Array("PING".utf8)
            try pollLoop(connections.map(\.socket), until: Date().addingTimeInterval(Double(duration) + 30),
                         done: { received >= subscribers * total }) { index, bytes in
                var consumed = 0
                while true {
                    var lineEnd = consumed
                    while lineEnd + 1 < bytes.count, !(bytes[lineEnd] == 13 && bytes[lineEnd + 1] == 10) { lineEnd += 1 }
                    guard lineEnd + 1 < bytes.count else { return consumed }
                    let line = UnsafeRawBufferPointer(rebasing: bytes[consumed..<lineEnd])
                    guard line.starts(with: msg) else {
                        if line.elementsEqual(ping) { try connections[index].socket.write(Array("PONG\r\n".utf8)) }
                        consumed = lineEnd + 2
                        continue
                    }
                    var size = 0
                    var digit = lineEnd - 1
                    var scale = 1
                    while digit > consumed, bytes[digit] != UInt8(ascii: " ") {
                        size += Int(bytes[digit] &- 48) * scale
                        scale *= 10
                        digit -= 1
                    }
                    let payloadStart = lineEnd + 2
                    guard payloadStart + size + 2 <= bytes.count else { return consumed }
                    let now = wallNanos()
                    if let sent = sentTime(UnsafeRawBufferPointer(rebasing: bytes[payloadStart..<payloadStart + size])) {
                        _ = histogram.record(now > sent ? now - sent : 0)
                        received += 1
                    }
                    consumed = payloadStart + size + 2
                }
            }
            result.withLock { $0 = FanoutResult(histogram, received: received) }
        }
    }
    for _ in 0..<400 where !ready.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(25)) }
    try await Task.sleep(for: .milliseconds(300))
    try await threads(1) { _ in
        let writer = try NATSConnection(port: port)
        try paced(total, rate: rate) { try writer.publishAcked([("fan.ticks", Array("t\(wallNanos())".utf8))]) }
    }
    _ = try await readers.value
    return result.withLock { $0 }
}

/// Calls `send` `total` times, `rate` times a second, on this thread.
func paced(_ total: Int, rate: Int, _ send: () throws -> Void) throws {
    let start = Date()
    for index in 0..<total {
        let wait = start.addingTimeInterval(Double(index) / Double(rate)).timeIntervalSinceNow
        if wait > 0 { usleep(UInt32(wait * 1e6)) }
        try send()
    }
}

extension FanoutResult {
    /// Percentiles of delivery delays recorded in nanoseconds, in milliseconds.
    init(_ histogram: Histogram<UInt64>, received: Int) {
        self.init(p50: Double(histogram.valueAtPercentile(50)) / 1e6, p99: Double(histogram.valueAtPercentile(99)) / 1e6,
                  max: Double(histogram.max) / 1e6, received: received)
    }
}

// MARK: The table

func comparisonMarkdown(_ rows: [ComparisonRow], total: Int, subscribers: Int, rate: Int, duration: Int) -> String {
    let redisVersion = (try? run(executable("redis-server") ?? "/usr/bin/redis-server", ["--version"]))?.split(separator: " ").first { $0.hasPrefix("v=") }.map { String($0.dropFirst(2)) } ?? "?"
    let natsVersion = (try? run(executable("nats-server") ?? "/usr/sbin/nats-server", ["--version"]))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
    let commit = (try? run("/usr/bin/git", ["rev-parse", "--short", "HEAD"]))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? "?"
    let date = ISO8601DateFormatter.string(from: Date(), timeZone: .gmt, formatOptions: [.withFullDate])
    var lines = [String]()
    lines.append("Run \(date): Trail \(commit), Redis \(redisVersion), \(natsVersion); \(ProcessInfo.processInfo.activeProcessorCount) cores, loopback, `Tools/compare`\(quick ? " --quick" : "").")
    lines.append("Each client: \(compareConnections) connections × batches of 1000 (Trail: binary bulk HTTP; Redis: pipelined XADD; JetStream: pipelined PUB with acks), 256-byte random payloads; fan-out: \(subscribers) subscribers, one writer at \(rate)/s for \(duration) s. \"client CPU\" is the load generator's own CPU in cores: below 1 per connection, it is not what bounds the figure. RSS is sampled 2 s after the workload's last request, the same wait for every server.")
    lines.append("")
    lines.append("| system | durability | workload | figure | client CPU | RSS | disk | Trail ÷ this |")
    lines.append("|---|---|---|---:|---:|---:|---:|---:|")
    for row in rows {
        let trail = rows.first { $0.system == "Trail" && $0.workload == row.workload
            && ($0.durability == row.durability || comparable($0.durability, row.durability)) }
        var ratio = ""
        if row.system != "Trail", let trail, trail.value > 0, row.value > 0 {
            let advantage = row.higherIsBetter ? trail.value / row.value : row.value / trail.value
            ratio = String(format: "%.2f×", advantage)
        }
        let figure = row.unit == "ev/s" ? String(format: "%.0f ev/s", row.value)
            : row.unit == "MiB RSS" ? String(format: "%.0f MiB RSS", row.value) : String(format: "%.2f %@", row.value, row.unit as NSString)
        lines.append("| \(row.system) | \(row.durability) | \(row.workload) | \(figure) | \(row.clientCPU.map { String(format: "%.2f", $0) } ?? "") | \(row.rss.map { String(format: "%.0f MiB", Double($0) / 1048576) } ?? "") | \(row.disk.map { String(format: "%.0f MiB", Double($0) / 1048576) } ?? "") | \(ratio) |")
    }
    lines.append("")
    lines.append("\"Trail ÷ this\" is Trail's advantage over that row at comparable durability: its rate over theirs, or their latency, time or memory over Trail's; above 1, Trail is better.")
    lines.append("")
    lines.append("| durability | what it promises |")
    lines.append("|---|---|")
    for (name, promise) in promises { lines.append("| \(name) | \(promise) |") }
    return lines.joined(separator: "\n")
}

/// Durability settings compared with each other: buffered with everysec and JetStream's default, synced with always.
func comparable(_ trail: String, _ other: String) -> Bool {
    trail.hasSuffix("buffered") ? (other.hasSuffix("everysec") || other.hasPrefix("JetStream")) : other.hasSuffix("always")
}

/// Replaces the "Against peers" section of Docs/PERFORMANCE.md (or appends it).
func writeAgainstPeers(_ markdown: String) throws {
    let path = "Docs/PERFORMANCE.md"
    var text = try String(contentsOfFile: path, encoding: .utf8)
    let heading = "## Against peers"
    let section = heading + "\n\n" + markdown + "\n"
    if let start = text.range(of: heading) {
        let rest = text[start.upperBound...]
        let end = rest.range(of: "\n## ")?.lowerBound ?? text.endIndex
        text.replaceSubrange(start.lowerBound..<end, with: section)
    } else {
        text += "\n" + section
    }
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    print("wrote \(heading) into \(path)")
}

/// A server's RSS at rest: two seconds after its last request, the same wait
/// for every system, so that what is measured is what the server keeps, not
/// the buffers of the response it just sent.
func restingResidentBytes(_ server: some ResidentProcess) async -> Int {
    try? await Task.sleep(for: .seconds(2))
    return server.residentBytes
}

protocol ResidentProcess { var residentBytes: Int { get } }
extension ServeChild: ResidentProcess {}
extension PeerServer: ResidentProcess {}

/// Where a server's memory is: /proc's split of RSS and RocksDB's own gauges.
func printMemory(_ serve: ServeChild) async {
    let status = (try? String(contentsOfFile: "/proc/\(serve.process.processIdentifier)/status", encoding: .utf8)) ?? ""
    for line in status.split(separator: "\n") where line.hasPrefix("Rss") || line.hasPrefix("VmRSS") { print("  " + line) }
    guard let url = URL(string: serve.url + "/metrics"), let (data, _) = try? await URLSession.shared.data(from: url) else { return }
    for line in String(decoding: data, as: UTF8.self).split(separator: "\n")
    where line.hasPrefix("trail_rocksdb_memtable") || line.hasPrefix("trail_rocksdb_block_cache") || line.hasPrefix("trail_rocksdb_table_readers") {
        print("  " + line)
    }
}
