public import TrailCore

/// An event as it sits in this relay's log.
public struct StoredEvent: Sendable, Hashable, CustomStringConvertible {
    public let event: Event
    /// Dense from 1 in this relay's log of the namespace.
    public let position: UInt64
    /// The relay that first accepted the event, and its number there.
    public let origin: RelayID
    public let originSeq: UInt64

    public init(event: Event, position: UInt64, origin: RelayID, originSeq: UInt64) {
        self.event = event
        self.position = position
        self.origin = origin
        self.originSeq = originSeq
    }

    public var id: EventID { event.id }
    public var description: String { "@\(position) \(event) origin \(origin.hex.prefix(8))/\(originSeq)" }
}

/// Where an event landed.
public struct Placement: Sendable, Hashable {
    public let position: UInt64
    public let origin: RelayID
    public let originSeq: UInt64
}

/// The answer to one appended event.
public struct AppendResult: Sendable, Hashable {
    public enum Outcome: Sendable, Hashable {
        /// The event entered the log in this call.
        case appended(Placement)
        /// The event was already in the log; this is where.
        case duplicate(Placement)
        /// Some dependency (a parent, or the origin predecessor) is missing: the
        /// event is stored durably and enters the log when they arrive.
        case pending
        /// Refused: a different event already holds this `(origin, originSeq)`.
        case conflict(existing: EventID)
        /// This `(origin, originSeq)` was held and retention has since trimmed it.
        case trimmed
        /// A conditional append found the namespace's log ending elsewhere than
        /// the caller named: something entered since it read. Nothing was stored.
        case headMoved(lastPosition: UInt64)
    }

    public let id: EventID
    public let outcome: Outcome

    public var placement: Placement? {
        switch outcome {
        case .appended(let placement), .duplicate(let placement): placement
        case .pending, .conflict, .trimmed, .headMoved: nil
        }
    }
}

/// Statistics of one namespace, as `trail inspect` prints them.
public struct NamespaceInfo: Sendable, Hashable {
    public let namespace: Namespace
    public let number: UInt32
    public let shard: Int
    public let eventCount: UInt64
    public let byteCount: UInt64
    /// First and last positions held; nil when the log is empty or fully trimmed.
    public let firstPosition: UInt64?
    public let lastPosition: UInt64
    public let trimmedThrough: UInt64
    public let vector: VersionVector
    public let retention: Retention
    public let pendingCount: Int
    /// Origin slots held through events the log holds under another slot (`Store.aliases`).
    public let aliasCount: UInt64
}

/// A page of events read from a cursor.
public struct Page: Sendable, CustomStringConvertible {
    public let events: [StoredEvent]
    /// Resume here on this relay.
    public let cursor: Cursor
    /// Resume here on any relay: everything seen so far, as a vector.
    public let portableCursor: Cursor
    /// The log's last position when the page was read; equal to the cursor's
    /// position when the reader has caught up.
    public let lastPosition: UInt64

    public var description: String {
        "Page(\(events.count) events, cursor \(cursor), last \(lastPosition))"
    }

    public var isAtEnd: Bool {
        if case .position(_, let position) = cursor { return position >= lastPosition }
        return false
    }
}

/// What to read: all events, or only some types or authors.
public struct ReadFilter: Sendable, Hashable {
    public var types: Set<String>?
    public var authors: Set<PublicKey>?

    public init(types: Set<String>? = nil, authors: Set<PublicKey>? = nil) {
        self.types = types
        self.authors = authors
    }

    public static let all = ReadFilter()

    public func admits(_ event: Event) -> Bool {
        if let types, !types.contains(event.type) { return false }
        if let authors {
            guard let author = event.author, authors.contains(author) else { return false }
        }
        return true
    }
}
