import Foundation
public import TrailClient
import TrailAPI
public import TrailCore
public import TrailStore

/// A live relay, read over its client API (`GET /v1/events`, `/v1/namespaces`,
/// `/v1/status`) with a bearer token when it asks for one.
public final class RelaySource: LogSource {
    public let name: String
    let client: TrailClient
    let relay: RelayID
    public var relayFingerprint: UInt64? { relay.fingerprint }

    /// A relay that does not answer within `requestTimeout` is reported unreachable
    /// (the HTTP client retries a refused connection until then).
    public init(url: String, token: String? = nil, tlsTrustRoots: String? = nil, requestTimeout: Duration = .seconds(5)) async throws {
        name = url
        client = TrailClient(relays: [url], token: token, requestTimeout: requestTimeout, tlsTrustRoots: tlsTrustRoots)
        do {
            let status = try await client.status()
            relay = try PublicKey(hex: status.relay)
        } catch {
            try? await client.shutdown()
            throw ReplayError.source(url, "not reachable as a Trail relay: \(error)")
        }
    }

    public func namespaces(prefix: String) async throws -> [LogSummary] {
        try await client.namespaces(prefix: prefix).map { output in
            let namespace = try Namespace(output.namespace)
            var entries = [RelayID: UInt64]()
            for (origin, seq) in output.vector {
                guard let key = try? PublicKey(hex: origin) else {
                    throw ReplayError.source(name, "namespace \(namespace) names origin \"\(origin)\", not a relay key")
                }
                entries[key] = seq
            }
            return LogSummary(namespace: namespace, eventCount: output.eventCount, lastPosition: output.lastPosition,
                              trimmedThrough: output.trimmedThrough, vector: VersionVector(entries),
                              aliases: try (output.aliases ?? []).map { try AliasSlot($0, source: name) })
        }
    }

    public func events(_ namespace: Namespace, after position: UInt64, limit: Int) async throws -> [StoredEvent] {
        let cursor = position == 0 ? nil : Cursor.position(relay: relay.fingerprint, position: position).text
        return try await client.read(namespace, after: cursor, limit: min(limit, 1000)).events.map {
            StoredEvent(event: $0.event, position: $0.position, origin: $0.origin, originSeq: $0.originSeq)
        }
    }

    public func close() async {
        try? await client.shutdown()
    }
}

/// JSON lines as `trail export --format jsonl` writes them: one event per
/// line, the fields of the client API's event object (`Docs/API.md`). Read
/// whole when opened; each line's id is checked against its fields.
public final class JSONLinesSource: LogSource {
    public let name: String
    let logs: [Namespace: [StoredEvent]]
    let aliases: [Namespace: [AliasSlot]]
    /// Lines that did not parse or whose id is not their hash (a tolerant source only).
    public let damaged: [SegmentSource.Damage]

    public init(path: String, tolerant: Bool = false) throws {
        name = path
        guard let data = FileManager.default.contents(atPath: path) else { throw ReplayError.source(path, "cannot be read") }
        var logs = [Namespace: [StoredEvent]]()
        var aliases = [Namespace: [AliasSlot]]()
        var damaged = [SegmentSource.Damage]()
        let decoder = JSONDecoder()
        var lineNumber = 0
        for line in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            guard !line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") }) else { continue }
            do {
                if line.starts(with: Array(#"{"alias""#.utf8)) {
                    let alias: AliasOutput
                    do { alias = try decoder.decode(AliasLine.self, from: Data(line)).alias } catch {
                        throw ReplayError.invalid("not an alias object: \(error)")
                    }
                    guard let namespace = try? Namespace(alias.namespace) else { throw ReplayError.invalid("alias namespace is not a namespace name") }
                    aliases[namespace, default: []].append(try AliasSlot(alias, source: "\(path):\(lineNumber)"))
                    continue
                }
                let output = try decoder.decode(EventOutput.self, from: Data(line))
                let event: Event
                do { event = try output.event() } catch { throw ReplayError.invalid("\(error)") }
                guard let origin = try? PublicKey(hex: output.origin) else { throw ReplayError.invalid("origin is not a relay key") }
                logs[event.namespace, default: []].append(
                    StoredEvent(event: event, position: output.position, origin: origin, originSeq: output.originSeq))
            } catch {
                let reason = (error as? ReplayError)?.description ?? "not an event object: \(error)"
                guard tolerant else { throw ReplayError.source("\(path):\(lineNumber)", reason) }
                damaged.append(SegmentSource.Damage(file: "\(path):\(lineNumber)", reason: reason))
            }
        }
        for namespace in logs.keys { logs[namespace]!.sort { $0.position < $1.position } }
        self.logs = logs
        self.aliases = aliases
        self.damaged = damaged
    }

    public func namespaces(prefix: String) async throws -> [LogSummary] {
        logs.keys.filter { $0.name.hasPrefix(prefix) }.sorted { $0.name < $1.name }.map { namespace in
            let events = logs[namespace]!
            let vector = events.reduce(into: VersionVector()) { $0.advance(origin: $1.origin, to: $1.originSeq) }
            let aliases = self.aliases[namespace] ?? []
            return LogSummary(namespace: namespace, eventCount: UInt64(events.count), lastPosition: events.last?.position ?? 0,
                              trimmedThrough: (events.first?.position ?? 1) - 1,
                              vector: aliases.reduce(into: vector) { $0.advance(origin: $1.origin, to: $1.originSeq) }, aliases: aliases)
        }
    }

    public func events(_ namespace: Namespace, after position: UInt64, limit: Int) async throws -> [StoredEvent] {
        guard let events = logs[namespace] else { return [] }
        var low = 0, high = events.count
        while low < high {
            let middle = (low + high) / 2
            if events[middle].position <= position { low = middle + 1 } else { high = middle }
        }
        return Array(events[low..<min(events.count, low + limit)])
    }

    public func close() async {}
}

extension AliasSlot {
    /// An alias as the API and JSON lines give it; `source` names where, for errors.
    init(_ output: AliasOutput, source: String) throws {
        guard let origin = try? PublicKey(hex: output.origin) else {
            throw ReplayError.source(source, "alias origin \"\(output.origin)\" is not a relay key")
        }
        var id: EventID?
        if let hex = output.id {
            guard let parsed = try? EventID(hex: hex) else { throw ReplayError.source(source, "alias id \"\(hex)\" is not an event id") }
            id = parsed
        }
        self.init(origin: origin, originSeq: output.originSeq, id: id, after: output.after)
    }
}

/// Opens what a command names: an `http://` or `https://` URL is a relay; a
/// `.jsonl` file is JSON lines; a directory with a relay identity file is a
/// data directory; other files and directories are segment files.
public func openSource(
    _ spec: String, token: String? = nil, tlsTrustRoots: String? = nil, tolerant: Bool = false
) async throws -> any LogSource {
    if spec.hasPrefix("http://") || spec.hasPrefix("https://") {
        return try await RelaySource(url: spec, token: token, tlsTrustRoots: tlsTrustRoots)
    }
    if spec.hasSuffix(".jsonl") { return try JSONLinesSource(path: spec, tolerant: tolerant) }
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: spec, isDirectory: &isDirectory) else {
        throw ReplayError.source(spec, "no such file, directory or relay URL")
    }
    if isDirectory.boolValue, FileManager.default.fileExists(atPath: spec + "/" + Store.identityFileName) {
        return try DirectorySource(directory: spec)
    }
    return try SegmentSource(paths: [spec], tolerant: tolerant)
}
