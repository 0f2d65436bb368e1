import Foundation
public import TrailCore
public import TrailStore

/// The happens-before graph of a window of events as Graphviz DOT.
///
/// An edge runs from each parent to its child. Events are ranked by causal
/// depth within the window (the longest chain of parents before them), so
/// events at the same depth, which no edge orders, sit side by side: those
/// are concurrent. A run of events that each have exactly one parent and one
/// child, by the same author with the same type, collapses into one box
/// ("12 × edit by 3fa1…") unless `collapse` is off. Colours follow authors.
public struct Graph: Sendable {
    public let events: [StoredEvent]
    public var collapse = true
    /// Runs shorter than this stay expanded.
    public var collapseLengthMin = 3

    public init(events: [StoredEvent]) {
        self.events = events
    }

    /// Each event with its parents inside the window and its causal depth
    /// there (the longest chain of parents before it): events of equal depth
    /// are not ordered by any edge of the window.
    public var nodes: [(event: StoredEvent, parents: [EventID], depth: Int)] {
        var index = [EventID: Int]()
        for (offset, stored) in events.enumerated() { index[stored.id] = offset }
        var depth = [Int](repeating: 0, count: events.count)
        return events.enumerated().map { offset, stored in
            let parents = stored.event.parents.filter { index[$0] != nil }
            depth[offset] = parents.map { depth[index[$0]!] + 1 }.max() ?? 0
            return (stored, parents, depth[offset])
        }
    }

    public func dot(title: String) -> String {
        let nodes = self.nodes
        var index = [EventID: Int]()
        for (offset, stored) in events.enumerated() { index[stored.id] = offset }
        let parents = nodes.map { $0.parents.map { index[$0]! } }
        let depth = nodes.map(\.depth)
        var children = [[Int]](repeating: [], count: events.count)
        for (child, list) in parents.enumerated() { for parent in list { children[parent].append(child) } }

        // Runs: i continues the run of its only parent p when p has only i as child and both look alike.
        var head = Array(events.indices)
        var runLength = [Int](repeating: 1, count: events.count)
        if collapse {
            for i in events.indices {
                guard parents[i].count == 1, let p = parents[i].first, children[p].count == 1,
                      events[p].event.author == events[i].event.author, events[p].event.type == events[i].event.type else { continue }
                head[i] = head[p]
                runLength[head[i]] += 1
            }
            for i in events.indices where runLength[head[i]] < collapseLengthMin { head[i] = i }
        }
        var lastOfRun = [Int: Int]()
        for i in events.indices { lastOfRun[head[i]] = i }

        var lines = ["digraph \"\(escape(title))\" {", "  rankdir=TB;", "  node [shape=box, style=\"rounded,filled\", fontname=\"monospace\", fontsize=10];"]
        let palette = ["#cfe2f3", "#d9ead3", "#fff2cc", "#f4cccc", "#d9d2e9", "#fce5cd", "#d0e0e3", "#ead1dc"]
        var authorColour = [PublicKey?: String]()
        func colour(_ author: PublicKey?) -> String {
            if let known = authorColour[author] { return known }
            let next = author == nil ? "#eeeeee" : palette[authorColour.count % palette.count]
            authorColour[author] = next
            return next
        }
        func node(_ i: Int) -> String { "e\(head[i])" }
        var byDepth = [Int: [Int]]()
        for i in events.indices where head[i] == i {
            let stored = events[i]
            let event = stored.event
            let author = event.author.map { " by \($0.hex.prefix(8))" } ?? ""
            let label: String
            if runLength[i] >= collapseLengthMin && collapse {
                let last = events[lastOfRun[i]!]
                label = "\(runLength[i]) × \(event.type)\(author)\\n@\(stored.position)…@\(last.position)"
            } else {
                let payload = String(validating: event.payload.prefix(32), as: UTF8.self).map { "\\n" + escape($0) } ?? ""
                label = "@\(stored.position) \(event.id.hex.prefix(8))\\n\(escape(event.type))\(author)\(payload)"
            }
            lines.append("  e\(i) [label=\"\(label)\", fillcolor=\"\(colour(event.author))\"];")
            byDepth[depth[i], default: []].append(i)
        }
        for (child, list) in parents.enumerated() {
            for parent in list where head[parent] != head[child] {
                lines.append("  \(node(parent)) -> \(node(child));")
            }
        }
        // Same depth, same row: concurrent events side by side.
        for depth in byDepth.keys.sorted() where byDepth[depth]!.count > 1 {
            lines.append("  { rank=same; " + byDepth[depth]!.map { "e\($0);" }.joined(separator: " ") + " }")
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
    }
}
