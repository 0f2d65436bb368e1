public import TrailCore
public import TrailStore

/// Which events of a log a tool looks at.
public struct EventSelection: Sendable, Hashable {
    public var types: Set<String> = []
    public var authors: Set<PublicKey> = []
    /// Only events whose timestamp's physical part (ms since the epoch) is in this window.
    public var sinceMilliseconds: UInt64?
    public var untilMilliseconds: UInt64?
    /// Only this range of positions (both ends included).
    public var firstPosition: UInt64 = 1
    public var lastPosition: UInt64 = .max
    /// Resume from a cursor: a fast one starts after its position (and must be
    /// this log's), a portable one skips every event its vector names.
    public var cursor: Cursor?

    public init() {}

    public func admits(_ stored: StoredEvent) -> Bool {
        let event = stored.event
        if !types.isEmpty, !types.contains(event.type) { return false }
        if !authors.isEmpty { guard let author = event.author, authors.contains(author) else { return false } }
        let time = event.timestamp.physicalMilliseconds
        if let sinceMilliseconds, time < sinceMilliseconds { return false }
        if let untilMilliseconds, time > untilMilliseconds { return false }
        if case .vector(let seen) = cursor, seen.contains(origin: stored.origin, originSeq: stored.originSeq) { return false }
        return true
    }

    /// The position a reader starts after.
    var startAfter: UInt64 {
        var after = firstPosition - 1
        if case .position(_, let position) = cursor { after = max(after, position) }
        return after
    }
}

/// Replays one namespace's log in its causal order (the log order, which puts
/// every event after its parents and its origin predecessor), as fast as the
/// source reads or at the recorded pace.
///
/// ```swift
/// let source = try DirectorySource(directory: "trail-data")
/// var replay = Replay(source: source, namespace: try Namespace("auction/task-7"))
/// replay.selection.types = ["bid"]
/// try await replay.run { event in print(event.event.type) }
/// ```
public struct Replay: Sendable {
    public let source: any LogSource
    public let namespace: Namespace
    public var selection = EventSelection()
    /// nil: as fast as possible; 1: the recorded pace (gaps between the
    /// events' timestamps); 10: ten times faster.
    public var speed: Double?
    public var pageSize = 2000

    public init(source: any LogSource, namespace: Namespace) {
        self.source = source
        self.namespace = namespace
    }

    /// Hands each selected event to `body`, in order. Returns how many.
    @discardableResult
    public func run(_ body: (StoredEvent) async throws -> Void) async throws -> Int {
        guard try await source.summary(of: namespace) != nil else { throw ReplayError.noSuchNamespace(source.name, namespace) }
        if let speed, !(speed > 0 && speed.isFinite) { throw ReplayError.invalid("speed must be a positive number, not \(speed)") }
        if case .position(let relay, _) = selection.cursor, let mine = source.relayFingerprint, relay != mine {
            throw ReplayError.invalid("the cursor is a position on relay \(String(relay, radix: 16)); \(source.name) is relay \(String(mine, radix: 16)): resume with a portable cursor")
        }
        var count = 0
        var previous: HybridTimestamp?
        let clock = ContinuousClock()
        var due = clock.now
        try await source.forEachPage(namespace, after: selection.startAfter, through: selection.lastPosition, pageSize: pageSize) { page in
            for stored in page where selection.admits(stored) {
                if let speed {
                    if let previous, stored.event.timestamp > previous {
                        let gap = Double(stored.event.timestamp.physicalMilliseconds - previous.physicalMilliseconds) / speed
                        due = due.advanced(by: .milliseconds(gap))
                        try await Task.sleep(until: due, clock: clock)
                    }
                    previous = max(previous ?? stored.event.timestamp, stored.event.timestamp)
                }
                try await body(stored)
                count += 1
            }
            return true
        }
        return count
    }
}
