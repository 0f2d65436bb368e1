public import TrailCore
public import TrailStore

/// What a source says about one namespace's log before it is read.
public struct LogSummary: Sendable, Hashable {
    public let namespace: Namespace
    public let eventCount: UInt64
    /// The last position held (0 when empty); positions before `trimmedThrough + 1` were trimmed.
    public let lastPosition: UInt64
    public let trimmedThrough: UInt64
    /// What the source claims to hold: origin → highest originSeq.
    public let vector: VersionVector
    /// Slots held through an event held under another slot, in the order they entered.
    public let aliases: [AliasSlot]

    public init(namespace: Namespace, eventCount: UInt64, lastPosition: UInt64, trimmedThrough: UInt64, vector: VersionVector,
                aliases: [AliasSlot] = []) {
        self.aliases = aliases
        self.namespace = namespace
        self.eventCount = eventCount
        self.lastPosition = lastPosition
        self.trimmedThrough = trimmedThrough
        self.vector = vector
    }
}

/// An origin slot a log holds through an event it holds under another slot:
/// the same event accepted by two relays (`Alias`, Docs/FORMAT.md "Aliases").
public struct AliasSlot: Sendable, Hashable {
    public let origin: RelayID
    public let originSeq: UInt64
    /// The event; nil when its source no longer has it (trimmed).
    public let id: EventID?
    /// The log position the alias entered after.
    public let after: UInt64

    public init(origin: RelayID, originSeq: UInt64, id: EventID?, after: UInt64) {
        self.origin = origin
        self.originSeq = originSeq
        self.id = id
        self.after = after
    }
}

/// Somewhere a log can be read from, one page at a time, in that log's order:
/// a data directory (`DirectorySource`), a live relay (`RelaySource`), or files
/// written by `trail export` (`SegmentSource`, `JSONLinesSource`). Every replay
/// tool reads through this, so each works on all of them.
public protocol LogSource: Sendable {
    /// Where the log comes from, for messages: a path or a URL.
    var name: String { get }
    /// The namespaces held, in name order.
    func namespaces(prefix: String) async throws -> [LogSummary]
    /// Up to `limit` events after `position`, in log order. Fewer (or none) at the end.
    func events(_ namespace: Namespace, after position: UInt64, limit: Int) async throws -> [StoredEvent]
    /// Releases what the source holds open.
    func close() async
    /// The fingerprint of the relay whose positions this source reads, when
    /// it is one relay's log (a data directory, a relay): a fast cursor from
    /// another relay names positions of another log and is refused.
    var relayFingerprint: UInt64? { get }
}

extension LogSource {
    public var relayFingerprint: UInt64? { nil }

    public func summary(of namespace: Namespace) async throws -> LogSummary? {
        try await namespaces(prefix: namespace.name).first { $0.namespace == namespace }
    }

    /// Reads the log from `position` on, page by page, through `last`, handing
    /// each page to `body` until it returns false. Memory is one page.
    public func forEachPage(
        _ namespace: Namespace, after position: UInt64 = 0, through last: UInt64 = .max, pageSize: Int = 2000,
        _ body: ([StoredEvent]) async throws -> Bool
    ) async throws {
        var after = position
        while after < last {
            var page = try await events(namespace, after: after, limit: pageSize)
            guard let end = page.last?.position else { return }
            if end > last { page.removeAll { $0.position > last } }
            if !page.isEmpty, try await !body(page) { return }
            guard end > after else {
                throw ReplayError.source(name, "the log of \(namespace) does not advance after position \(after)")
            }
            after = end
        }
    }
}

/// What the replay tools refuse, with where and why.
public enum ReplayError: Error, Sendable, CustomStringConvertible, Equatable {
    /// The source cannot be opened or read.
    case source(String, String)
    /// A named namespace is not in the source.
    case noSuchNamespace(String, Namespace)
    /// A bad argument: which and why.
    case invalid(String)

    public var description: String {
        switch self {
        case .source(let name, let detail): "\(name): \(detail)"
        case .noSuchNamespace(let name, let namespace): "\(name): holds no namespace \(namespace)"
        case .invalid(let detail): detail
        }
    }
}
