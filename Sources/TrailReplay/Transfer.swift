import Foundation
public import TrailCore
public import TrailStore
import TrailAPI

/// Writes logs out as segment files (the replication format) or JSON lines.
///
/// Segments go to `DIRECTORY/<namespace, '/' as '%2F'>/<first position, 16 digits>.tseg`,
/// each at most `segmentEventCountMax` events, so that a directory sorts in
/// log order and `trail import` or any `SegmentSource` reads it back.
public struct Exporter: Sendable {
    public enum Format: String, Sendable, CaseIterable { case segments, jsonl }

    public let source: any LogSource
    public var selection = EventSelection()
    public var segmentEventCountMax = 10_000

    public init(source: any LogSource) { self.source = source }

    public struct Summary: Sendable {
        public var namespaces = 0
        public var events: UInt64 = 0
        public var files = 0
        public var bytes: UInt64 = 0
        /// Alias slots written after their namespace's events.
        public var aliases = 0

        public init() {}
    }

    /// Exports every namespace under `prefix` to `destination` (a directory
    /// for segments, a file for JSON lines). `progress` gets the events written so far.
    public func run(prefix: String, format: Format, to destination: String,
                    progress: (@Sendable (UInt64) -> Void)? = nil) async throws -> Summary {
        var summary = Summary()
        let manager = FileManager.default
        var lines: FileHandle?
        switch format {
        case .segments:
            try manager.createDirectory(atPath: destination, withIntermediateDirectories: true)
        case .jsonl:
            let parent = (destination as NSString).deletingLastPathComponent
            if !parent.isEmpty { try? manager.createDirectory(atPath: parent, withIntermediateDirectories: true) }
            guard manager.createFile(atPath: destination, contents: nil) else {
                throw ReplayError.source(destination, "cannot be created")
            }
            lines = FileHandle(forWritingAtPath: destination)
            summary.files = 1
        }
        defer { try? lines?.close() }
        for log in try await source.namespaces(prefix: prefix) {
            summary.namespaces += 1
            let folder = destination + "/" + Self.fileName(log.namespace)
            if format == .segments { try manager.createDirectory(atPath: folder, withIntermediateDirectories: true) }
            var replay = Replay(source: source, namespace: log.namespace)
            replay.selection = selection
            var batch = [StoredEvent]()
            func flush() throws {
                guard let first = batch.first else { return }
                let bytes: [UInt8]
                switch format {
                case .segments:
                    let records = batch.map { Segment.Record(origin: $0.origin, originSeq: $0.originSeq, event: $0.event) }
                    let segment = try Segment(namespace: log.namespace, firstPosition: first.position, records: records)
                    bytes = segment.encoded()
                    let path = folder + "/" + String(repeating: "0", count: max(0, 16 - String(first.position).count)) + "\(first.position).\(SegmentSource.fileExtension)"
                    guard manager.createFile(atPath: path, contents: Data(bytes)) else { throw ReplayError.source(path, "cannot be written") }
                    summary.files += 1
                case .jsonl:
                    bytes = jsonLines(batch)
                    try lines!.write(contentsOf: bytes)
                }
                summary.bytes += UInt64(bytes.count)
                summary.events += UInt64(batch.count)
                progress?(summary.events)
                batch.removeAll(keepingCapacity: true)
            }
            // The events aliases name, kept as they pass, to be written after the log.
            let aliasIDs = Set(log.aliases.compactMap(\.id))
            var aliased = [EventID: Event]()
            try await replay.run { stored in
                if aliasIDs.contains(stored.id) { aliased[stored.id] = stored.event }
                // A segment carries consecutive originSeqs per origin: a filter that skips some starts a new one.
                if format == .segments, let last = batch.last(where: { $0.origin == stored.origin }), last.originSeq + 1 != stored.originSeq {
                    try flush()
                }
                batch.append(stored)
                if batch.count >= segmentEventCountMax { try flush() }
            }
            try flush()
            // An alias of an event the selection left out is left out with it.
            for alias in log.aliases {
                guard let id = alias.id, let event = aliased[id] else { continue }
                let record = Segment.Record(origin: alias.origin, originSeq: alias.originSeq, event: event)
                let bytes: [UInt8]
                switch format {
                case .segments:
                    bytes = try Segment(namespace: log.namespace, firstPosition: alias.after, records: [record], holdsAliases: true).encoded()
                    let path = folder + "/" + String(repeating: "0", count: max(0, 16 - String(alias.after).count))
                        + "\(alias.after)-\(alias.origin.hex.prefix(16))-\(alias.originSeq).alias.\(SegmentSource.fileExtension)"
                    guard manager.createFile(atPath: path, contents: Data(bytes)) else { throw ReplayError.source(path, "cannot be written") }
                    summary.files += 1
                case .jsonl:
                    bytes = Array(try JSONEncoder().encode(AliasLine(alias: AliasOutput(
                        namespace: log.namespace.name, origin: alias.origin.hex, originSeq: alias.originSeq, id: id.hex, after: alias.after))))
                        + [UInt8(ascii: "\n")]
                    try lines!.write(contentsOf: bytes)
                }
                summary.bytes += UInt64(bytes.count)
                summary.aliases += 1
            }
        }
        return summary
    }

    /// A namespace as one path component.
    static func fileName(_ namespace: Namespace) -> String {
        namespace.name.replacingOccurrences(of: "%", with: "%25").replacingOccurrences(of: "/", with: "%2F")
    }
}

/// Applies a log from any source to a store through the same path as
/// replication (`Store.apply`): ids are hashes of the bytes, signatures are
/// verified on every core, each event waits in pending until its parents
/// and origin predecessor are held, and what is already held is a
/// duplicate. Importing twice changes nothing.
public struct Importer: Sendable {
    public let source: any LogSource
    public let store: Store
    public var batchEventCountMax = 2000

    public init(source: any LogSource, into store: Store) {
        self.source = source
        self.store = store
    }

    public struct Summary: Sendable, Hashable {
        public var appended: UInt64 = 0
        public var duplicates: UInt64 = 0
        public var pending: UInt64 = 0
        /// A different event already holds the `(origin, originSeq)`.
        public var conflicts: UInt64 = 0
        public var trimmed: UInt64 = 0
        public var total: UInt64 { appended + duplicates + pending + conflicts + trimmed }

        public init() {}
    }

    public func run(prefix: String = "", progress: (@Sendable (UInt64) -> Void)? = nil) async throws -> Summary {
        var summary = Summary()
        for log in try await source.namespaces(prefix: prefix) {
            let aliasIDs = Set(log.aliases.compactMap(\.id))
            var aliased = [EventID: Event]()
            var records = [Segment.Record]()
            try await source.forEachPage(log.namespace, pageSize: batchEventCountMax) { page in
                for stored in page where aliasIDs.contains(stored.id) { aliased[stored.id] = stored.event }
                records = page.map { Segment.Record(origin: $0.origin, originSeq: $0.originSeq, event: $0.event) }
                return try await apply(records, &summary, progress)
            }
            // Then the slots the source holds through events held under another (`AliasSlot`).
            records = log.aliases.compactMap { alias in
                alias.id.flatMap { aliased[$0] }.map { Segment.Record(origin: alias.origin, originSeq: alias.originSeq, event: $0) }
            }
            _ = try await apply(records, &summary, progress)
        }
        return summary
    }

    private func apply(_ records: [Segment.Record], _ summary: inout Summary, _ progress: (@Sendable (UInt64) -> Void)?) async throws -> Bool {
        guard !records.isEmpty else { return true }
        for result in try await store.apply(contentsOf: records) {
            switch result.outcome {
            case .appended: summary.appended += 1
            case .duplicate: summary.duplicates += 1
            case .pending: summary.pending += 1
            case .conflict: summary.conflicts += 1
            case .trimmed: summary.trimmed += 1
            case .headMoved: break
            }
        }
        progress?(summary.total)
        return true
    }
}
