public import TrailCore

/// Runs workload 2 across a federation: agents on different relays type into
/// one text concurrently, optionally while the federation is partitioned;
/// after quiescence every relay's text (and every agent's) must be the same.
public struct DocumentRun: Sendable {
    public let federation: Federation
    public var agents = 6
    public var editsPerAgent = 10
    public var name = "doc/notes-\(UInt32.random(in: 0...UInt32.max))"

    public init(federation: Federation) { self.federation = federation }

    /// `during` runs after the first half of the edits (a partition, say), `after` before the rest converge.
    public func run(during: (@Sendable () async throws -> Void)? = nil, after: (@Sendable () async throws -> Void)? = nil) async throws -> WorkloadReport {
        let document = try Namespace(name)
        let title = try Federation.event(document, type: "insert", payload: SharedText.insert(after: nil, text: "Notes:"))
        _ = try await federation.client(0).append(title)
        try await federation.converge([document])
        func typing(_ round: Range<Int>) async throws {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for agent in 0..<agents {
                    group.addTask {
                        for edit in round {
                            // Each agent reads its relay's text and types after a visible element.
                            let text = SharedText(events: try await federation.events(document, on: agent))
                            let visible = text.visible
                            let anchor = visible[(agent * 7 + edit * 3) % visible.count].id
                            let insert = try Federation.event(document, type: "insert", payload: SharedText.insert(after: anchor, text: " a\(agent)e\(edit)", agent: "agent-\(agent)"), parents: [anchor])
                            _ = try await federation.client(agent).append(insert)
                            if edit % 4 == 3, let target = visible.last(where: { $0.id != title.id })?.id {
                                _ = try? await federation.client(agent).append(try Federation.event(document, type: "delete", payload: SharedText.delete(target, agent: "agent-\(agent)"), parents: [target]))
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        try await typing(0..<(editsPerAgent / 2))
        try await during?()
        try await typing((editsPerAgent / 2)..<editsPerAgent)
        try await after?()
        let converged = try await federation.converge([document], timeout: .seconds(60))
        let texts = try await federation.agree(document) { SharedText(events: $0).text }
        let events = try await federation.events(document, on: 0)
        return WorkloadReport(
            workload: "shared document", agents: agents, events: events.count,
            checks: [("same text on every relay", Set(texts).count == 1 && texts[0].hasPrefix("Notes:"))],
            notes: ["relays converged \(converged.milliseconds) ms after the last edit", "\(texts[0].count) characters of text"])
    }
}
