import Foundation
public import TrailCore
public import TrailStore

/// Segment files written by `trail export` (the replication format of
/// `Docs/FORMAT.md`): files, or directories searched for `*.tseg`. A
/// namespace's segments are ordered by their first position; a segment that
/// does not name one (position 0) continues where the one before it ended.
///
/// Every file is decoded once when the source opens, which checks its
/// checksum, ids and header; only its place is kept, and pages are decoded
/// again on demand, one segment at a time, so memory stays one segment.
public final class SegmentSource: LogSource {
    public static let fileExtension = "tseg"

    struct Piece: Sendable {
        let file: String
        let namespace: Namespace
        var firstPosition: UInt64
        let count: Int
        let advances: VersionVector
    }

    /// A file that did not decode, and why: kept by a tolerant source so that
    /// `verify` can report it beside everything else.
    public struct Damage: Sendable, Hashable, CustomStringConvertible {
        public let file: String
        public let reason: String
        public var description: String { "\(file): \(reason)" }
    }

    public let name: String
    let pieces: [Namespace: [Piece]]
    /// From alias segments (`Segment.holdsAliases`), ordered by where they entered.
    let aliases: [Namespace: [AliasSlot]]
    public let damaged: [Damage]
    let limits: EventLimits
    let cache = Locked<(file: String, segment: Segment)?>(nil)

    /// Opens `paths`. A file that does not decode is an error naming it,
    /// unless `tolerant`, when it is listed in `damaged` and left out.
    public init(paths: [String], tolerant: Bool = false, limits: EventLimits = .unbounded) throws {
        name = paths.joined(separator: " ")
        self.limits = limits
        var files = [String]()
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
                throw ReplayError.source(path, "no such file or directory")
            }
            if isDirectory.boolValue {
                let found = (FileManager.default.enumerator(atPath: path)?.allObjects as? [String] ?? [])
                    .filter { $0.hasSuffix("." + Self.fileExtension) }.sorted()
                files += found.map { path + "/" + $0 }
            } else {
                files.append(path)
            }
        }
        guard !files.isEmpty else { throw ReplayError.source(name, "holds no .\(Self.fileExtension) segment files") }
        var pieces = [Namespace: [Piece]]()
        var aliases = [Namespace: [AliasSlot]]()
        var damaged = [Damage]()
        for file in files {
            do {
                let segment = try Self.decode(file, limits: limits)
                if segment.holdsAliases {
                    aliases[segment.namespace, default: []] += segment.records.map {
                        AliasSlot(origin: $0.origin, originSeq: $0.originSeq, id: $0.event.id, after: segment.firstPosition)
                    }
                    continue
                }
                pieces[segment.namespace, default: []].append(Piece(
                    file: file, namespace: segment.namespace, firstPosition: segment.firstPosition,
                    count: segment.records.count, advances: segment.advances))
            } catch let error as ReplayError {
                guard tolerant else { throw error }
                damaged.append(Damage(file: file, reason: "\(error)".replacingOccurrences(of: file + ": ", with: "")))
            }
        }
        for (namespace, list) in pieces {
            // Stable: equal (unknown) first positions keep file-name order.
            var ordered = list.enumerated().sorted { ($0.element.firstPosition, $0.offset) < ($1.element.firstPosition, $1.offset) }.map(\.element)
            var next: UInt64 = 1
            for index in ordered.indices {
                if ordered[index].firstPosition == 0 { ordered[index].firstPosition = next }
                next = ordered[index].firstPosition + UInt64(ordered[index].count)
            }
            pieces[namespace] = ordered
        }
        self.pieces = pieces
        self.aliases = aliases.mapValues { $0.sorted { ($0.after, $0.origin, $0.originSeq) < ($1.after, $1.origin, $1.originSeq) } }
        self.damaged = damaged
    }

    static func decode(_ file: String, limits: EventLimits) throws -> Segment {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw ReplayError.source(file, "cannot be read")
        }
        do {
            return try data.withUnsafeBytes { buffer throws(DecodeError) in try Segment(decoding: buffer, limits: limits) }
        } catch {
            throw ReplayError.source(file, "not a valid segment: \(error)")
        }
    }

    public func namespaces(prefix: String) async throws -> [LogSummary] {
        pieces.keys.filter { $0.name.hasPrefix(prefix) }.sorted { $0.name < $1.name }.map { namespace in
            let list = pieces[namespace]!
            let aliases = self.aliases[namespace] ?? []
            let vector = aliases.reduce(into: list.reduce(into: VersionVector()) { $0.merge($1.advances) }) {
                $0.advance(origin: $1.origin, to: $1.originSeq)
            }
            let first = list.first!.firstPosition
            let last = list.last!.firstPosition + UInt64(list.last!.count) - 1
            return LogSummary(namespace: namespace, eventCount: UInt64(list.reduce(0) { $0 + $1.count }),
                              lastPosition: last, trimmedThrough: first - 1, vector: vector, aliases: aliases)
        }
    }

    public func events(_ namespace: Namespace, after position: UInt64, limit: Int) async throws -> [StoredEvent] {
        guard let list = pieces[namespace] else { return [] }
        var events = [StoredEvent]()
        var after = position
        for piece in list where piece.firstPosition + UInt64(piece.count) - 1 > after && events.count < limit {
            let segment = try segment(piece.file)
            let start = after >= piece.firstPosition ? Int(after - piece.firstPosition + 1) : 0
            for (offset, record) in segment.records[start...].prefix(limit - events.count).enumerated() {
                events.append(StoredEvent(event: record.event, position: piece.firstPosition + UInt64(start + offset),
                                          origin: record.origin, originSeq: record.originSeq))
            }
            after = events.last?.position ?? after
        }
        return events
    }

    func segment(_ file: String) throws -> Segment {
        if let cached = cache.withLock({ $0 }), cached.file == file { return cached.segment }
        let segment = try Self.decode(file, limits: limits)
        cache.withLock { $0 = (file, segment) }
        return segment
    }

    public func close() async {}
}
