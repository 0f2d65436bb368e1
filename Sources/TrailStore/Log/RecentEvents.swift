import TrailCore

/// The last events each namespace's log took, kept in memory by the writer
/// that placed them: a read right behind the head (a peer link pushing what
/// was just appended, the fan-out to subscribers) takes them from here
/// instead of opening a RocksDB iterator and decoding the records again.
///
/// Each namespace keeps a contiguous run ending at the newest event the
/// writer completed; readers take only events up to the state they were
/// published with, so the run may be ahead of what a reader sees, never
/// behind what it returns. Bounded per namespace and in total (events and
/// bytes); past the total it starts over empty, and reads fall back to the
/// log until it refills.
struct RecentEvents {
    /// Per namespace: a page at the head is rarely longer.
    static let perNamespaceMax = 64
    static let totalEventsMax = 8192
    static let totalBytesMax = 4 << 20

    private var runs: [UInt32: [StoredEvent]] = [:]
    private var eventCount = 0
    private var byteCount = 0

    /// Adds what a group placed, `(namespace, event)` in the order the
    /// events entered their logs (each namespace's in position order).
    mutating func add(_ entered: [(namespace: UInt32, event: StoredEvent)]) {
        var start = 0
        while start < entered.count {
            var end = start + 1
            while end < entered.count, entered[end].namespace == entered[start].namespace { end += 1 }
            add(entered[start..<end].lazy.map(\.event), to: entered[start].namespace)
            start = end
        }
    }

    private mutating func add(_ events: some Collection<StoredEvent>, to namespace: UInt32) {
        var run = runs.removeValue(forKey: namespace) ?? []
        // Of a long batch only the tail can be kept; a gap starts the run over.
        for event in events.dropFirst(max(0, events.count - Self.perNamespaceMax)) {
            if run.last.map({ $0.position + 1 != event.position }) ?? false { forget(&run) }
            run.append(event)
            eventCount += 1
            byteCount += event.event.encodedByteCount
        }
        if run.count > 2 * Self.perNamespaceMax {
            let dropped = run.count - Self.perNamespaceMax
            for event in run.prefix(dropped) { byteCount -= event.event.encodedByteCount }
            eventCount -= dropped
            run.removeFirst(dropped)
        }
        if eventCount > Self.totalEventsMax || byteCount > Self.totalBytesMax {
            removeAll()
            return
        }
        runs[namespace] = run
    }

    private mutating func forget(_ run: inout [StoredEvent]) {
        eventCount -= run.count
        for event in run { byteCount -= event.event.encodedByteCount }
        run.removeAll()
    }

    /// The events at positions `after + 1 ... through`, when all are held.
    func events(_ namespace: UInt32, after: UInt64, through: UInt64) -> ArraySlice<StoredEvent>? {
        guard after < through, let run = runs[namespace], let first = run.first,
              first.position <= after + 1, let last = run.last, last.position >= through else { return nil }
        let start = Int(after + 1 - first.position)
        return run[start..<(start + Int(through - after))]
    }

    /// Drops every run (the writer reloaded its state from disk, or the total passed its bound).
    mutating func removeAll() {
        runs.removeAll()
        eventCount = 0
        byteCount = 0
    }
}
