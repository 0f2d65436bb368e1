public import TrailCore

/// Workload 2: a shared text as a replicated growable array (RGA).
///
/// Events in a `doc/…` namespace:
/// - `insert` `{"after": <element id hex, or "" for the start>, "text": "…"}`:
///   a new element (its id is the event's id) placed right after `after`;
///   the event's parents include the `after` element's event;
/// - `delete` `{"target": <element id hex>}`: a tombstone; parents include
///   the target's event.
///
/// Elements form a tree (each under the one it was inserted after);
/// siblings are ordered newest first by (timestamp, id), and the text is the
/// tree read depth-first, skipping tombstones. The tree depends only on the
/// set of events, so any causal order (every relay's log) gives the same text.
public struct SharedText: Sendable {
    struct Element {
        var text: String
        var stamp: (HybridTimestamp, EventID)
        var deleted = false
        var children: [EventID] = []
    }

    var elements = [EventID: Element]()
    var roots = [EventID]()

    public init(events: some Sequence<Event>) {
        var deletes = [EventID]()
        var inserts = [(Event, EventID?, String)]()
        for event in events {
            guard let payload = Payload(event) else { continue }
            switch event.type {
            case "insert":
                guard let text = payload.string("text"), let after = payload.string("after") else { continue }
                inserts.append((event, after.isEmpty ? nil : try? EventID(hex: after), text))
            case "delete":
                if let target = payload.id("target") { deletes.append(target) }
            default: continue
            }
        }
        for (event, _, text) in inserts { elements[event.id] = Element(text: text, stamp: (event.timestamp, event.id)) }
        for (event, after, _) in inserts {
            if let after, elements[after] != nil { elements[after]!.children.append(event.id) } else { roots.append(event.id) }
        }
        for target in deletes { elements[target]?.deleted = true }
    }

    func newestFirst(_ ids: [EventID]) -> [EventID] {
        ids.sorted { elements[$0]!.stamp > elements[$1]!.stamp }
    }

    /// The materialised text.
    public var text: String {
        var out = ""
        var stack = newestFirst(roots).reversed().map { $0 }
        while let id = stack.popLast() {
            let element = elements[id]!
            if !element.deleted { out += element.text }
            stack.append(contentsOf: newestFirst(element.children).reversed())
        }
        return out
    }

    /// The visible elements in order, with their ids: where an agent inserts next.
    public var visible: [(id: EventID, text: String)] {
        var out = [(EventID, String)]()
        var stack = newestFirst(roots).reversed().map { $0 }
        while let id = stack.popLast() {
            let element = elements[id]!
            if !element.deleted { out.append((id, element.text)) }
            stack.append(contentsOf: newestFirst(element.children).reversed())
        }
        return out
    }

    /// `agent` names the writer. It matters beyond bookkeeping: two agents
    /// deleting the same element in the same millisecond would otherwise
    /// make byte-identical events, one id accepted by two relays (see
    /// Docs/WORKLOADS.md, "Identical events").
    public static func insert(after: EventID?, text: String, agent: String = "") -> String {
        json(["after": after?.hex ?? "", "text": text, "agent": agent])
    }

    public static func delete(_ target: EventID, agent: String = "") -> String { json(["target": target.hex, "agent": agent]) }
}
