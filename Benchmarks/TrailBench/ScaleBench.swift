import Foundation
import TrailClient
import TrailCore
import TrailWorkloads

/// The federation at scale: 1000 agents over 10 relays (`trail cluster up 10`,
/// release processes on loopback). Agents talk in conversations of 10, one
/// namespace each, the members of a conversation spread over the relays; each
/// agent subscribes on its own relay and posts at a fixed pace. Random
/// partitions cut the federation during the run; after the last heal the
/// relays must converge. Cross-relay delivery is measured at each receiver
/// against the event's own timestamp, which the agent's relay gives it when
/// it accepts the event (one machine, one clock); the agent's wait for that
/// is reported apart, as the append round trip. The agents post from a
/// second process (`scale-agents`): in this one, their requests and the 1000
/// subscriptions waited on the same two event loops.
@MainActor func scaleBenchmark() async throws {
    guard wanted("scale") && !selected.isEmpty else { return }
    let relays = quick ? 4 : 10
    let agents = quick ? 200 : 1000
    let perConversation = 10
    let seconds = quick ? 15 : 30
    // Each agent posts once per interval: 1000 agents at 2 s is 500 events/s offered.
    let intervalMilliseconds = Int(ProcessInfo.processInfo.environment["TRAIL_SCALE_INTERVAL_MS"] ?? "") ?? 2000
    let base = 9100
    let directory = scratch + "/scale"
    let binary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("trail").path
    let topology = ProcessInfo.processInfo.environment["TRAIL_SCALE_TOPOLOGY"] ?? "mesh"
    // TRAIL_SCALE_PARTITIONS=0 runs without partitions (steady-state delivery alone).
    let partitioning = ProcessInfo.processInfo.environment["TRAIL_SCALE_PARTITIONS"] != "0"
    _ = try run(binary, ["cluster", "up", String(relays), "--dir", directory, "--base-port", String(base), "--topology", topology])
    defer { _ = try? run(binary, ["cluster", "down", "--dir", directory, "--purge"]) }
    let urls = (0..<relays).map { "http://127.0.0.1:\(base + $0)" }
    let clients = urls.map { TrailClient(relays: [$0], requestTimeout: .seconds(30)) }
    let latencies = LatencyHistogram(), steady = LatencyHistogram()
    let cuts = Cuts()
    let conversations = agents / perConversation
    let prefix = "scale/run-\(UInt32.random(in: 0...UInt32.max))"
    let started = ContinuousClock.now
    let window = Window()
    let accepted = Counter(), delivered = Counter(), connected = Counter()

    // The benchmark's own lag: how late a 10 ms sleep wakes in this process, which
    // carries every agent's subscription. A late wake-up delays the
    // measurements here, not the relays.
    let lag = LatencyHistogram()
    let lagProbe = Task.detached {
        let stopAt = try await window.end(after: seconds)
        while ContinuousClock.now < stopAt {
            let before = ContinuousClock.now
            try await Task.sleep(for: .milliseconds(10))
            lag.record((ContinuousClock.now - before - .milliseconds(10)).fractionalMilliseconds)
        }
    }
    // Partitions: every few seconds a random third of the relays is cut off for 2 s.
    let partitions = Task {
        var generator = SystemRandomNumberGenerator()
        var count = 0
        let stopAt = try await window.end(after: seconds)
        while partitioning, ContinuousClock.now < stopAt - .seconds(4) {
            try await Task.sleep(for: .seconds(3))
            let cut = Array((1...relays).shuffled(using: &generator).prefix(max(1, relays / 3)))
            let rest = (1...relays).filter { !cut.contains($0) }
            cuts.begin()
            _ = try run(binary, ["cluster", "partition", cut.map(String.init).joined(separator: ","), rest.map(String.init).joined(separator: ","), "--dir", directory])
            try await Task.sleep(for: .seconds(2))
            _ = try run(binary, ["cluster", "heal", "--dir", directory])
            cuts.end()
            count += 1
        }
        return count
    }
    try await withThrowingTaskGroup(of: Void.self) { group in
        for agent in 0..<agents {
            let (conversation, relay) = placement(agent, conversations: conversations, relays: relays)
            let client = clients[relay]
            let namespace = try Namespace("\(prefix)/c\(conversation)")
            group.addTask {
                for try await update in client.subscribe(namespace, participant: "agent-\(agent)") {
                    if let end = window.endIfOpen(after: seconds), ContinuousClock.now > end + .seconds(20) { break }
                    if case .connected = update, connected.increment() == agents { window.open() }
                    guard case .event(let received) = update, received.event.type == "msg",
                          received.origin.hex != "" else { continue }
                    // Another member's message (at full scale each member of a conversation has a relay of its own).
                    guard !String(decoding: received.event.payload, as: UTF8.self).hasPrefix("a\(agent) ") else { continue }
                    let latency = Date().timeIntervalSince1970 * 1000 - Double(received.event.timestamp.physicalMilliseconds)
                    latencies.record(latency)
                    // Messages sent while no partition was in effect (nor healing, 3 s after): steady state.
                    if !cuts.covers(received.event.timestamp.physicalMilliseconds) { steady.record(latency) }
                    delivered.add(1)
                }
            }
        }
        // The agents post from a second process (`trail-bench scale-agents`), started
        // when every subscription is open: their requests and this process's
        // subscriptions do not wait on each other's event loops. They end at stopAt;
        // the subscribers end 20 s later or when cancelled below.
        let stopAt = try await window.end(after: seconds)
        let posting = try await runAgents(environment: [
            "TRAIL_SCALE_URLS": urls.joined(separator: ","), "TRAIL_SCALE_PREFIX": prefix,
            "TRAIL_SCALE_AGENTS": String(agents), "TRAIL_SCALE_CONVERSATIONS": String(conversations),
            "TRAIL_SCALE_SECONDS": String(seconds), "TRAIL_SCALE_INTERVAL_MS": String(intervalMilliseconds),
        ])
        accepted.add(posting.accepted)
        let subscribedSeconds = Double((window.endIfOpen(after: 0)! - started).components.seconds)
        try await Task.sleep(until: stopAt + .seconds(1))
        let partitionCount = try await partitions.value
        let namespaces = try (0..<conversations).map { try Namespace("\(prefix)/c\($0)") }
        let converge = try await Federation(urls: urls).converge(namespaces, timeout: .seconds(120))
        let convergeSeconds = Double(converge.milliseconds) / 1000
        try await Task.sleep(for: .seconds(2))
        group.cancelAll()
        var rss = [Double]()
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: directory + "/cluster.json"))) as? [String: Any]
        for relay in (manifest?["relays"] as? [[String: Any]]) ?? [] {
            if let pid = relay["pid"] as? Int, let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
               let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
               let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "") {
                rss.append(kilobytes / 1024)
            }
        }
        let (p50, p95, p99) = (latencies.value(at: 50), latencies.value(at: 95), latencies.value(at: 99))
        let (s50, s95, s99) = (steady.value(at: 50), steady.value(at: 95), steady.value(at: 99))
        let rate = Double(accepted.value) / Double(seconds)
        print(String(format: "scale: %d agents over %d relays (%@), %d conversations, %d s, one post per agent every %d ms, %d partitions",
                     agents, relays, topology as NSString, conversations, seconds, intervalMilliseconds, partitionCount))
        print(String(format: "  all %d subscriptions open after %.1f s", agents, subscribedSeconds))
        print(String(format: "  accepted %d events (%.0f ev/s), delivered %d cross-agent messages", accepted.value, rate, delivered.value))
        _ = try? await lagProbe.value
        print(String(format: "  append round trip (agent to its relay, in the agents' process): p50 %.0f ms, p99 %.0f ms", posting.p50, posting.p99))
        print(String(format: "  the subscribers' process's own lag (a 10 ms sleep wakes late by): p50 %.1f ms, p99 %.1f ms", lag.value(at: 50), lag.value(at: 99)))
        print(String(format: "  cross-relay delivery, all messages: p50 %.0f ms, p95 %.0f ms, p99 %.0f ms", p50, p95, p99))
        print(String(format: "  cross-relay delivery, sent outside partitions: p50 %.0f ms, p95 %.0f ms, p99 %.0f ms", s50, s95, s99))
        print(String(format: "  converged %.2f s after the last heal", convergeSeconds))
        print(String(format: "  RSS per relay: min %.0f MiB, max %.0f MiB", rss.min() ?? 0, rss.max() ?? 0))
        report(Row(name: "federation \(agents) agents / \(relays) relays: delivery p99", trail: s99, baseline: 3000,
                   baselineName: "reference p95 (3 s)", unit: "ms  ", goal: "p99 < 1000 ms (outside partitions)"))
        report(Row(name: "  the same, messages sent during partitions", trail: p99, baseline: 3000,
                   baselineName: "reference p95 (3 s)", unit: "ms  ", goal: "report"))
    }
}

/// A count shared by many tasks.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add(_ n: Int) { lock.withLock { count += n } }
    /// Adds one; returns the new count.
    func increment() -> Int { lock.withLock { count += 1; return count } }
    var value: Int { lock.withLock { count } }
}

/// The measured window: it opens when every subscription is up.
final class Window: @unchecked Sendable {
    private let lock = NSLock()
    private var opened: ContinuousClock.Instant?
    func open() { lock.withLock { if opened == nil { opened = .now } } }
    func endIfOpen(after seconds: Int) -> ContinuousClock.Instant? { lock.withLock { opened.map { $0 + .seconds(seconds) } } }
    /// Waits (at most two minutes) for the window to open; returns when it closes.
    func end(after seconds: Int) async throws -> ContinuousClock.Instant {
        let give = ContinuousClock.now + .seconds(120)
        while ContinuousClock.now < give {
            if let end = endIfOpen(after: seconds) { return end }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw BenchError("the subscriptions did not all open within two minutes")
    }
}

/// When partitions were in effect (ms since the epoch), to tell steady-state deliveries from delayed ones.
final class Cuts: @unchecked Sendable {
    private let lock = NSLock()
    private var spans = [(UInt64, UInt64)]()
    static var now: UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }
    func begin() { lock.withLock { spans.append((Self.now, .max)) } }
    func end() { lock.withLock { if let last = spans.indices.last { spans[last].1 = Self.now + 3000 } } }
    func covers(_ milliseconds: UInt64) -> Bool { lock.withLock { spans.contains { $0.0 <= milliseconds && milliseconds <= $0.1 } } }
}

/// An agent's conversation, and the relay it talks to: a conversation's
/// members are spread over the relays.
func placement(_ agent: Int, conversations: Int, relays: Int) -> (conversation: Int, relay: Int) {
    let conversation = agent % conversations
    return (conversation, (conversation + agent / conversations) % relays)
}

extension Duration {
    var fractionalMilliseconds: Double { Double(components.seconds) * 1000 + Double(components.attoseconds) / 1e15 }
}

/// Runs `trail-bench scale-agents` with `environment` on a thread of its own
/// (waiting on a child blocks), and reads its one line of results.
func runAgents(environment: [String: String]) async throws -> (accepted: Int, p50: Double, p99: Double) {
    let output: String = try await withCheckedThrowingContinuation { continuation in
        Thread {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0])
            process.arguments = ["scale-agents"]
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
            let pipe = Pipe()
            process.standardOutput = pipe
            do { try process.run() } catch { continuation.resume(throwing: error); return }
            let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            continuation.resume(returning: output)
        }.start()
    }
    // "accepted N p50 X p99 Y" (then the benchmark table, empty)
    let line = output.split(separator: "\n").first { $0.hasPrefix("accepted ") } ?? ""
    let fields = line.split(whereSeparator: \.isWhitespace)
    guard fields.count == 6, fields[0] == "accepted", let accepted = Int(fields[1]), let p50 = Double(fields[3]), let p99 = Double(fields[5]) else {
        throw BenchError("scale-agents answered \(output.debugDescription)")
    }
    return (accepted, p50, p99)
}

/// `trail-bench scale-agents`: the scale run's posting half, in a process of
/// its own. Each agent posts to its relay once per interval (after a random
/// first wait) for the given seconds; prints how many appends were accepted
/// and their round trip.
@MainActor func scaleAgents() async throws {
    guard selected == ["scale-agents"] else { return }
    let environment = ProcessInfo.processInfo.environment
    guard let urls = environment["TRAIL_SCALE_URLS"]?.split(separator: ",").map(String.init), let prefix = environment["TRAIL_SCALE_PREFIX"],
          let agents = Int(environment["TRAIL_SCALE_AGENTS"] ?? ""), let conversations = Int(environment["TRAIL_SCALE_CONVERSATIONS"] ?? ""),
          let seconds = Int(environment["TRAIL_SCALE_SECONDS"] ?? ""), let interval = Int(environment["TRAIL_SCALE_INTERVAL_MS"] ?? "") else {
        throw BenchError("scale-agents is started by `trail-bench scale`, which sets TRAIL_SCALE_URLS, _PREFIX, _AGENTS, _CONVERSATIONS, _SECONDS and _INTERVAL_MS")
    }
    let clients = urls.map { TrailClient(relays: [$0], requestTimeout: .seconds(30)) }
    let accepted = Counter(), appends = LatencyHistogram()
    let stopAt = ContinuousClock.now + .seconds(seconds)
    try await withThrowingTaskGroup(of: Void.self) { group in
        for agent in 0..<agents {
            let (conversation, relay) = placement(agent, conversations: conversations, relays: urls.count)
            let client = clients[relay]
            let namespace = try Namespace("\(prefix)/c\(conversation)")
            group.addTask {
                // A random first wait spreads the agents over the interval; none outlasts the run.
                let first = ContinuousClock.now + .milliseconds(Int.random(in: 0..<interval))
                guard first < stopAt else { return }
                try await Task.sleep(until: first)
                var index = 0
                while ContinuousClock.now < stopAt {
                    // The relay stamps the event when it accepts it: delivery is measured
                    // from there, and the agent's own wait for its request is the round trip.
                    let sent = ContinuousClock.now
                    if (try? await client.append(type: "msg", payload: "a\(agent) m\(index)", to: namespace)) != nil {
                        accepted.add(1)
                        appends.record((ContinuousClock.now - sent).fractionalMilliseconds)
                    }
                    index += 1
                    try await Task.sleep(for: .milliseconds(interval))
                }
            }
        }
        try await group.waitForAll()
    }
    print("accepted \(accepted.value) p50 \(appends.value(at: 50)) p99 \(appends.value(at: 99))")
}
