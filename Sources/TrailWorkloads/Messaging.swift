import Foundation
import Histogram
public import TrailClient
public import TrailCore

/// Direct messaging, the smallest scale: conversations of a few agents, one
/// namespace each, each agent on its own relay. Every message is read by
/// every other participant through a subscription on *its* relay, so the
/// delay measured is cross-relay delivery: append on one relay, replication,
/// fan-out on another.
public struct MessagingRun: Sendable {
    public let federation: Federation
    public var conversations = 2
    public var agentsPerConversation = 3
    public var messagesPerAgent = 20

    public init(federation: Federation) { self.federation = federation }

    public func run() async throws -> (WorkloadReport, latencyMilliseconds: (p50: Double, p99: Double)) {
        let histogram = LatencyHistogram()
        var delivered = 0
        var expected = 0
        // Subscribers stay until the participant lists were checked on every relay.
        let listed = Flag()
        let prefix = "chat/direct-\(UInt32.random(in: 0...UInt32.max))"
        try await withThrowingTaskGroup(of: Int.self) { group in
            for conversation in 0..<conversations {
                let namespace = try Namespace("\(prefix)/\(conversation)")
                let agents = agentsPerConversation
                expected += agents * (agents - 1) * messagesPerAgent
                for agent in 0..<agents {
                    let client = federation.client(conversation + agent)
                    // Each agent listens for the others' messages…
                    group.addTask {
                        var seen = 0
                        let want = (agents - 1) * messagesPerAgent
                        let deadline = ContinuousClock.now + .seconds(60)
                        for try await update in client.subscribe(namespace, participant: "agent-\(agent)") {
                            guard case .event(let received) = update, received.event.type == "msg",
                                  String(decoding: received.event.payload, as: UTF8.self).hasPrefix("agent-\(agent):") == false else { continue }
                            let sent = received.event.timestamp.physicalMilliseconds
                            histogram.record(Date().timeIntervalSince1970 * 1000 - Double(sent))
                            seen += 1
                            if seen >= want || ContinuousClock.now > deadline { break }
                        }
                        while !listed.isSet, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
                        return seen
                    }
                    // …and says its own.
                    group.addTask {
                        try await Task.sleep(for: .milliseconds(300))
                        for index in 0..<messagesPerAgent {
                            let message = try Federation.event(namespace, type: "msg", payload: "agent-\(agent): message \(index)")
                            _ = try await client.append(message)
                            try await Task.sleep(for: .milliseconds(20))
                        }
                        return 0
                    }
                }
            }
            // Every relay lists every participant of a conversation, wherever each is connected.
            let first = try Namespace("\(prefix)/0")
            let agents = agentsPerConversation
            group.addTask {
                defer { listed.set() }
                let deadline = ContinuousClock.now + .seconds(10)
                while ContinuousClock.now < deadline {
                    var complete = true
                    for relay in federation.urls.indices {
                        let ids = Set((try? await federation.client(relay).participants(first))?.map(\.id) ?? [])
                        if ids.count < agents { complete = false }
                    }
                    if complete { listed.found() ; return 0 }
                    try await Task.sleep(for: .milliseconds(50))
                }
                return 0
            }
            for try await count in group { delivered += count }
        }
        let (p50, p99) = (histogram.value(at: 50), histogram.value(at: 99))
        return (WorkloadReport(
            workload: "direct messaging", agents: conversations * agentsPerConversation, events: conversations * agentsPerConversation * messagesPerAgent,
            checks: [
                ("every message reached every other participant", delivered == expected),
                ("every relay lists every participant of a conversation", listed.wasFound),
            ],
            notes: [String(format: "cross-relay delivery p50 %.1f ms, p99 %.1f ms", p50, p99)]), (p50, p99))
    }
}

/// Latencies (milliseconds, to a tenth) from many tasks into one HDR histogram.
public final class LatencyHistogram: @unchecked Sendable {
    private let lock = NSLock()
    private var histogram = Histogram<UInt64>(highestTrackableValue: 6_000_000, numberOfSignificantValueDigits: .three)

    public init() {}

    public func record(_ milliseconds: Double) {
        lock.withLock { histogram.record(UInt64(max(0, milliseconds * 10))) }
    }

    /// The latency at `percentile` (0…100), in milliseconds.
    public func value(at percentile: Double) -> Double {
        lock.withLock { Double(histogram.valueAtPercentile(percentile)) / 10 }
    }
}

/// A one-way switch shared by tasks.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var state = false
    private var success = false
    func set() { lock.withLock { state = true } }
    func found() { lock.withLock { success = true } }
    var isSet: Bool { lock.withLock { state } }
    var wasFound: Bool { lock.withLock { success } }
}
