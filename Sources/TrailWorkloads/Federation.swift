import Foundation
public import TrailClient
public import TrailCore

/// The relays a workload runs on, one client per relay, and what every
/// workload needs from them: an agent's clock and key, appends, full reads,
/// and waiting until every relay holds the same events.
public struct Federation: Sendable {
    public let urls: [String]
    let clients: [TrailClient]

    public init(urls: [String]) {
        precondition(!urls.isEmpty)
        self.urls = urls
        clients = urls.map { TrailClient(relays: [$0], requestTimeout: .seconds(10)) }
    }

    /// The client of relay `index` (wrapping around): agent i talks to relay i % count.
    public func client(_ index: Int) -> TrailClient { clients[index % clients.count] }

    /// An event stamped by the agent's own clock, signed when `key` is given.
    public static func event(
        _ namespace: Namespace, type: String, payload: String, parents: [EventID] = [], key: SigningKey? = nil,
        at milliseconds: UInt64? = nil
    ) throws -> Event {
        let now = milliseconds ?? UInt64(Date().timeIntervalSince1970 * 1000)
        let event = try Event(namespace: namespace, author: key?.publicKey, timestamp: HybridTimestamp(physicalMilliseconds: now, logical: 0),
                              parents: parents, type: type, payload: Array(payload.utf8))
        return key.map { event.signed(by: $0) } ?? event
    }

    /// Every event of `namespace` on relay `index`, in that relay's order.
    public func events(_ namespace: Namespace, on index: Int) async throws -> [Event] {
        var events = [Event]()
        var cursor: String?
        while true {
            let page = try await client(index).read(namespace, after: cursor, limit: 1000)
            events += page.events.map(\.event)
            cursor = page.cursor
            if page.events.isEmpty || page.events.last!.position >= page.lastPosition { return events }
        }
    }

    /// Waits until every relay's vector for each namespace is the same (and
    /// non-empty); returns how long it took. Throws after `timeout`.
    @discardableResult
    public func converge(_ namespaces: [Namespace], timeout: Duration = .seconds(30)) async throws -> Duration {
        let clock = ContinuousClock()
        let start = clock.now
        while clock.now - start < timeout {
            var agreed = true
            for namespace in namespaces where agreed {
                var vectors = [[String: UInt64]]()
                for index in urls.indices {
                    let listed = try? await client(index).namespaces(prefix: namespace.name).first { $0.namespace == namespace.name }
                    vectors.append(listed?.vector ?? [:])
                }
                agreed = !vectors[0].isEmpty && vectors.allSatisfy { $0 == vectors[0] }
            }
            if agreed { return clock.now - start }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw WorkloadError.notConverged(namespaces.map(\.name), timeout)
    }

    /// Each relay's answer to `fold` over its own log: the agreement check.
    public func agree(_ namespace: Namespace, _ fold: ([Event]) -> String) async throws -> [String] {
        var answers = [String]()
        for index in urls.indices { answers.append(fold(try await events(namespace, on: index))) }
        return answers
    }
}

public enum WorkloadError: Error, CustomStringConvertible {
    case notConverged([String], Duration)
    case failed(String)

    public var description: String {
        switch self {
        case .notConverged(let namespaces, let timeout): "relays did not converge on \(namespaces.joined(separator: ", ")) within \(timeout)"
        case .failed(let detail): detail
        }
    }
}

/// What a workload run shows: its agreement checks and its numbers.
public struct WorkloadReport: Sendable, CustomStringConvertible {
    public var workload: String
    public var agents: Int
    public var events: Int
    /// Check name → passed.
    public var checks: [(String, Bool)]
    public var notes: [String] = []

    public var passed: Bool { checks.allSatisfy(\.1) }

    public var description: String {
        let marks = checks.map { "\($0.1 ? "✓" : "✗") \($0.0)" }.joined(separator: "; ")
        return "\(workload): \(agents) agents, \(events) events — \(marks)" + (notes.isEmpty ? "" : " (\(notes.joined(separator: "; ")))")
    }
}

extension Duration {
    /// Whole milliseconds, for reports.
    public var milliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}
